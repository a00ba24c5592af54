#pragma once
// Runs the real switchboard binary as a child process, output captured to files, for tests of the CLI,
// signals and exit codes.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sb::test {

class child_process {
 public:
  /// Starts `argv` with the current environment plus `env`, in `dir`; stdout and stderr go to files there.
  child_process(std::vector<std::string> argv, const std::filesystem::path& dir,
                std::map<std::string, std::string> env = {});
  ~child_process();

  std::string out() const;
  std::string err() const;
  /// Waits until stdout contains `text`; false on timeout or exit.
  bool wait_for_output(const std::string& text, std::chrono::milliseconds timeout);
  void signal(int sig);
  /// The exit code, or nullopt if it has not exited within `timeout` (or died by a signal).
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::optional<int> status_;
  std::filesystem::path out_, err_;
};

/// Runs to completion; returns exit code, stdout and stderr.
struct run_result {
  int code;
  std::string out, err;
};
run_result run_to_end(std::vector<std::string> argv, const std::filesystem::path& dir,
                      std::map<std::string, std::string> env = {},
                      std::chrono::milliseconds timeout = std::chrono::seconds(20));

}  // namespace sb::test

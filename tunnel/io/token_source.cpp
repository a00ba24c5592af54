#include "tunnel/io/token_source.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "protocol/text.hpp"

namespace sb::tunnel::io {

namespace {

/// A child in its own process group; killed as a group (with whatever it started) unless reaped.
class token_child {
 public:
  ~token_child() {
    if (pid_ > 0) kill_group();
    if (fd_ >= 0) ::close(fd_);
  }
  /// Starts `/bin/sh -c command`; an error message, or empty.
  std::string start(const std::string& command) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return std::string("cannot create a pipe: ") + std::strerror(errno);
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    // Its own group, so a timeout kills what the command started too; default signal handling, since the
    // host blocks the signals it waits for and a blocked mask is inherited.
    posix_spawnattr_setpgroup(&attr, 0);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
    const int rc = ::posix_spawn(&pid_, "/bin/sh", &actions, &attr, const_cast<char* const*>(argv), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(fds[1]);
    fd_ = fds[0];
    if (rc != 0) {
      pid_ = -1;
      return std::string("cannot run the token command: ") + std::strerror(rc);
    }
    return {};
  }
  int fd() const { return fd_; }
  /// The exit status once the child has exited before `deadline`; nullopt when it is still running.
  std::optional<int> wait_until(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return status;
      }
      if (r < 0 && errno != EINTR) {
        pid_ = -1;
        return -1;
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  void kill_group() {
    ::kill(-pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
};

}  // namespace

std::optional<std::string> read_file_token(const std::string& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string data(max_bytes + 1, '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  const auto got = static_cast<std::size_t>(in.gcount());
  if (got > max_bytes) {
    spdlog::warn("token file '{}' is larger than {} bytes: refused", path, max_bytes);
    return std::nullopt;
  }
  data.resize(got);
  auto t = std::string(protocol::trim(data, protocol::line_blanks));
  if (t.empty()) return std::nullopt;
  return t;
}

token_command_result run_token_command(const std::string& command, std::chrono::milliseconds timeout,
                                       std::size_t max_bytes) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + timeout;
  const auto limit_ms = std::to_string(timeout.count());
  token_child child;
  if (auto e = child.start(command); !e.empty()) return {std::nullopt, e};
  std::string out;
  char buf[4096];
  for (;;) {
    // Rounded up: truncating would end the wait up to a millisecond before the promised timeout.
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
    if (left <= 0) {
      child.kill_group();
      return {std::nullopt, "the token command did not finish within " + limit_ms + " ms (killed)"};
    }
    pollfd p{child.fd(), POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (ready < 0 && errno != EINTR) {
      child.kill_group();
      return {std::nullopt, std::string("cannot read the token command's output: ") + std::strerror(errno)};
    }
    if (ready <= 0) continue;
    const auto n = ::read(child.fd(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // end of output (or a read error: judged by the exit status)
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max_bytes) {
      child.kill_group();
      return {std::nullopt,
              "the token command printed more than " + std::to_string(max_bytes) + " bytes (killed)"};
    }
  }
  // Output closed: the command may still run (it closed stdout); it gets the rest of the time to exit.
  const auto status = child.wait_until(deadline);
  if (!status) {
    child.kill_group();
    return {std::nullopt, "the token command did not finish within " + limit_ms + " ms (killed)"};
  }
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0)
    return {std::nullopt,
            WIFEXITED(*status)
                ? "the token command exited with status " + std::to_string(WEXITSTATUS(*status))
                : "the token command was killed by signal " + std::to_string(WTERMSIG(*status))};
  auto t = std::string(protocol::trim(out, protocol::line_blanks));
  if (t.empty()) return {std::nullopt, "the token command printed nothing"};
  return {t, {}};
}

}  // namespace sb::tunnel::io

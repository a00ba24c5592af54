#pragma once
// Where a tunnel host gets its access token again after a 401: a file it re-reads, or a command it runs.
// Both are hostile input, bounded in size and (the command) in time.
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace sb::tunnel::io {

/// The trimmed token in `path`, read only up to `max_bytes`: a larger file (a log, /dev/zero) is refused, not
/// slurped. nullopt when the file is missing, empty or too large.
std::optional<std::string> read_file_token(const std::string& path, std::size_t max_bytes);

/// What a token command produced: the trimmed token, or why there is none.
struct token_command_result {
  std::optional<std::string> token;
  std::string error;
};

/// Runs `command` with /bin/sh in its own process group, stdin from /dev/null, and reads its stdout: more
/// than `max_bytes` or longer than `timeout` kills the whole group and fails with a clear error.
token_command_result run_token_command(const std::string& command, std::chrono::milliseconds timeout,
                                       std::size_t max_bytes);

}  // namespace sb::tunnel::io

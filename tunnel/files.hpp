#pragma once
// The relay's private files (signing key, tunnel store, management token, SSH key): written whole and
// durably, readable by the owner only.
#include <optional>
#include <string>
#include <string_view>

namespace sb::tunnel {

/// Writes `content` to a temporary file in the same directory with mode 0600, syncs it and renames it over
/// `path`, so a crash leaves either the old file or the new one, never half of one. Returns an error message.
std::optional<std::string> write_private_file(const std::string& path, std::string_view content);

/// `mkdir -p` with mode 0700; throws std::runtime_error naming the part that failed, or when `path` exists
/// and is not a directory.
void make_private_directories(const std::string& path);

bool file_exists(const std::string& path);

/// The whole file; throws std::runtime_error with the reason.
std::string read_whole_file(const std::string& path);

/// "<what> <path>: <strerror(errno)>".
std::string errno_message(const std::string& what, const std::string& path);

}  // namespace sb::tunnel

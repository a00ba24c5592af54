#pragma once
// Flag handling shared by the tunnel-side subcommands (`relay`, `tunnel`): every flag also comes from
// SWITCHBOARD_<FLAG_IN_UPPER_SNAKE> (TUNNEL.md "Commands"), a flag beats the environment, secrets may come
// from files, and a bad value is a usage error (exit 2) that names where it came from.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace sb::cli {

/// Thrown while reading flags; the subcommand prints it and exits with 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// "public-url" -> "SWITCHBOARD_PUBLIC_URL".
std::string env_name(std::string_view flag);

/// A value and where it came from ("--port" or "SWITCHBOARD_PORT"), for error messages.
struct sourced {
  std::string value;
  std::string source;
};

/// The flag's value when given on the command line, else the environment variable's, else nullopt.
/// An empty environment variable counts as unset.
std::optional<sourced> flag_or_env(const std::optional<std::string>& flag_value, std::string_view flag);

/// A secret given directly or as a file (`--x` / `--x-file`, each also from the environment). Both as flags,
/// or both from the environment, is a usage error; a flag beats the other one's environment variable.
/// The file's content is trimmed of surrounding whitespace and must not be empty. nullopt when neither is
/// set.
std::optional<sourced> secret_option(const std::optional<std::string>& direct, std::string_view direct_flag,
                                     const std::optional<std::string>& file, std::string_view file_flag);

/// Trimmed content of a secret file; throws usage_error naming `source` when unreadable or empty.
std::string read_secret_file(const std::string& path, const std::string& source);

/// Parses a TCP port; 0 only when `allow_zero` (let the OS pick). Throws usage_error naming the source.
std::uint16_t parse_port(const sourced& value, bool allow_zero);

/// The subcommand is registered with allow_extras() so that an unknown flag exits with 2 like every other
/// usage error (CLI11's own codes are 100+); this throws usage_error for the first leftover argument.
void reject_extras(const CLI::App& command);

}  // namespace sb::cli

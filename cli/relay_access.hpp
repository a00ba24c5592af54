#pragma once
// What `switchboard host` and `switchboard connect` read the same way: where the relay and the tunnel are,
// the one token source, the protocol, the CA file and the log level.
#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "actors/tunnel_setup.hpp"

namespace sb::cli {

struct relay_access_flags {
  std::optional<std::string> relay, tunnel, token, token_file, token_command, protocol, ca_file, log_level;
};

/// Registers --relay, --tunnel, --token, --token-file, --token-command, --protocol, --ca-file, --log-level.
void add_relay_access_flags(CLI::App& command, relay_access_flags& flags, const std::string& tunnel_help,
                            const std::string& token_help);

/// Reads those flags (or their environment variables) into `s`; throws usage_error naming the bad one.
/// Without `tunnel_required`, an absent tunnel leaves `s.tunnel_id` empty. Returns the log level.
std::string read_relay_access(const relay_access_flags& flags, bool tunnel_required,
                              actors::tunnel_settings& s);

/// Sets the log level and reads the first token from the file or command when none was given; on failure
/// prints "switchboard <command>: <why>" and returns false (the caller exits with 2).
bool start_relay_access(const char* command, const std::string& log_level, actors::tunnel_settings& s);

}  // namespace sb::cli

#pragma once
// Builds a supervised tunnel host from user-level settings (relay URL, tunnel id, token source, ports):
// the endpoint registration through the management API and the token refresh from a file or a command.
// Shared by `switchboard host` and `switchboard serve --tunnel`.
#include <chrono>
#include <cstddef>
#include <optional>
#include <set>
#include <string>

#include "actors/tunnel_host_config.hpp"
#include "tunnel/io/token_source.hpp"

namespace sb::actors {

struct tunnel_settings {
  std::string relay;  // the relay's base URL
  std::string tunnel_id;
  std::string token;          // given directly, or the first read of token_file / token_command
  std::string token_file;     // read again on 401
  std::string token_command;  // run again on 401; its stdout is the token
  tunnel::io::protocol_choice protocol = tunnel::io::protocol_choice::automatic;
  std::set<std::uint16_t> ports;
  tunnel::backoff_policy backoff;
  std::string ca_file;  // extra trust for an https relay with a private certificate
  /// The token command is hostile input too: it must finish within this time and print at most this much.
  std::chrono::milliseconds token_command_timeout{10000};
  std::size_t token_command_max_bytes = 64 * 1024;  // also the largest token file read
  /// The relay connection is declared dead after this long without a byte from the relay (a stopped relay).
  std::chrono::milliseconds relay_idle_timeout = tunnel::io::default_relay_idle_timeout;
};

/// Reads the token from the file or command when no token was given; nullopt with `error` set on failure.
std::optional<std::string> initial_token(const tunnel_settings& s, std::string& error);

/// The endpoint id the host registers: "<hostId>-relay", as the SDK does.
tunnel_host_config make_tunnel_host_config(const tunnel_settings& settings, boost::asio::io_context& ioc);

}  // namespace sb::actors

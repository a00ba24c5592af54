#include "cli/relay_access.hpp"

#include <spdlog/spdlog.h>

#include <iostream>

#include "cli/env_flags.hpp"

namespace sb::cli {

void add_relay_access_flags(CLI::App& command, relay_access_flags& flags, const std::string& tunnel_help,
                            const std::string& token_help) {
  command.add_option("--relay", flags.relay, "relay base URL (SWITCHBOARD_RELAY)");
  command.add_option("--tunnel", flags.tunnel, tunnel_help);
  command.add_option("--token", flags.token, token_help);
  command.add_option("--token-file", flags.token_file, "file holding the token; read again on 401");
  command.add_option("--token-command", flags.token_command, "command printing the token; run again on 401");
  command.add_option("--protocol", flags.protocol, "auto, v2 or v1 (default auto: V2 preferred)");
  command.add_option("--ca-file", flags.ca_file, "extra CA certificates for an https relay");
  command.add_option("--log-level", flags.log_level, "trace, debug, info, warn, error");
}

std::string read_relay_access(const relay_access_flags& f, bool tunnel_required, actors::tunnel_settings& s) {
  auto relay = flag_or_env(f.relay, "relay");
  auto tunnel = flag_or_env(f.tunnel, "tunnel");
  if (!relay) throw usage_error(tunnel_required ? "--relay and --tunnel are required" : "--relay is required");
  if (!tunnel && tunnel_required) throw usage_error("--relay and --tunnel are required");
  s.relay = relay->value;
  if (tunnel) s.tunnel_id = tunnel->value;
  if (auto t = flag_or_env(f.token, "token")) s.token = t->value;
  if (auto t = flag_or_env(f.token_file, "token-file")) s.token_file = t->value;
  if (auto t = flag_or_env(f.token_command, "token-command")) s.token_command = t->value;
  if (int(!s.token.empty()) + int(!s.token_file.empty()) + int(!s.token_command.empty()) != 1)
    throw usage_error("give exactly one of --token, --token-file, --token-command");
  if (auto p = flag_or_env(f.protocol, "protocol")) {
    auto choice = tunnel::io::parse_protocol_choice(p->value);
    if (!choice) throw usage_error(p->source + ": expected auto, v2 or v1, got '" + p->value + "'");
    s.protocol = *choice;
  }
  if (auto v = flag_or_env(f.ca_file, "ca-file")) s.ca_file = v->value;
  auto level = flag_or_env(f.log_level, "log-level");
  return level ? level->value : "info";
}

bool start_relay_access(const char* command, const std::string& log_level, actors::tunnel_settings& s) {
  spdlog::set_level(spdlog::level::from_str(log_level));
  std::string error;
  auto token = actors::initial_token(s, error);
  if (!token) {
    std::cerr << "switchboard " << command << ": " << error << std::endl;
    return false;
  }
  s.token = *token;
  return true;
}

}  // namespace sb::cli

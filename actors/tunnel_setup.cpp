#include "actors/tunnel_setup.hpp"

#include <stdexcept>

#include "protocol/ids.hpp"
#include "tunnel/io/management_http.hpp"

namespace sb::actors {

using tunnel::io::read_file_token;
using tunnel::io::run_token_command;

std::optional<std::string> initial_token(const tunnel_settings& s, std::string& error) {
  if (!s.token.empty()) return s.token;
  if (!s.token_file.empty()) {
    if (auto t = read_file_token(s.token_file, s.token_command_max_bytes)) return t;
    error = "cannot read a token from '" + s.token_file + "' (missing, empty or over " +
            std::to_string(s.token_command_max_bytes) + " bytes)";
    return std::nullopt;
  }
  if (!s.token_command.empty()) {
    auto r = run_token_command(s.token_command, s.token_command_timeout, s.token_command_max_bytes);
    if (!r.token) error = r.error;
    return r.token;
  }
  error = "no token: give --token, --token-file or --token-command";
  return std::nullopt;
}

tunnel_host_config make_tunnel_host_config(const tunnel_settings& settings, boost::asio::io_context& ioc) {
  tunnel_host_config c;
  c.tunnel_id = settings.tunnel_id;
  c.token = settings.token;
  c.protocol = settings.protocol;
  c.ports = settings.ports;
  c.backoff = settings.backoff;
  c.relay_idle_timeout = settings.relay_idle_timeout;
  c.ioc = &ioc;
  auto key = std::make_shared<tunnel::ssh::ecdsa_key>(tunnel::ssh::ecdsa_key::generate());
  c.host_key = key;
  c.ca_file = settings.ca_file;
  const auto host_id = protocol::random_id("host-");
  tunnel::endpoint_registration endpoint{
      host_id + "-relay", host_id, {tunnel::ssh::base64_encode(key->public_blob())}};
  c.resolve = [relay = settings.relay, tunnel_id = settings.tunnel_id, endpoint,
               ca = settings.ca_file](const std::string& token) {
    tunnel::io::management_target target{relay, tunnel::authorization_for(token), {}};
    target.http.ca_file = ca;
    auto r = tunnel::io::put_endpoint(target, tunnel_id, endpoint);
    if (auto* e = std::get_if<tunnel::management_error>(&r))
      return relay_endpoint_result{{}, e->status, e->message()};
    return relay_endpoint_result{std::get<tunnel::relay_endpoint_info>(r).host_relay_uri, 0, {}};
  };
  if (!settings.token_file.empty()) {
    c.refresh_token = [file = settings.token_file, max = settings.token_command_max_bytes] {
      return read_file_token(file, max);
    };
  } else if (!settings.token_command.empty()) {
    // A failure throws: the supervisor reports its message as the reason it stopped.
    c.refresh_token = [command = settings.token_command, timeout = settings.token_command_timeout,
                       max = settings.token_command_max_bytes]() -> std::optional<std::string> {
      auto r = run_token_command(command, timeout, max);
      if (!r.token) throw std::runtime_error(r.error);
      return r.token;
    };
  }
  return c;
}

}  // namespace sb::actors

#include "actors/tunnel_setup.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "protocol/ids.hpp"
#include "transport/management_http.hpp"

namespace sb::actors {

namespace {

std::string trim(std::string s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

std::optional<std::string> read_file_token(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  auto t = trim(ss.str());
  if (t.empty()) return std::nullopt;
  return t;
}

std::optional<std::string> run_token_command(const std::string& command) {
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return std::nullopt;
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0 && out.size() < 64 * 1024) out.append(buf, n);
  const int rc = ::pclose(p);
  auto t = trim(out);
  if (rc != 0 || t.empty()) return std::nullopt;
  return t;
}

}  // namespace

std::optional<transport::protocol_choice> parse_protocol_choice(const std::string& text) {
  if (text == "auto") return transport::protocol_choice::automatic;
  if (text == "v2") return transport::protocol_choice::v2;
  if (text == "v1") return transport::protocol_choice::v1;
  return std::nullopt;
}

std::optional<std::string> initial_token(const tunnel_settings& s, std::string& error) {
  if (!s.token.empty()) return s.token;
  if (!s.token_file.empty()) {
    if (auto t = read_file_token(s.token_file)) return t;
    error = "cannot read a token from '" + s.token_file + "'";
    return std::nullopt;
  }
  if (!s.token_command.empty()) {
    if (auto t = run_token_command(s.token_command)) return t;
    error = "the token command failed or printed nothing";
    return std::nullopt;
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
  c.ioc = &ioc;
  auto key = std::make_shared<tunnel::ssh::ecdsa_key>(tunnel::ssh::ecdsa_key::generate());
  c.host_key = key;
  c.ca_file = settings.ca_file;
  const auto host_id = protocol::random_id("host-");
  tunnel::endpoint_registration endpoint{
      host_id + "-relay", host_id, {tunnel::ssh::base64_encode(key->public_blob())}};
  c.resolve = [relay = settings.relay, tunnel_id = settings.tunnel_id, endpoint,
               ca = settings.ca_file](const std::string& token) {
    transport::management_target target{relay, tunnel::authorization_for(token), {}};
    target.http.ca_file = ca;
    auto r = transport::put_endpoint(target, tunnel_id, endpoint);
    if (auto* e = std::get_if<tunnel::management_error>(&r))
      return relay_endpoint_result{{}, e->status, e->message()};
    return relay_endpoint_result{std::get<tunnel::relay_endpoint_info>(r).host_relay_uri, 0, {}};
  };
  if (!settings.token_file.empty()) {
    c.refresh_token = [file = settings.token_file] { return read_file_token(file); };
  } else if (!settings.token_command.empty()) {
    c.refresh_token = [command = settings.token_command] { return run_token_command(command); };
  }
  return c;
}

}  // namespace sb::actors

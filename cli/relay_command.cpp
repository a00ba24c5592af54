// `switchboard relay`: the management API and the relay WebSockets on one port (TUNNEL.md "Commands").
// Everything a restart must keep lives in --data-dir (default ./switchboard-relay): tunnels.json, the token
// signing key, the generated management token and the relay's SSH key (V1 clients pin it through
// hostPublicKeys). SIGTERM/SIGINT drop hosts and clients (relay_node::close_all: they reconnect as after a
// crash), stop, exit 0.
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "actors/relay_node.hpp"
#include "cli/commands.hpp"
#include "cli/env_flags.hpp"
#include "cli/signals.hpp"
#include "protocol/ids.hpp"
#include "transport/admin_socket.hpp"
#include "transport/bind_address.hpp"
#include "transport/io_pool.hpp"
#include "transport/tls.hpp"
#include "tunnel/files.hpp"
#include "tunnel/io/relay_server.hpp"
#include "tunnel/io/url.hpp"
#include "tunnel/jwt.hpp"
#include "tunnel/management.hpp"
#include "tunnel/ssh/crypto.hpp"

namespace sb::cli {

namespace {

namespace net = boost::asio;

constexpr std::uint16_t default_port = 8090;
constexpr const char* default_data_dir = "./switchboard-relay";
constexpr const char* management_token_file_name = "management-token";
constexpr const char* relay_key_file_name = "relay-ssh-key.pem";
// 32 random bytes, as the gateway's generated tokens.
constexpr std::size_t generated_token_bytes = 32;
// At least two io threads, so one slow handshake never holds up every other connection.
constexpr unsigned min_io_threads = 2;

const std::set<std::string> log_levels = {"trace",   "debug", "info",     "warn",
                                          "warning", "error", "critical", "off"};

struct relay_flags {
  std::optional<std::string> port, bind, public_url, tls_cert, tls_key, management_token,
      management_token_file, signing_key_file, data_dir, log_level, max_json_depth, ssh_handshake_timeout_ms,
      idle_timeout_ms, admin_socket;
};

struct relay_settings {
  std::uint16_t port = default_port;
  std::string bind = "loopback";
  std::string address;  // resolved from bind
  std::optional<std::string> public_url;
  std::optional<std::string> tls_cert, tls_key;
  std::optional<sourced> management_token;
  std::string signing_key_file;
  std::string data_dir = default_data_dir;
  std::string log_level = "info";
  std::size_t max_json_depth = tunnel::default_max_json_depth;
  tunnel::io::relay_limits limits;
  std::string admin_socket;  // empty: none
};

/// A whole number in [min, max], or a usage error naming where it came from.
std::uint64_t parse_bounded(const sourced& v, std::uint64_t min, std::uint64_t max) {
  std::uint64_t n = 0;
  const bool digits =
      !v.value.empty() && v.value.size() <= 19 &&
      std::all_of(v.value.begin(), v.value.end(), [](unsigned char c) { return std::isdigit(c); });
  if (digits) n = std::stoull(v.value);
  if (!digits || n < min || n > max)
    throw usage_error(v.source + ": '" + v.value + "' is not a whole number from " + std::to_string(min) +
                      " to " + std::to_string(max));
  return n;
}

relay_settings resolve(const relay_flags& f) {
  relay_settings s;
  if (auto v = flag_or_env(f.port, "port")) s.port = parse_port(*v, true);
  if (auto v = flag_or_env(f.bind, "bind")) s.bind = v->value;
  try {
    s.address = transport::resolve_bind_address(s.bind);
  } catch (const std::exception& e) {
    throw usage_error("--bind: " + std::string(e.what()));
  }
  boost::system::error_code ec;
  net::ip::make_address(s.address, ec);
  if (ec) throw usage_error("--bind: '" + s.bind + "' is not loopback, all, lan or an IP address");
  if (auto v = flag_or_env(f.public_url, "public-url")) {
    // Checked again by management_api; here so that nothing is written to the data dir for a bad URL.
    auto url = tunnel::io::parse_url(v->value);
    if (!url || (url->scheme != "http" && url->scheme != "https"))
      throw usage_error(v->source + ": '" + v->value + "' is not an http:// or https:// URL");
    if (url->target != "/" || v->value.find('?') != std::string::npos)
      throw usage_error(v->source + ": '" + v->value + "' has a path; the SDK needs a base URL without one");
    s.public_url = v->value;
  }
  auto cert = flag_or_env(f.tls_cert, "tls-cert");
  auto key = flag_or_env(f.tls_key, "tls-key");
  if (cert.has_value() != key.has_value())
    throw usage_error(cert ? cert->source + " needs --tls-key too" : key->source + " needs --tls-cert too");
  if (cert) {
    s.tls_cert = cert->value;
    s.tls_key = key->value;
  }
  s.management_token =
      secret_option(f.management_token, "management-token", f.management_token_file, "management-token-file");
  if (auto v = flag_or_env(f.signing_key_file, "signing-key-file")) s.signing_key_file = v->value;
  if (auto v = flag_or_env(f.data_dir, "data-dir")) {
    if (v->value.empty()) throw usage_error(v->source + " is empty");
    s.data_dir = v->value;
  }
  if (auto v = flag_or_env(f.max_json_depth, "max-json-depth"))
    s.max_json_depth = parse_bounded(*v, 1, tunnel::default_max_json_depth);
  // A day at most: beyond that a bound protects nothing.
  constexpr std::uint64_t max_timeout_ms = 24ull * 60 * 60 * 1000;
  if (auto v = flag_or_env(f.ssh_handshake_timeout_ms, "ssh-handshake-timeout-ms"))
    s.limits.ssh_handshake_timeout = std::chrono::milliseconds(parse_bounded(*v, 0, max_timeout_ms));
  if (auto v = flag_or_env(f.admin_socket, "admin-socket")) s.admin_socket = v->value;
  if (auto v = flag_or_env(f.idle_timeout_ms, "idle-timeout-ms"))
    s.limits.idle_timeout = std::chrono::milliseconds(parse_bounded(*v, 0, max_timeout_ms));
  if (auto v = flag_or_env(f.log_level, "log-level")) {
    if (!log_levels.count(v->value))
      throw usage_error(v->source + ": '" + v->value +
                        "' is not one of trace, debug, info, warn, error, critical, off");
    s.log_level = v->value;
  }
  return s;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// The management token from the flags, or the one a previous start wrote to the data directory, or a new
/// one written there. Returns the token and the line that tells the operator where it is.
std::pair<std::string, std::string> management_token(const relay_settings& s) {
  if (s.management_token)
    return {s.management_token->value, "management token from " + s.management_token->source};
  const auto path =
      (std::filesystem::absolute(s.data_dir).lexically_normal() / management_token_file_name).string();
  if (std::filesystem::exists(path)) {
    std::string token = read_file(path);
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
    if (token.empty()) throw std::runtime_error(path + " is empty; delete it to generate a new token");
    return {token, "management token: " + path};
  }
  std::string token = protocol::random_token(generated_token_bytes);
  if (auto error = tunnel::write_private_file(path, token + "\n")) throw std::runtime_error(*error);
  return {token, "management token: generated, written to " + path};
}

/// The relay's SSH host key (ecdsa-sha2-nistp384) for the V1 client sessions it terminates, kept across
/// restarts: V1 clients check it against the endpoint's hostPublicKeys they fetched earlier.
std::shared_ptr<tunnel::ssh::ecdsa_key> relay_key(const std::string& data_dir) {
  const auto path = (std::filesystem::path(data_dir) / relay_key_file_name).string();
  if (std::filesystem::exists(path)) {
    auto key = tunnel::ssh::ecdsa_key::from_pem(read_file(path));
    if (!key) throw std::runtime_error(path + " is not an EC P-384 private key in PEM");
    return std::make_shared<tunnel::ssh::ecdsa_key>(std::move(*key));
  }
  auto key = std::make_shared<tunnel::ssh::ecdsa_key>(tunnel::ssh::ecdsa_key::generate());
  if (auto error = tunnel::write_private_file(path, key->to_pem())) throw std::runtime_error(*error);
  spdlog::info("generated the relay SSH key in {}", path);
  return key;
}

/// http(s)://<bind address>:<port>. An unspecified address (bind all) names no reachable host, so the
/// loopback address stands in and the operator is told to pass --public-url.
std::string default_public_url(const relay_settings& s, std::uint16_t port) {
  auto address = net::ip::make_address(s.address);
  if (address.is_unspecified()) {
    spdlog::warn("--bind {} listens on every interface; pass --public-url with the name clients use", s.bind);
    address = address.is_v4() ? net::ip::address(net::ip::address_v4::loopback())
                              : net::ip::address(net::ip::address_v6::loopback());
  }
  const auto host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return std::string(s.tls_cert ? "https" : "http") + "://" + host + ":" + std::to_string(port);
}

int run_relay(const relay_flags& flags, const CLI::App& command) {
  relay_settings s;
  try {
    reject_extras(command);
    s = resolve(flags);
  } catch (const usage_error& e) {
    std::cerr << "switchboard relay: " << e.what() << std::endl;
    return 2;
  }
  spdlog::set_level(spdlog::level::from_str(s.log_level));

  std::shared_ptr<net::ssl::context> tls;
  if (s.tls_cert) {
    try {
      tls = transport::make_server_tls_context(*s.tls_cert, *s.tls_key);
    } catch (const std::exception& e) {
      std::cerr << "switchboard relay: --tls-cert/--tls-key: " << e.what() << std::endl;
      return 2;
    }
  }

  // Operator files (data dir, keys, token): a failure here is reported before anything is served.
  std::unique_ptr<tunnel::tunnel_store> store;
  std::string token, token_line;
  std::shared_ptr<tunnel::ssh::ecdsa_key> key;
  try {
    store = std::make_unique<tunnel::tunnel_store>(s.data_dir, s.signing_key_file);
    std::tie(token, token_line) = management_token(s);
    key = relay_key(s.data_dir);
  } catch (const std::exception& e) {
    std::cerr << "switchboard relay: " << e.what() << std::endl;
    return 1;
  }

  const auto signals = block_signals();
  transport::io_pool io(std::max(min_io_threads, std::thread::hardware_concurrency()));
  auto& ioc = io.context();
  tunnel::io::relay_server_options options;
  options.address = s.address;
  options.port = s.port;
  options.tls = tls;
  tunnel::io::relay_server server(ioc, options);
  std::uint16_t port = 0;
  try {
    port = server.bind();
  } catch (const std::exception& e) {
    std::cerr << "switchboard relay: " << e.what() << std::endl;
    return 1;
  }
  const auto public_url = s.public_url.value_or(default_public_url(s, port));
  std::unique_ptr<tunnel::management_api> api;
  try {
    api = std::make_unique<tunnel::management_api>(*store, token, public_url, store->key());
  } catch (const std::invalid_argument& e) {
    std::cerr << "switchboard relay: --public-url: " << e.what() << std::endl;
    return 2;
  }
  api->set_relay_host_public_keys({tunnel::ssh::base64_encode(key->public_blob())});
  api->set_max_json_depth(s.max_json_depth);
  actors::relay_node node(key, s.limits);
  server.serve(*api, node.hub());
  std::unique_ptr<transport::admin_server> admin;
  if (!s.admin_socket.empty()) {
    try {
      admin = std::make_unique<transport::admin_server>(
          ioc, s.admin_socket, [&node](nlohmann::json req, auto respond) { node.answer_admin(req, std::move(respond)); });
      admin->start();
    } catch (const std::exception& e) {
      std::cerr << "switchboard relay: --admin-socket: " << e.what() << std::endl;
      return 1;
    }
  }

  const auto data_dir = std::filesystem::absolute(s.data_dir).lexically_normal().string();
  // One parseable line first: scripts read the URL from it (`--port 0` picks the port).
  std::cout << "switchboard relay " << public_url << " data-dir " << data_dir << std::endl;
  std::cout << "listening on "
            << (s.address.find(':') != std::string::npos ? "[" + s.address + "]" : s.address) << ':' << port
            << (tls ? " (TLS)" : "") << ", " << store->size() << " tunnel(s)" << std::endl;
  std::cout << token_line << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: closing hosts and clients", sig);
  server.stop();
  if (admin) admin->stop_accepting();
  node.close_all();
  const auto deadline = std::chrono::steady_clock::now() + transport::shutdown_grace;
  while (!node.idle() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // The hub forgets a session before its WebSocket has closed: let the loop run out of work (pending writes
  // and WebSocket closes) before stopping it, within the same grace period.
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (!io.drain_and_join(std::max(left, std::chrono::milliseconds(0))))
    spdlog::warn("connections still open after {} ms: closing them", transport::shutdown_grace.count());
  if (admin) admin->stop();
  node.stop();
  const auto& limits_hit = node.counters();
  spdlog::info(
      "stopped; connections closed by limits: {} without an SSH handshake in time, {} idle; {} "
      "bodies refused as too deep",
      limits_hit.ssh_handshake_timeouts.load(), limits_hit.idle_timeouts.load(),
      api->counters().json_too_deep.load());
  return 0;
}

}  // namespace

std::function<int()> add_relay_command(CLI::App& app) {
  auto flags = std::make_shared<relay_flags>();
  auto* cmd =
      app.add_subcommand("relay", "Run a Dev Tunnels compatible relay (management API + relay WebSockets)");
  cmd->allow_extras();
  auto opt = [&](const char* name, std::optional<std::string>& target, const std::string& help,
                 const char* type) {
    cmd->add_option(std::string("--") + name, target, help + " [env " + env_name(name) + "]")
        ->type_name(type);
  };
  opt("port", flags->port, "TCP port; 0 lets the OS pick (default 8090)", "PORT");
  opt("bind", flags->bind, "loopback, all, lan or an IP address (default loopback)", "ADDR");
  opt("public-url", flags->public_url,
      "base URL clients and the SDK use, no path (default http(s)://<bind address>:<port>)", "URL");
  opt("tls-cert", flags->tls_cert, "PEM certificate chain: serve https/wss", "FILE");
  opt("tls-key", flags->tls_key, "PEM private key of --tls-cert", "FILE");
  opt("management-token", flags->management_token, "token for 'Authorization: Bearer' (full access)",
      "TOKEN");
  opt("management-token-file", flags->management_token_file, "file holding the management token", "FILE");
  opt("signing-key-file", flags->signing_key_file,
      "HS256 key for tunnel access tokens (hex/base64; generated if missing; default <data-dir>/signing-key)",
      "FILE");
  opt("data-dir", flags->data_dir,
      "tunnels, keys and the generated management token (default ./switchboard-relay)", "DIR");
  opt("max-json-depth", flags->max_json_depth,
      "deepest nesting accepted in a management request body, 1 to 64; deeper is 400 (default 64)", "N");
  opt("ssh-handshake-timeout-ms", flags->ssh_handshake_timeout_ms,
      "a relay WebSocket whose SSH session is not ready by then is closed; 0: no limit (default 10000)",
      "MS");
  opt("idle-timeout-ms", flags->idle_timeout_ms,
      "a client relay WebSocket with no bytes either way for this long is closed; 0: no limit (default "
      "300000)",
      "MS");
  opt("admin-socket", flags->admin_socket, "admin Unix socket (stats, tunnels, actors)", "PATH");
  opt("log-level", flags->log_level, "trace, debug, info, warn, error, critical, off (default info)",
      "LEVEL");
  cmd->footer(
      "Without a management token one is generated once and kept in <data-dir>/management-token (mode "
      "0600).\n"
      "A flag beats its environment variable. Prints 'switchboard relay <public-url> data-dir <dir>' when "
      "ready.");
  return [flags, cmd] { return run_relay(*flags, *cmd); };
}

}  // namespace sb::cli

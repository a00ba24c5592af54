// `switchboard host`: exposes local ports through a tunnel of a relay, under a supervisor that reconnects
// with backoff. SIGTERM/SIGINT stop it (exit 0); a fatal relay answer (403, 404, a second 401) exits 1.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <iostream>
#include <thread>

#include "actors/tunnel_host_node.hpp"
#include "actors/tunnel_setup.hpp"
#include "cli/commands.hpp"
#include "cli/env_flags.hpp"
#include "cli/relay_access.hpp"
#include "cli/signals.hpp"
#include "transport/admin_socket.hpp"
#include "transport/io_pool.hpp"
#include "tunnel/io/management_http.hpp"

namespace sb::cli {

namespace {

struct host_flags : relay_access_flags {
  std::optional<std::string> admin_socket, backoff_initial_ms, backoff_max_ms, max_attempts,
      token_command_timeout_ms, token_command_max_bytes, relay_idle_timeout_ms;
  std::vector<std::string> ports;
};

std::uint64_t number_of(const sourced& v, std::uint64_t min, std::uint64_t max) {
  try {
    std::size_t used = 0;
    const auto n = std::stoull(v.value, &used);
    if (used == v.value.size() && n >= min && n <= max) return n;
  } catch (...) {
  }
  throw usage_error(v.source + ": expected a number from " + std::to_string(min) + " to " +
                    std::to_string(max) + ", got '" + v.value + "'");
}

/// Reads every flag (or its environment variable) into settings; throws usage_error naming the bad one.
actors::tunnel_settings settings_from(const host_flags& f, std::string& level) {
  actors::tunnel_settings s;
  // Without a tunnel, one is created with the management token (see create_own_tunnel).
  level = read_relay_access(f, false, s);
  for (const auto& text : f.ports) s.ports.insert(parse_port({text, "--port"}, false));
  if (f.ports.empty())
    if (auto p = flag_or_env(std::nullopt, "port")) s.ports.insert(parse_port(*p, false));
  if (s.ports.empty()) throw usage_error("give at least one --port");
  if (auto v = flag_or_env(f.backoff_initial_ms, "backoff-initial-ms"))
    s.backoff.initial = std::chrono::milliseconds(number_of(*v, 1, 600000));
  if (auto v = flag_or_env(f.backoff_max_ms, "backoff-max-ms"))
    s.backoff.cap = std::chrono::milliseconds(number_of(*v, 1, 3600000));
  if (s.backoff.cap < s.backoff.initial)
    throw usage_error("--backoff-max-ms must not be below --backoff-initial-ms");
  if (auto v = flag_or_env(f.max_attempts, "max-attempts"))
    s.backoff.max_attempts = static_cast<unsigned>(number_of(*v, 0, 1u << 30));
  if (auto v = flag_or_env(f.token_command_timeout_ms, "token-command-timeout-ms"))
    s.token_command_timeout = std::chrono::milliseconds(number_of(*v, 1, 3600000));
  if (auto v = flag_or_env(f.token_command_max_bytes, "token-command-max-bytes"))
    s.token_command_max_bytes = static_cast<std::size_t>(number_of(*v, 1, 16 * 1024 * 1024));
  if (auto v = flag_or_env(f.relay_idle_timeout_ms, "relay-idle-timeout-ms"))
    s.relay_idle_timeout = std::chrono::milliseconds(number_of(*v, 0, 3600000));
  return s;
}

/// Without --tunnel, a management token creates a tunnel for the host's ports; the host continues with its
/// host token and prints the connect token, so a walk-through needs no separate `tunnel create`.
bool create_own_tunnel(actors::tunnel_settings& s, std::string& error) {
  tunnel::io::management_target target{s.relay, tunnel::authorization_for(s.token), {}};
  target.http.ca_file = s.ca_file;
  const std::vector<std::uint16_t> ports(s.ports.begin(), s.ports.end());
  auto r = tunnel::io::create_tunnel(target, tunnel::generate_tunnel_id(), ports, {"host", "connect"});
  if (auto* e = std::get_if<tunnel::management_error>(&r)) {
    error = "cannot create a tunnel: " + e->message();
    return false;
  }
  const auto& t = std::get<tunnel::tunnel_info>(r);
  auto host = t.access_tokens.find("host");
  auto connect = t.access_tokens.find("connect");
  if (host == t.access_tokens.end() || connect == t.access_tokens.end()) {
    error = "the relay returned no host or connect token";
    return false;
  }
  s.tunnel_id = t.tunnel_id;
  s.token = host->second;
  std::cout << "created tunnel " << t.tunnel_id << "\nconnect with: switchboard connect --relay " << s.relay
            << " --tunnel " << t.tunnel_id << " --token " << connect->second << std::endl;
  return true;
}

int run_host(const host_flags& flags, const CLI::App& command) {
  actors::tunnel_settings settings;
  std::string admin_path, level = "info";
  try {
    reject_extras(command);
    settings = settings_from(flags, level);
    if (auto v = flag_or_env(flags.admin_socket, "admin-socket")) admin_path = v->value;
  } catch (const usage_error& e) {
    std::cerr << "switchboard host: " << e.what() << std::endl;
    return 2;
  }
  if (!start_relay_access("host", level, settings)) return 2;
  std::string error;
  if (settings.tunnel_id.empty() && !create_own_tunnel(settings, error)) {
    std::cerr << "switchboard host: " << error << std::endl;
    return 1;
  }

  // SIGUSR1: the supervisor gave up (see on_gave_up below).
  const auto signals = block_signals({SIGINT, SIGTERM, SIGUSR1});

  transport::io_pool io(2);
  auto& ioc = io.context();
  int exit_code = 0;
  {
    auto config = actors::make_tunnel_host_config(settings, ioc);
    std::string fatal;
    std::mutex fatal_mtx;
    config.on_gave_up = [&](const std::string& why) {
      {
        std::lock_guard<std::mutex> g(fatal_mtx);
        fatal = why;
      }
      ::kill(::getpid(), SIGUSR1);
    };
    config.on_status = [](tunnel::connection_status s, const std::string&) {
      if (s == tunnel::connection_status::connected) std::cout << "status connected" << std::endl;
    };
    actors::tunnel_host_node node(std::move(config));
    std::unique_ptr<transport::admin_server> admin;
    if (!admin_path.empty()) {
      admin = std::make_unique<transport::admin_server>(
          ioc, admin_path, [&node](nlohmann::json req, auto respond) { node.answer_admin(req, std::move(respond)); });
      admin->start();
    }
    std::cout << "switchboard host tunnel " << settings.tunnel_id << " relay " << settings.relay << " ports";
    for (auto p : settings.ports) std::cout << ' ' << p;
    std::cout << std::endl;
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGUSR1) {
      std::lock_guard<std::mutex> g(fatal_mtx);
      std::cerr << "switchboard host: " << fatal << std::endl;
      exit_code = 1;
    }
    node.stop();
    if (admin) admin->stop_accepting();
    io.drain_and_join(transport::shutdown_grace);  // the relay connection's close runs to its end (nothing leaks)
    if (admin) admin->stop();
  }
  return exit_code;
}

}  // namespace

std::function<int()> add_host_command(CLI::App& app) {
  auto flags = std::make_shared<host_flags>();
  auto* cmd = app.add_subcommand("host", "Expose local ports through a tunnel of a relay");
  cmd->allow_extras();
  add_relay_access_flags(
      *cmd, *flags,
      "tunnel id (SWITCHBOARD_TUNNEL); omitted with a management --token: a new tunnel is created",
      "host access token (SWITCHBOARD_TOKEN)");
  cmd->add_option("--port", flags->ports, "local port to expose (repeatable)");
  cmd->add_option("--admin-socket", flags->admin_socket,
                  "admin Unix socket (tunnel, ports.add, ports.remove, actors)");
  cmd->add_option("--backoff-initial-ms", flags->backoff_initial_ms,
                  "first reconnect delay ceiling (default 1000)");
  cmd->add_option("--backoff-max-ms", flags->backoff_max_ms, "reconnect delay cap (default 16000)");
  cmd->add_option("--max-attempts", flags->max_attempts,
                  "give up after this many failed attempts (0: never)");
  cmd->add_option("--token-command-timeout-ms", flags->token_command_timeout_ms,
                  "the token command is killed (with its process group) after this long (default 10000)");
  cmd->add_option("--token-command-max-bytes", flags->token_command_max_bytes,
                  "the token command is killed once it printed more than this (default 65536)");
  cmd->add_option("--relay-idle-timeout-ms", flags->relay_idle_timeout_ms,
                  "reconnect when the relay sent nothing for this long; pinged a third of it apart (default "
                  "15000, 0: never)");
  return [flags, cmd] { return run_host(*flags, *cmd); };
}

}  // namespace sb::cli

// `switchboard connect`: the tunnel client. Listens on 127.0.0.1 for each port the tunnel's host forwards
// (same number unless mapped) and carries each connection through the relay; reconnects with backoff after a
// lost connection, following the same retry rules as the host.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <iostream>
#include <random>
#include <thread>

#include "actors/tunnel_setup.hpp"
#include "cli/commands.hpp"
#include "cli/env_flags.hpp"
#include "cli/relay_access.hpp"
#include "cli/signals.hpp"
#include "transport/io_pool.hpp"
#include "tunnel/io/management_http.hpp"

namespace sb::cli {

namespace {

struct connect_flags : relay_access_flags {
  std::vector<std::string> maps;
};

std::map<std::uint16_t, std::uint16_t> parse_maps(const std::vector<std::string>& maps) {
  std::map<std::uint16_t, std::uint16_t> out;
  for (const auto& m : maps) {
    auto colon = m.find(':');
    if (colon == std::string::npos) throw usage_error("--map: expected REMOTE:LOCAL, got '" + m + "'");
    out[parse_port({m.substr(0, colon), "--map"}, false)] = parse_port({m.substr(colon + 1), "--map"}, true);
  }
  return out;
}

/// What the client's callbacks report to the main loop.
struct client_events {
  std::mutex mtx;
  std::condition_variable cv;
  std::deque<std::variant<tunnel::io::relay_outcome, std::pair<std::uint32_t, bool>, tunnel::protocol_version>>
      queue;
  bool stop = false;

  template <class T>
  void push(T v) {
    std::lock_guard<std::mutex> g(mtx);
    queue.emplace_back(std::move(v));
    cv.notify_all();
  }
};

struct resolved_endpoint {
  std::string uri;
  std::vector<std::string> keys;
  tunnel::tunnel_error error;
};

resolved_endpoint find_client_endpoint(const actors::tunnel_settings& s) {
  tunnel::io::management_target target{s.relay, tunnel::authorization_for(s.token), {}};
  target.http.ca_file = s.ca_file;
  auto r = tunnel::io::get_tunnel(target, s.tunnel_id, {}, true);
  resolved_endpoint out;
  if (auto* e = std::get_if<tunnel::management_error>(&r)) {
    out.error = tunnel::classify(e->status, 0, e->status == 0, false, e->message());
    return out;
  }
  for (const auto& ep : std::get<tunnel::tunnel_info>(r).endpoints) {
    if (ep.connection_mode != "TunnelRelay" || ep.client_relay_uri.empty()) continue;
    out.uri = ep.client_relay_uri;
    out.keys = ep.host_public_keys;
    return out;
  }
  // The SDK fails at once when no host has registered an endpoint; so do we.
  out.error = tunnel::tunnel_error{tunnel::error_kind::not_found, 0, "the tunnel has no host endpoint"};
  return out;
}

int run_connect(const connect_flags& flags, const CLI::App& command) {
  actors::tunnel_settings s;
  std::map<std::uint16_t, std::uint16_t> maps;
  std::string level = "info";
  try {
    reject_extras(command);
    level = read_relay_access(flags, true, s);
    maps = parse_maps(flags.maps);
  } catch (const usage_error& e) {
    std::cerr << "switchboard connect: " << e.what() << std::endl;
    return 2;
  }
  if (!start_relay_access("connect", level, s)) return 2;

  const auto signals = block_signals();
  client_events events;
  std::thread([&signals, &events] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::lock_guard<std::mutex> g(events.mtx);
    events.stop = true;
    events.cv.notify_all();
  }).detach();

  transport::io_pool io(2);
  auto& ioc = io.context();

  tunnel::retry_state retry;
  std::mt19937_64 rng{std::random_device{}()};
  std::shared_ptr<tunnel::io::client_peer> client;
  int exit_code = 0;
  for (;;) {
    auto endpoint = find_client_endpoint(s);
    tunnel::tunnel_error failure = endpoint.error;
    if (!endpoint.uri.empty()) {
      tunnel::io::client_options o;
      o.relay_uri = endpoint.uri;
      o.token = s.token;
      o.protocol = s.protocol;
      o.host_public_keys = endpoint.keys;
      o.port_map = maps;
      o.ca_file = s.ca_file;
      tunnel::io::relay_peer_callbacks cb;
      cb.connected = [&events](tunnel::protocol_version v) { events.push(v); };
      cb.ended = [&events](const tunnel::io::relay_outcome& out) { events.push(out); };
      cb.port_changed = [&events](std::uint32_t port, bool added) {
        events.push(std::make_pair(port, added));
      };
      client = std::make_shared<tunnel::io::client_peer>(ioc, o, cb);
      client->start();
      std::unique_lock<std::mutex> lock(events.mtx);
      for (;;) {
        events.cv.wait(lock, [&] { return events.stop || !events.queue.empty(); });
        if (events.stop) break;
        auto e = std::move(events.queue.front());
        events.queue.pop_front();
        if (auto* v = std::get_if<tunnel::protocol_version>(&e)) {
          retry = {};
          std::cout << "status connected " << tunnel::version_name(*v) << std::endl;
        } else if (auto* p = std::get_if<std::pair<std::uint32_t, bool>>(&e)) {
          const auto listening = client->listening();
          auto it = listening.find(static_cast<std::uint16_t>(p->first));
          if (p->second && it != listening.end())
            std::cout << "forwarding remote port " << p->first << " on 127.0.0.1:" << it->second << std::endl;
          else if (!p->second)
            std::cout << "stopped forwarding remote port " << p->first << std::endl;
        } else {
          const auto& out = std::get<tunnel::io::relay_outcome>(e);
          failure =
              tunnel::classify(out.http_status, out.ssh_reason, out.network, out.was_connected, out.message);
          break;
        }
      }
      if (events.stop) break;
      client.reset();
    }
    ++retry.attempts;
    auto step = tunnel::decide(failure, retry, s.backoff.max_attempts);
    if (step == tunnel::next_step::refresh_token_then_retry) {
      retry.token_refreshed = true;
      auto cfg = actors::make_tunnel_host_config(s, ioc);  // only for its token refresher
      std::optional<std::string> fresh;
      try {
        if (cfg.refresh_token) fresh = cfg.refresh_token();
      } catch (const std::exception& e) {  // a token command that failed, timed out or printed too much
        failure.message += "; token refresh failed: " + std::string(e.what());
      }
      if (!fresh)
        step = tunnel::next_step::stop;
      else
        s.token = *fresh;
    }
    if (step == tunnel::next_step::stop) {
      std::cerr << "switchboard connect: " << tunnel::to_string(failure.kind)
                << (failure.http_status ? " (HTTP " + std::to_string(failure.http_status) + ")" : "") << ": "
                << failure.message << std::endl;
      exit_code = 1;
      break;
    }
    if (step == tunnel::next_step::retry_after_backoff) {
      const auto delay = tunnel::retry_delay(s.backoff, failure, retry.attempts - 1, rng);
      spdlog::info("connect: {}; retrying in {} ms", failure.message, delay.count());
      std::unique_lock<std::mutex> lock(events.mtx);
      if (events.cv.wait_for(lock, delay, [&] { return events.stop; })) break;
    }
  }
  if (client) client->stop();
  client.reset();
  io.drain_and_join(transport::shutdown_grace);  // the relay connection's close runs to its end
  return exit_code;
}

}  // namespace

std::function<int()> add_connect_command(CLI::App& app) {
  auto flags = std::make_shared<connect_flags>();
  auto* cmd = app.add_subcommand("connect", "Reach a tunnel's ports on 127.0.0.1 through a relay");
  cmd->allow_extras();
  add_relay_access_flags(*cmd, *flags, "tunnel id (SWITCHBOARD_TUNNEL)",
                         "connect access token (SWITCHBOARD_TOKEN)");
  cmd->add_option("--map", flags->maps, "REMOTE:LOCAL port mapping (repeatable; LOCAL 0 picks a free port)");
  return [flags, cmd] { return run_connect(*flags, *cmd); };
}

}  // namespace sb::cli

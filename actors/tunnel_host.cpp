#include "actors/tunnel_host.hpp"

#include <spdlog/spdlog.h>

#include <caf/all.hpp>
#include <thread>

#include "actors/admin_commands.hpp"

namespace sb::actors {

namespace {

using tunnel::connection_status;
using tunnel::next_step;

/// A blocking call (endpoint registration, a token command) on a thread an actor's state owns and joins
/// when the actor stops: it cannot outlive the actor, or the actor system. The thread must hold its actor
/// only weakly (see send_weak), or the actor could never stop. The calls it runs are bounded in time, so a
/// join waits at most that long.
class owned_thread {
 public:
  owned_thread() = default;
  owned_thread(const owned_thread&) = delete;
  owned_thread& operator=(const owned_thread&) = delete;
  ~owned_thread() { join(); }
  /// Runs `fn` through `runner` when one is configured, else on this thread object.
  void start(const std::function<void(std::function<void()>)>& runner, std::function<void()> fn) {
    if (runner) return runner(std::move(fn));
    join();
    thread_ = std::thread(std::move(fn));
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::thread thread_;
};

/// Sends to an actor that may be gone: a weak handle keeps nothing alive (nor touches a system shut down).
template <class Handle, class... Ts>
void send_weak(const caf::actor_addr& to, Ts&&... xs) {
  if (auto a = caf::actor_cast<Handle>(to)) caf::anon_send(a, std::forward<Ts>(xs)...);
}

// -- one forwarded client stream ---------------------------------------------------------------------------

struct stream_state {
  static inline const char* name = "sb.tunnel_stream";
  std::uint64_t id = 0;
  std::uint16_t port = 0;
  std::int64_t opened_at = 0;
};

tunnel_stream_actor::behavior_type stream_behavior(tunnel_stream_actor::stateful_pointer<stream_state> self,
                                                   std::uint64_t id, std::uint16_t port) {
  self->state.id = id;
  self->state.port = port;
  self->state.opened_at = protocol::now_ms();
  return {
      [self](stream_closed_atom, std::uint64_t in, std::uint64_t out) {
        spdlog::debug("tunnel stream {} on port {} closed ({} bytes in, {} out)", self->state.id,
                      self->state.port, in, out);
        self->quit();
      },
      [self](status_atom) {
        const auto& s = self->state;
        return actor_status{std::to_string(s.id), self->mailbox().size(), tunnel_stream_status{s.port, s.opened_at}};
      },
  };
}

// -- one relay connection attempt
// ------------------------------------------------------------------------------

struct connection_state {
  static inline const char* name = "sb.tunnel_connection";
  tunnel_host_config cfg;
  tunnel_supervisor_actor supervisor;
  std::string relay_uri;
  std::shared_ptr<tunnel::io::host_peer> peer;
  std::map<std::uint64_t, tunnel_stream_actor> streams;
  bool connected = false;
  std::optional<tunnel::protocol_version> version;
  owned_thread resolver;  // declared last: joined first, before the rest of the state goes

  // CAF 0.17 destroys the state before attached cleanup runs, so the connection is dropped here.
  ~connection_state() {
    if (peer) peer->stop();
    for (auto& [_, s] : streams) caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
  }
};

using connection_ptr = tunnel_connection_actor::stateful_pointer<connection_state>;

/// Turns host_peer callbacks (on socket strands) into messages to this actor. Weakly: the peer's handlers
/// may still be queued on the io_context after the actor, or the whole actor system, is gone.
tunnel::io::relay_peer_callbacks callbacks_to(const caf::actor_addr& self) {
  tunnel::io::relay_peer_callbacks cb;
  cb.connected = [self](tunnel::protocol_version v) { send_weak<tunnel_connection_actor>(self, relay_up_atom_v, v); };
  cb.ended = [self](const tunnel::io::relay_outcome& o) { send_weak<tunnel_connection_actor>(self, relay_down_atom_v, o); };
  cb.stream_opened = [self](std::uint64_t id, std::uint16_t port) {
    send_weak<tunnel_connection_actor>(self, stream_opened_atom_v, id, port);
  };
  cb.stream_closed = [self](std::uint64_t id, std::uint64_t in, std::uint64_t out) {
    send_weak<tunnel_connection_actor>(self, stream_closed_atom_v, id, in, out);
  };
  return cb;
}

void fail_attempt(connection_ptr self, const tunnel::tunnel_error& error) {
  self->send(self->state.supervisor, relay_down_atom_v, error);
  self->quit();
}

tunnel_connection_actor::behavior_type connection_behavior(connection_ptr self, tunnel_host_config cfg,
                                                          tunnel_supervisor_actor supervisor) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.supervisor = std::move(supervisor);
  // Registering the endpoint is a blocking HTTP call: keep it off the actor's thread.
  st.resolver.start(st.cfg.run_blocking, [me = self->address(), resolve = st.cfg.resolve, token = st.cfg.token] {
    relay_endpoint_result r;
    try {
      r = resolve ? resolve(token) : relay_endpoint_result{{}, 0, "no endpoint resolver"};
    } catch (const std::exception& e) {
      r.error = e.what();
    }
    send_weak<tunnel_connection_actor>(me, endpoint_resolved_atom_v, r);
  });
  return {
      [self](endpoint_resolved_atom, relay_endpoint_result& r) {
        auto& s = self->state;
        if (r.host_relay_uri.empty())
          return fail_attempt(self, tunnel::classify(r.http_status, 0, r.http_status == 0, false,
                                                     "endpoint registration failed: " + r.error));
        s.relay_uri = r.host_relay_uri;
        tunnel::io::host_options o;
        o.relay_uri = s.relay_uri;
        o.token = s.cfg.token;
        o.protocol = s.cfg.protocol;
        o.ports = s.cfg.ports;
        o.host_key = s.cfg.host_key;
        o.ca_file = s.cfg.ca_file;
        o.idle_timeout = s.cfg.relay_idle_timeout;
        s.peer = std::make_shared<tunnel::io::host_peer>(*s.cfg.ioc, o, callbacks_to(self->address()));
        s.peer->start();
      },
      [self](relay_up_atom, tunnel::protocol_version v) {
        self->state.connected = true;
        self->state.version = v;
        self->send(self->state.supervisor, relay_up_atom_v, v, self->state.relay_uri);
      },
      [self](relay_down_atom, const tunnel::io::relay_outcome& o) {
        fail_attempt(self,
                     tunnel::classify(o.http_status, o.ssh_reason, o.network, o.was_connected, o.message));
      },
      [self](stream_opened_atom, std::uint64_t id, std::uint16_t port) {
        self->state.streams[id] = self->spawn(stream_behavior, id, port);
      },
      [self](stream_closed_atom, std::uint64_t id, std::uint64_t in, std::uint64_t out) {
        auto it = self->state.streams.find(id);
        if (it == self->state.streams.end()) return;
        self->send(it->second, stream_closed_atom_v, in, out);
        self->state.streams.erase(it);
      },
      [self](port_add_atom, std::uint16_t port) {
        self->state.cfg.ports.insert(port);
        if (self->state.peer) self->state.peer->add_port(port);
      },
      [self](port_remove_atom, std::uint16_t port) {
        self->state.cfg.ports.erase(port);
        if (self->state.peer) self->state.peer->remove_port(port);
      },
      [self](children_atom) {
        std::vector<status_actor> out;
        for (const auto& [_, s] : self->state.streams) out.emplace_back(s);
        return out;
      },
      [self](status_atom) {
        const auto& s = self->state;
        tunnel_connection_status st{s.relay_uri, s.connected, s.streams.size(), std::nullopt};
        if (s.peer) {
          auto stats = s.peer->current_stats();
          st.traffic = tunnel_traffic{stats.streams_total, stats.bytes_in, stats.bytes_out};
        }
        return actor_status{s.cfg.tunnel_id, self->mailbox().size(), st};
      },
  };
}

// -- the supervisor
// --------------------------------------------------------------------------------------------

struct supervisor_state {
  static inline const char* name = "sb.tunnel_supervisor";
  tunnel_host_config cfg;
  connection_status status = connection_status::none;
  tunnel_connection_actor child;
  tunnel::retry_state retry;
  std::uint64_t reconnects = 0;
  std::uint64_t attempts_total = 0;
  bool ever_connected = false;
  std::optional<std::int64_t> next_retry_ms;  // epoch ms of the scheduled restart
  std::string last_error;
  std::optional<tunnel::protocol_version> version;
  std::string relay_uri;
  std::mt19937_64 rng{std::random_device{}()};
  bool stopped = false;
  owned_thread refresher;  // declared last: joined first
};

using supervisor_ptr = tunnel_supervisor_actor::stateful_pointer<supervisor_state>;

void set_status(supervisor_ptr self, connection_status s, const std::string& why = {}) {
  auto& st = self->state;
  if (st.status == s && why.empty()) return;
  spdlog::info("tunnel {}: {}{}{}", st.cfg.tunnel_id, tunnel::to_string(s), why.empty() ? "" : ": ", why);
  st.status = s;
  if (st.cfg.metrics) st.cfg.metrics->tunnel_status.store(static_cast<int>(s));
  if (st.cfg.on_status) st.cfg.on_status(s, why);
}

void start_child(supervisor_ptr self) {
  auto& st = self->state;
  st.next_retry_ms.reset();
  set_status(self, connection_status::connecting);
  ++st.attempts_total;
  st.child = self->spawn(connection_behavior, st.cfg, caf::actor_cast<tunnel_supervisor_actor>(self));
  self->monitor(st.child);
}

void schedule_restart(supervisor_ptr self, const tunnel::tunnel_error& error) {
  auto& st = self->state;
  const auto delay = tunnel::retry_delay(st.cfg.backoff, error, st.retry.attempts - 1, st.rng);
  st.next_retry_ms = protocol::now_ms() + delay.count();
  spdlog::info("tunnel {}: retry {} in {} ms", st.cfg.tunnel_id, st.retry.attempts, delay.count());
  self->delayed_send(self, delay, restart_atom_v);
}

void refresh_then_restart(supervisor_ptr self) {
  auto& st = self->state;
  set_status(self, connection_status::refreshing_token);
  st.retry.token_refreshed = true;
  st.refresher.start(st.cfg.run_blocking, [me = self->address(), refresh = st.cfg.refresh_token] {
    std::optional<std::string> token;
    std::string error = "no token";
    try {
      token = refresh();
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (!token || token->empty()) spdlog::warn("tunnel token refresh failed: {}", error);
    send_weak<tunnel_supervisor_actor>(me, token_refreshed_atom_v, token.value_or(std::string{}), error);
  });
}

void on_attempt_failed(supervisor_ptr self, const tunnel::tunnel_error& error) {
  auto& st = self->state;
  st.child = nullptr;
  st.last_error = std::string(tunnel::to_string(error.kind)) +
                  (error.http_status ? " (HTTP " + std::to_string(error.http_status) + ")" : "") + ": " +
                  error.message;
  if (st.status == connection_status::connected) ++st.reconnects;
  if (st.cfg.metrics && st.status == connection_status::connected)
    st.cfg.metrics->tunnel_reconnects.fetch_add(1);
  ++st.retry.attempts;
  if (error.kind == tunnel::error_kind::too_many_requests || error.kind == tunnel::error_kind::bad_gateway ||
      error.kind == tunnel::error_kind::service_unavailable)
    ++st.retry.throttled_attempts;
  if (st.stopped) return set_status(self, connection_status::disconnected, "stopped");
  auto step = tunnel::decide(error, st.retry, st.cfg.backoff.max_attempts);
  if (step == next_step::refresh_token_then_retry && !st.cfg.refresh_token) step = next_step::stop;
  set_status(self, connection_status::disconnected, st.last_error);
  switch (step) {
    case next_step::refresh_token_then_retry:
      return refresh_then_restart(self);
    case next_step::retry_after_backoff:
      return schedule_restart(self, error);
    case next_step::stop:
      spdlog::error("tunnel {}: giving up: {}", st.cfg.tunnel_id, st.last_error);
      if (st.cfg.on_gave_up) st.cfg.on_gave_up(st.last_error);
      return;
  }
}

tunnel_info describe(supervisor_ptr self) {
  const auto& st = self->state;
  tunnel_info out;
  out.tunnel_id = st.cfg.tunnel_id;
  out.status = std::string(tunnel::to_string(st.status));
  out.relay = st.relay_uri;
  if (st.version) out.protocol = tunnel::version_name(*st.version);
  out.ports.assign(st.cfg.ports.begin(), st.cfg.ports.end());
  out.reconnects = st.reconnects;
  out.attempts = st.attempts_total;
  out.next_retry = st.next_retry_ms;
  if (!st.last_error.empty()) out.last_error = st.last_error;
  return out;
}

tunnel_supervisor_actor::behavior_type supervisor_behavior(supervisor_ptr self, tunnel_host_config cfg) {
  self->state.cfg = std::move(cfg);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if (!st.child || dm.source != st.child.address()) return;
    // A connection actor that reported its failure quits normally after it; anything else is a crash.
    if (dm.reason && dm.reason != caf::exit_reason::normal) {
      tunnel::tunnel_error e{tunnel::error_kind::network, 0,
                             "connection actor failed: " + to_string(dm.reason)};
      on_attempt_failed(self, e);
    }
  });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    self->state.stopped = true;
    if (self->state.child) self->send_exit(self->state.child, msg.reason);
    self->quit(msg.reason);
  });
  start_child(self);
  return {
      [self](relay_up_atom, tunnel::protocol_version v, const std::string& relay_uri) {
        auto& st = self->state;
        st.retry = {};
        st.version = v;
        st.relay_uri = relay_uri;
        st.ever_connected = true;
        set_status(self, connection_status::connected);
      },
      [self](relay_down_atom, const tunnel::tunnel_error& error) {
        if (self->current_sender() != self->state.child.address()) return;
        on_attempt_failed(self, error);
      },
      [self](restart_atom) {
        if (!self->state.child && !self->state.stopped) start_child(self);
      },
      [self](token_refreshed_atom, const std::string& token, const std::string& error) {
        auto& st = self->state;
        if (st.stopped) return;
        if (token.empty()) {
          // Refreshing is the one answer to a 401; without a token the 401 stands, and it is final.
          st.last_error = "token refresh failed: " + error;
          set_status(self, connection_status::disconnected, st.last_error);
          if (st.cfg.on_gave_up) st.cfg.on_gave_up(st.last_error);
          return;
        }
        st.cfg.token = token;
        start_child(self);
      },
      [self](port_add_atom, std::uint16_t port) {
        self->state.cfg.ports.insert(port);
        if (self->state.child) self->send(self->state.child, port_add_atom_v, port);
      },
      [self](port_remove_atom, std::uint16_t port) {
        self->state.cfg.ports.erase(port);
        if (self->state.child) self->send(self->state.child, port_remove_atom_v, port);
      },
      [self](info_atom) -> caf::result<tunnel_info> {
        // Clients and bytes live in the connection actor: ask it, so the answer is live.
        auto base = describe(self);
        if (!self->state.child) {
          base.clients = 0;
          return base;
        }
        auto rp = self->make_response_promise<tunnel_info>();
        self->request(self->state.child, status_ask_timeout, status_atom_v)
            .then(
                [rp, base](actor_status& child) mutable {
                  const auto& st = std::get<tunnel_connection_status>(child.state);
                  base.clients = st.streams;
                  base.traffic = st.traffic.value_or(tunnel_traffic{});
                  rp.deliver(std::move(base));
                },
                [rp, base](caf::error&) mutable { rp.deliver(std::move(base)); });
        return rp;
      },
      [self](status_atom) {
        return actor_status{self->state.cfg.tunnel_id, self->mailbox().size(), describe(self)};
      },
      [self](children_atom) -> caf::result<std::vector<status_actor>> {
        // The live actors under this supervisor: the connection and its streams.
        if (!self->state.child) return std::vector<status_actor>{};
        auto rp = self->make_response_promise<std::vector<status_actor>>();
        auto child = self->state.child;
        self->request(child, status_ask_timeout, children_atom_v)
            .then(
                [rp, child](std::vector<status_actor>& streams) mutable {
                  streams.insert(streams.begin(), status_actor{child});
                  rp.deliver(std::move(streams));
                },
                [rp](caf::error&) mutable { rp.deliver(std::vector<status_actor>{}); });
        return rp;
      },
  };
}

}  // namespace

tunnel_supervisor_actor spawn_tunnel_supervisor(caf::actor_system& sys, tunnel_host_config config) {
  return sys.spawn(supervisor_behavior, std::move(config));
}

void tunnel_admin(caf::actor_system& sys, const tunnel_supervisor_actor& supervisor,
                  const protocol::admin_command& command, std::function<void(json)> respond) {
  using verb = protocol::admin_command::verb;
  if (command.what == verb::ports_add || command.what == verb::ports_remove) {
    const bool add = command.what == verb::ports_add;
    if (add)
      caf::anon_send(supervisor, port_add_atom_v, command.port);
    else
      caf::anon_send(supervisor, port_remove_atom_v, command.port);
    return respond(admin_ok({{"port", command.port}, {add ? "added" : "removed", true}}));
  }
  if (command.what != verb::tunnel && command.what != verb::actors)
    return respond(admin_fail("unknown command '" + command.name + "'"));
  sys.spawn([supervisor, what = command.what, respond](caf::event_based_actor* self) {
    auto silent = [respond](caf::error& e) {
      respond(admin_fail("tunnel supervisor did not answer: " + to_string(e)));
    };
    if (what == verb::tunnel) {
      self->request(supervisor, status_ask_timeout, info_atom_v)
          .then([respond](tunnel_info& info) { respond(admin_ok(info)); }, silent);
      return;
    }
    // actors: the supervisor, its connection and every stream, each asked live.
    self->request(supervisor, status_ask_timeout, children_atom_v)
        .then(
            [self, supervisor, respond](std::vector<status_actor>& children) {
              children.insert(children.begin(), status_actor{supervisor});
              auto results = std::make_shared<json>(json::array());
              auto remaining = std::make_shared<std::size_t>(children.size());
              auto finish_one = [results, remaining, respond] {
                if (--*remaining == 0) respond(admin_ok({{"actors", *results}}));
              };
              for (auto& a : children)
                self->request(a, status_ask_timeout, status_atom_v)
                    .then(
                        [results, finish_one](actor_status& s) {
                          results->push_back(s);
                          finish_one();
                        },
                        [finish_one](caf::error&) { finish_one(); });
            },
            silent);
  });
}

}  // namespace sb::actors

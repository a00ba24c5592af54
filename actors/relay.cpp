#include "actors/relay.hpp"

#include <spdlog/spdlog.h>

#include <caf/all.hpp>
#include <chrono>
#include <map>

#include "actors/admin_commands.hpp"
#include "protocol/ids.hpp"

namespace sb::actors {

namespace {

using json = nlohmann::json;
using tunnel::io::relay_link_handle;
using tunnel::io::relay_role;
using tunnel::protocol_version;
using tunnel::version_name;

/// Sends to an actor that may be gone: a weak handle keeps nothing alive (nor touches a system shut down).
template <class Handle, class... Ts>
void send_weak(const caf::actor_addr& to, Ts&&... xs) {
  if (auto a = caf::actor_cast<Handle>(to)) caf::anon_send(a, std::forward<Ts>(xs)...);
}

// -- one relay WebSocket
// --------------------------------------------------------------------------------------

struct connection_state {
  static inline const char* name = "sb.relay_connection";
  std::shared_ptr<relay_link_handle> link;
  relay_tunnel_actor tunnel;
  std::int64_t opened_at = 0;
};

using connection_ptr = relay_connection_actor::stateful_pointer<connection_state>;

/// Asks the directory for the tunnel's actor and attaches the connection to it; until then nothing else
/// is handled (`await`), so the tunnel hears of the connection before anything it reports.
relay_connection_actor::behavior_type connection_behavior(connection_ptr self, relay_host_ref host,
                                                          relay_client_ref client, relay_directory_actor directory) {
  auto& st = self->state;
  st.link = host ? std::static_pointer_cast<relay_link_handle>(host) : client;
  st.opened_at = protocol::now_ms();
  // Linked: when the relay's actors end, so does this one, whether or not its connection said goodbye.
  self->link_to(directory);
  self->request(directory, caf::infinite, tunnel_of_atom_v, st.link->tunnel_id())
      .await(
          [self, host, client](relay_tunnel_actor& t) {
            self->state.tunnel = t;
            const auto me = caf::actor_cast<relay_connection_actor>(self);
            if (host)
              self->send(t, host_attached_atom_v, host, me);
            else
              self->send(t, client_attached_atom_v, client, me);
          },
          [self](caf::error& e) {
            spdlog::warn("relay: no tunnel actor for a connection of tunnel {}: {}", self->state.link->tunnel_id(),
                         to_string(e));
            self->state.link->close(0, "relay shutting down");
            self->quit();
          });
  return {
      [self](link_ready_atom) { self->send(self->state.tunnel, link_ready_atom_v, self->state.link->id()); },
      [self](port_changed_atom, std::uint32_t port, std::string& address, bool added) {
        self->send(self->state.tunnel, port_changed_atom_v, self->state.link->id(), port, std::move(address), added);
      },
      [self](link_closed_atom, std::uint32_t reason, const std::string& message) {
        spdlog::debug("relay: {} {} of tunnel {} closed ({}: {})", name_of(self->state.link->role()),
                      self->state.link->id(), self->state.link->tunnel_id(), reason, message);
        self->send(self->state.tunnel, link_closed_atom_v, self->state.link->id());
        self->quit();
      },
      [self](status_atom) {
        const auto& l = *self->state.link;
        const auto s = l.stats();
        return actor_status{std::to_string(l.id()), self->mailbox().size(),
                            relay_connection_status{name_of(l.role()), l.tunnel_id(), version_name(l.version()),
                                                    s.ready, s.bytes_in, s.bytes_out, s.channels,
                                                    self->state.opened_at}};
      },
  };
}

/// Where a connection of the data plane reports: its connection actor, held weakly (the connection may
/// outlive the actor system by the time its last handler runs).
class link_events final : public tunnel::io::relay_link_events {
 public:
  explicit link_events(caf::actor_addr actor) : actor_(std::move(actor)) {}
  void ready() override { send_weak<relay_connection_actor>(actor_, link_ready_atom_v); }
  void port_changed(std::uint32_t port, const std::string& address, bool added) override {
    send_weak<relay_connection_actor>(actor_, port_changed_atom_v, port, address, added);
  }
  void closed(std::uint32_t reason, const std::string& message) override {
    send_weak<relay_connection_actor>(actor_, link_closed_atom_v, reason, message);
  }

 private:
  caf::actor_addr actor_;
};

// -- one tunnel
// -----------------------------------------------------------------------------------------------

template <class Ref>
struct attached {
  Ref link;
  relay_connection_actor actor;
  bool ready = false;
};

struct tunnel_state {
  static inline const char* name = "sb.relay_tunnel";
  std::string tunnel_id;
  relay_directory_actor directory;
  std::shared_ptr<tunnel::io::relay_counters> counters;
  std::optional<attached<relay_host_ref>> host;
  std::map<std::uint32_t, std::string> ports;
  std::map<std::uint64_t, attached<relay_client_ref>> clients;
  std::uint64_t attachments = 0;  // every attach seen, for the directory's idle check
  std::uint64_t hosts_replaced = 0;
};

using tunnel_ptr = relay_tunnel_actor::stateful_pointer<tunnel_state>;

tunnel::io::relay_tunnel_view view_of(const tunnel_state& st) {
  return {st.host ? st.host->link : nullptr, st.ports};
}

void show_all(tunnel_ptr self) {
  const auto view = view_of(self->state);
  for (auto& [_, c] : self->state.clients) c.link->show(view);
}

/// A V1 host's ports are learnt only inside a session of its own, which the relay opens once a client
/// whose session the relay terminates is there, and the host is ready.
void serve_terminated_clients_if_needed(tunnel_ptr self) {
  auto& st = self->state;
  if (!st.host || !st.host->ready || st.host->link->version() != protocol_version::v1) return;
  for (const auto& [_, c] : st.clients)
    if (c.ready && c.link->role() == relay_role::client) return st.host->link->serve_terminated_clients();
}

relay_tunnel_info describe(const tunnel_state& st) {
  relay_tunnel_info info;
  info.tunnel_id = st.tunnel_id;
  if (st.host) {
    info.host = st.host->link->id();
    info.protocol = version_name(st.host->link->version());
  }
  for (const auto& [port, _] : st.ports) info.ports.push_back(port);
  info.clients = st.clients.size();
  info.hosts_replaced = st.hosts_replaced;
  return info;
}

/// The directory decides whether an idle tunnel ends: a connection may have been handed this actor and be
/// about to attach.
void report_if_idle(tunnel_ptr self) {
  const auto& st = self->state;
  if (!st.host && st.clients.empty()) self->send(st.directory, tunnel_idle_atom_v, st.tunnel_id, st.attachments);
}

relay_tunnel_actor::behavior_type tunnel_behavior(tunnel_ptr self, std::string tunnel_id,
                                                  relay_directory_actor directory,
                                                  std::shared_ptr<tunnel::io::relay_counters> counters) {
  self->state.tunnel_id = std::move(tunnel_id);
  self->state.directory = std::move(directory);
  self->state.counters = std::move(counters);
  return {
      [self](host_attached_atom, relay_host_ref& link, relay_connection_actor& actor) {
        auto& st = self->state;
        ++st.attachments;
        if (st.host) {
          spdlog::info("relay: a new host for tunnel {} replaces the previous one", st.tunnel_id);
          ++st.hosts_replaced;
          ++st.counters->hosts_replaced;
          st.host->link->close(tunnel::ssh::disconnect_reason::too_many_connections,
                               "another host connected to this tunnel");
        }
        st.host = attached<relay_host_ref>{std::move(link), std::move(actor), false};
        st.ports.clear();
        show_all(self);
      },
      [self](client_attached_atom, relay_client_ref& link, relay_connection_actor& actor) {
        auto& st = self->state;
        ++st.attachments;
        link->show(view_of(st));
        const auto id = link->id();  // before the move below: an assignment's right side is evaluated first
        st.clients[id] = attached<relay_client_ref>{std::move(link), std::move(actor), false};
      },
      [self](link_ready_atom, std::uint64_t id) {
        auto& st = self->state;
        if (st.host && st.host->link->id() == id) st.host->ready = true;
        if (auto c = st.clients.find(id); c != st.clients.end()) c->second.ready = true;
        serve_terminated_clients_if_needed(self);
      },
      [self](port_changed_atom, std::uint64_t host, std::uint32_t port, std::string& address, bool added) {
        auto& st = self->state;
        if (!st.host || st.host->link->id() != host) return;  // a replaced host's last words
        if (added) {
          spdlog::info("relay: tunnel {} forwards port {}", st.tunnel_id, port);
          st.ports[port] = std::move(address);
        } else {
          st.ports.erase(port);
        }
        show_all(self);
      },
      [self](link_closed_atom, std::uint64_t id) {
        auto& st = self->state;
        if (st.host && st.host->link->id() == id) {
          st.host.reset();
          st.ports.clear();
          show_all(self);
        }
        st.clients.erase(id);
        report_if_idle(self);
      },
      [self](host_version_atom) -> optional_version {
        if (!self->state.host) return std::nullopt;
        return self->state.host->link->version();
      },
      [self](close_all_atom) {
        // Drop rather than say goodbye: hosts and clients treat a lost connection as retryable and come back
        // once the relay is up again, as they would after a crash.
        auto& st = self->state;
        if (st.host) st.host->link->close(0, "relay shutting down");
        for (auto& [_, c] : st.clients) c.link->close(0, "relay shutting down");
      },
      [self](info_atom) { return describe(self->state); },
      [self](children_atom) {
        std::vector<status_actor> out;
        if (self->state.host) out.emplace_back(status_actor{self->state.host->actor});
        for (auto& [_, c] : self->state.clients) out.emplace_back(status_actor{c.actor});
        return out;
      },
      [self](status_atom) {
        return actor_status{self->state.tunnel_id, self->mailbox().size(), describe(self->state)};
      },
  };
}

// -- the directory
// --------------------------------------------------------------------------------------------

struct directory_state {
  static inline const char* name = "sb.relay_directory";
  struct entry {
    relay_tunnel_actor actor;
    std::uint64_t handed_out = 0;  // times this actor was given to a connection to attach to
  };
  std::map<std::string, entry> tunnels;
  std::shared_ptr<tunnel::io::relay_counters> counters;

  void count() { counters->tunnels_active = tunnels.size(); }
};

using directory_ptr = relay_directory_actor::stateful_pointer<directory_state>;

relay_directory_actor::behavior_type directory_behavior(directory_ptr self,
                                                        std::shared_ptr<tunnel::io::relay_counters> counters) {
  self->state.counters = std::move(counters);
  // The tunnel and connection actors are linked to the directory, so they all end with it. One of them
  // ending does not end the directory: a tunnel actor that failed is forgotten (its connections' next reports
  // go nowhere; the peers' connections stay), and a connection actor's end is its own business.
  self->set_exit_handler([self](caf::exit_msg& m) {
    if (m.source == self->address()) return self->quit(m.reason);
    auto& tunnels = self->state.tunnels;
    for (auto it = tunnels.begin(); it != tunnels.end(); ++it)
      if (it->second.actor.address() == m.source) {
        if (m.reason && m.reason != caf::exit_reason::user_shutdown)
          spdlog::error("relay: the actor of tunnel {} failed: {}", it->first, to_string(m.reason));
        tunnels.erase(it);
        break;
      }
    self->state.count();
  });
  return {
      [self](tunnel_of_atom, const std::string& id) {
        auto& st = self->state;
        auto it = st.tunnels.find(id);
        if (it == st.tunnels.end()) {
          auto t = self->spawn<caf::linked>(tunnel_behavior, id, caf::actor_cast<relay_directory_actor>(self),
                                            st.counters);
          it = st.tunnels.emplace(id, directory_state::entry{t, 0}).first;
          st.count();
        }
        ++it->second.handed_out;
        return it->second.actor;
      },
      [self](tunnel_idle_atom, const std::string& id, std::uint64_t seen) {
        auto& st = self->state;
        auto it = st.tunnels.find(id);
        // Still handed out to a connection that has not attached yet: not idle after all.
        if (it == st.tunnels.end() || it->second.handed_out != seen) return;
        self->send_exit(it->second.actor, caf::exit_reason::user_shutdown);
        st.tunnels.erase(it);
        st.count();
      },
      [self](host_version_atom, const std::string& id) -> caf::result<optional_version> {
        auto it = self->state.tunnels.find(id);
        if (it == self->state.tunnels.end()) return optional_version{};
        return self->delegate(it->second.actor, host_version_atom_v);
      },
      [self](tunnel_list_atom) {
        relay_tunnel_page page;
        for (const auto& [id, e] : self->state.tunnels) page.entries.emplace_back(id, e.actor);
        page.total = page.entries.size();
        return page;
      },
      [self](close_all_atom) {
        for (const auto& [_, e] : self->state.tunnels) self->send(e.actor, close_all_atom_v);
        return self->state.tunnels.size();
      },
      [self](status_atom) {
        return actor_status{"relay", self->mailbox().size(), relay_directory_status{self->state.tunnels.size()}};
      },
  };
}

// -- the data plane's entry
// -----------------------------------------------------------------------------------

// -- admin
// ----------------------------------------------------------------------------------------------------

json relay_stats(const tunnel::io::relay_counters& c) {
  return {{"tunnels", c.tunnels_active.load()},
          {"hosts", c.hosts_open.load()},
          {"clients", c.clients_open.load()},
          {"hostsAccepted", c.hosts_accepted.load()},
          {"clientsAccepted", c.clients_accepted.load()},
          {"hostsReplaced", c.hosts_replaced.load()},
          {"sshHandshakes", c.ssh_handshakes.load()},
          {"bytesIn", c.bytes_in.load()},
          {"bytesOut", c.bytes_out.load()},
          {"authFailures", {{"401", c.unauthorized.load()}, {"403", c.forbidden.load()}, {"404", c.not_found.load()}}},
          {"limitsExceeded",
           {{"ssh-handshake-timeout-ms", c.ssh_handshake_timeouts.load()},
            {"idle-timeout-ms", c.idle_timeouts.load()}}}};
}

json status_or_silent(const std::string& id, const std::optional<actor_status>& s) {
  if (s) return *s;
  return {{"kind", "unknown"}, {"id", id}, {"mailbox", nullptr}, {"state", "unresponsive"}};
}

/// `actors`: the directory, every tunnel actor and every connection actor, each asked live.
void list_relay_actors(caf::event_based_actor* self, const relay_directory_actor& directory,
                       const std::function<void(json)>& respond) {
  self->request(directory, status_ask_timeout, tunnel_list_atom_v)
      .then(
          [=](relay_tunnel_page& page) {
            fan_in<std::vector<status_actor>>(
                self, page.entries,
                [=](answers<std::vector<status_actor>> children) {
                  std::vector<std::pair<std::string, status_actor>> targets;
                  targets.emplace_back("relay", status_actor{directory});
                  for (std::size_t i = 0; i < page.entries.size(); ++i) {
                    targets.emplace_back(page.entries[i].first, status_actor{page.entries[i].second});
                    if (children[i].second)
                      for (auto& c : *children[i].second) targets.emplace_back(page.entries[i].first, c);
                  }
                  fan_in<actor_status>(
                      self, targets,
                      [respond](answers<actor_status> list) {
                        json out = json::array();
                        for (auto& [id, s] : list) out.push_back(status_or_silent(id, s));
                        respond(admin_ok({{"actors", std::move(out)}}));
                      },
                      status_atom_v);
                },
                children_atom_v);
          },
          [respond](caf::error&) { respond(admin_fail("the relay directory did not answer")); });
}

void list_relay_tunnels(caf::event_based_actor* self, const relay_directory_actor& directory,
                        const std::function<void(json)>& respond) {
  self->request(directory, status_ask_timeout, tunnel_list_atom_v)
      .then(
          [=](relay_tunnel_page& page) {
            fan_in<relay_tunnel_info>(
                self, page.entries,
                [respond](answers<relay_tunnel_info> list) {
                  json out = json::array();
                  for (auto& [id, info] : list)
                    out.push_back(info ? json(*info) : json{{"tunnelId", id}, {"state", "unresponsive"}});
                  const auto total = out.size();
                  respond(admin_ok({{"tunnels", std::move(out)}, {"total", total}}));
                },
                info_atom_v);
          },
          [respond](caf::error&) { respond(admin_fail("the relay directory did not answer")); });
}

}  // namespace

relay_directory_actor spawn_relay_directory(caf::actor_system& sys,
                                            std::shared_ptr<tunnel::io::relay_counters> counters) {
  return sys.spawn(directory_behavior, std::move(counters));
}

relay_actor_control::relay_actor_control(caf::actor_system& sys, relay_directory_actor directory)
    : sys_(sys), directory_(std::move(directory)) {}

std::shared_ptr<tunnel::io::relay_link_events> relay_actor_control::host_opened(relay_host_ref host) {
  std::lock_guard<std::mutex> g(mtx_);
  if (down_) {
    host->close(0, "relay shutting down");
    return std::make_shared<link_events>(caf::actor_addr{});
  }
  auto a = sys_.spawn(connection_behavior, std::move(host), relay_client_ref{}, directory_);
  return std::make_shared<link_events>(a.address());
}

std::shared_ptr<tunnel::io::relay_link_events> relay_actor_control::client_opened(relay_client_ref client) {
  std::lock_guard<std::mutex> g(mtx_);
  if (down_) {
    client->close(0, "relay shutting down");
    return std::make_shared<link_events>(caf::actor_addr{});
  }
  auto a = sys_.spawn(connection_behavior, relay_host_ref{}, std::move(client), directory_);
  return std::make_shared<link_events>(a.address());
}

void relay_actor_control::host_version(const std::string& tunnel_id, std::function<void(optional_version)> done) {
  std::unique_lock<std::mutex> g(mtx_);
  if (down_) {
    g.unlock();
    return done(std::nullopt);
  }
  // A short-lived actor asks, so the calling strand never waits.
  sys_.spawn([directory = directory_, tunnel_id, done = std::move(done)](caf::event_based_actor* self) {
    self->request(directory, status_ask_timeout, host_version_atom_v, tunnel_id)
        .then([done](optional_version& v) { done(v); }, [done](caf::error&) { done(std::nullopt); });
  });
}

void relay_actor_control::shut_down() {
  std::lock_guard<std::mutex> g(mtx_);
  down_ = true;
  directory_ = nullptr;  // the hub (and this) may outlive the actor system: hold nothing of it
}

void run_relay_admin(caf::actor_system& sys, relay_directory_actor directory,
                     std::shared_ptr<const tunnel::io::relay_counters> counters,
                     const protocol::admin_command& command, std::function<void(json)> respond) {
  using verb = protocol::admin_command::verb;
  switch (command.what) {
    case verb::stats:
      return respond(admin_ok(relay_stats(*counters)));
    case verb::tunnels:
    case verb::actors:
      sys.spawn([directory, what = command.what, respond](caf::event_based_actor* self) {
        if (what == verb::tunnels)
          list_relay_tunnels(self, directory, respond);
        else
          list_relay_actors(self, directory, respond);
      });
      return;
    default:
      return respond(admin_fail("unknown command '" + command.name + "': a relay answers stats, tunnels, actors"));
  }
}

}  // namespace sb::actors

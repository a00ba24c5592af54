// The gateway supervisor: the indexes (client id -> actor, session id -> actor), session creation, and
// cleanup of children that end. A crashed client is cleaned up as if it had disconnected; a crashed session
// is dropped from the index (its members' next request answers SESSION_NOT_FOUND); a crashed agent registry
// is restarted, empty, and every client is given the new handle.
#include <spdlog/spdlog.h>

#include <caf/all.hpp>
#include <map>
#include <variant>

#include "actors/spawn.hpp"

namespace sb::actors {

namespace {

using protocol::error_code;

/// What a monitored child is, so its DOWN message is handled for its kind.
struct client_child {
  std::string id;
};
struct session_child {
  std::string id;
};
struct registry_child {};
using child_kind = std::variant<client_child, session_child, registry_child>;

struct supervisor_state {
  static inline const char* name = "sb.supervisor";
  context_ptr ctx;  // carries this supervisor, for the sessions it spawns
  std::map<std::string, client_actor> clients;
  std::map<std::string, presence_entry> presence;  // authenticated clients only
  std::map<std::string, session_actor> sessions;
  registry_actor registry;
  std::uint64_t registry_restarts = 0;
  std::map<caf::actor_addr, child_kind> watched;
};

using supervisor_ptr = gateway_supervisor_actor::stateful_pointer<supervisor_state>;

template <class Handle>
void watch(supervisor_ptr self, const Handle& child, child_kind kind) {
  self->state.watched.emplace(child.address(), std::move(kind));
  self->monitor(child);
}

op_result session_not_found(const std::string& sid) {
  return op_result::fail(error_code::session_not_found, "session '" + sid + "' not found");
}

/// Hands a session operation to the session, or answers SESSION_NOT_FOUND.
template <class Reply, class... Ts>
caf::result<Reply> to_session(supervisor_ptr self, const std::string& sid, Reply not_found, Ts&&... xs) {
  auto it = self->state.sessions.find(sid);
  if (it == self->state.sessions.end()) return not_found;
  return self->delegate(it->second, std::forward<Ts>(xs)...);
}

void start_registry(supervisor_ptr self) {
  auto& st = self->state;
  st.registry = spawn_agent_registry(self->system(), st.ctx);
  watch(self, st.registry, registry_child{});
}

void on_client_down(supervisor_ptr self, const std::string& id, const caf::error& reason) {
  auto& st = self->state;
  st.clients.erase(id);
  st.presence.erase(id);
  if (!reason || reason == caf::exit_reason::normal) return;
  // The client could not say goodbye: do it for it, so no session keeps a dead member and no agent stays
  // online.
  spdlog::error("client {}: ended abnormally ({}), cleaning up", id, to_string(reason));
  for (const auto& [_, session] : st.sessions) self->send(session, client_gone_atom_v, id);
  self->send(st.registry, client_gone_atom_v, id);
}

void on_session_down(supervisor_ptr self, const caf::actor_addr& source, const std::string& id,
                     const caf::error& reason) {
  auto& st = self->state;
  if (auto s = st.sessions.find(id); s != st.sessions.end() && s->second.address() == source)
    st.sessions.erase(s);
  if (reason && reason != caf::exit_reason::normal)
    spdlog::error("session {}: ended abnormally: {}", id, to_string(reason));
}

void on_registry_down(supervisor_ptr self, const caf::error& reason) {
  auto& st = self->state;
  ++st.registry_restarts;
  spdlog::error("agent registry ended ({}); restarting it (restart {})", to_string(reason),
                st.registry_restarts);
  start_registry(self);
  for (const auto& [_, c] : st.clients) self->send(c, registry_atom_v, st.registry);
}

void on_down(supervisor_ptr self, const caf::down_msg& dm) {
  auto& st = self->state;
  auto it = st.watched.find(dm.source);
  if (it == st.watched.end()) return;
  const auto kind = std::move(it->second);
  st.watched.erase(it);
  if (auto* c = std::get_if<client_child>(&kind)) return on_client_down(self, c->id, dm.reason);
  if (auto* s = std::get_if<session_child>(&kind)) return on_session_down(self, dm.source, s->id, dm.reason);
  // The registry: a shutdown (exit handler below) ends it on purpose; anything else restarts it.
  if (dm.reason == caf::exit_reason::user_shutdown) return;
  on_registry_down(self, dm.reason);
}

/// A page of an index in id order: up to `limit` entries after `cursor`.
template <class Handle>
index_page<Handle> page_of(const std::map<std::string, Handle>& index, const std::string& cursor,
                           std::uint64_t limit) {
  index_page<Handle> out;
  out.total = index.size();
  auto it = cursor.empty() ? index.begin() : index.upper_bound(cursor);
  for (; it != index.end() && out.entries.size() < limit; ++it) out.entries.emplace_back(*it);
  if (it != index.end() && !out.entries.empty()) out.more = out.entries.back().first;
  return out;
}

/// The entry for `id`, as a page of zero or one.
template <class Handle>
index_page<Handle> find_in(const std::map<std::string, Handle>& index, const std::string& id) {
  index_page<Handle> out;
  out.total = index.size();
  if (auto it = index.find(id); it != index.end()) out.entries.emplace_back(*it);
  return out;
}

std::size_t drain_clients(supervisor_ptr self) {
  auto& st = self->state;
  st.ctx->server_state->draining.store(true);
  for (const auto& [_, c] : st.clients) self->send(c, drain_atom_v);
  spdlog::info("draining: closing {} clients with 1001", st.clients.size());
  return st.clients.size();
}

}  // namespace

gateway_supervisor_actor::behavior_type supervisor_behavior(supervisor_ptr self, context_ptr ctx) {
  auto own = std::make_shared<gateway_context>(*ctx);
  own->supervisor = caf::actor_cast<gateway_supervisor_actor>(self);
  self->state.ctx = std::move(own);
  self->state.registry = ctx->registry;
  if (self->state.registry)
    watch(self, self->state.registry, registry_child{});
  else
    start_registry(self);
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& st = self->state;
    for (const auto& [_, c] : st.clients) self->send_exit(c, msg.reason);
    for (const auto& [_, s] : st.sessions) self->send_exit(s, msg.reason);
    self->send_exit(st.registry, msg.reason);
    self->quit(msg.reason);
  });
  return {
      [self](client_started_atom, const std::string& client_id, const client_actor& client) {
        auto& st = self->state;
        st.clients[client_id] = client;
        watch(self, client, client_child{client_id});
        // A client spawned with a registry that has since been restarted learns the current one.
        if (st.registry != st.ctx->registry) self->send(client, registry_atom_v, st.registry);
      },
      [self](presence_atom, const std::string& client_id, presence_entry& entry) {
        self->state.presence[client_id] = std::move(entry);
      },
      [self](presence_list_atom) {
        std::vector<presence_entry> out;
        out.reserve(self->state.presence.size());
        for (const auto& [_, entry] : self->state.presence) out.push_back(entry);
        return out;
      },
      [self](client_gone_atom, const std::string& client_id) {
        self->state.clients.erase(client_id);
        self->state.presence.erase(client_id);
      },
      [self](create_atom, const std::string& sid, json& metadata, member& m) -> caf::result<session_joined> {
        auto& st = self->state;
        if (st.sessions.count(sid))
          return session_joined{
              op_result::fail(error_code::session_exists, "session '" + sid + "' already exists"), {}};
        auto session = spawn_session(self->system(), st.ctx, sid, std::move(metadata));
        st.sessions[sid] = session;
        watch(self, session, session_child{sid});
        return self->delegate(session, join_atom_v, std::move(m));
      },
      [self](join_atom, const std::string& sid, member& m) {
        return to_session(self, sid, session_joined{session_not_found(sid), {}}, join_atom_v, std::move(m));
      },
      [self](leave_atom, const std::string& sid, const std::string& cid) {
        return to_session(self, sid, session_not_found(sid), leave_atom_v, cid);
      },
      [self](patch_atom, const std::string& sid, const std::string& cid, json& patch) {
        return to_session(self, sid, session_not_found(sid), patch_atom_v, cid, std::move(patch));
      },
      [self](broadcast_atom, const std::string& sid, const std::string& cid, protocol::envelope& msg,
             steady_time received) {
        return to_session(self, sid, session_not_found(sid), broadcast_atom_v, cid, std::move(msg), received);
      },
      [self](client_page_atom, const std::string& cursor, std::uint64_t limit) {
        return page_of(self->state.clients, cursor, limit);
      },
      [self](session_page_atom, const std::string& cursor, std::uint64_t limit) {
        return page_of(self->state.sessions, cursor, limit);
      },
      [self](find_client_atom, const std::string& id) { return find_in(self->state.clients, id); },
      [self](find_session_atom, const std::string& id) { return find_in(self->state.sessions, id); },
      [self](registry_atom) { return self->state.registry; },
      [self](node_stats_atom) {
        const auto& st = self->state;
        return node_stats{st.clients.size(), st.presence.size(), st.sessions.size()};
      },
      [self](kick_atom, const std::string& client_id, std::string& reason) {
        auto it = self->state.clients.find(client_id);
        if (it == self->state.clients.end()) return false;
        self->send(it->second, kick_atom_v, std::move(reason));
        return true;
      },
      [self](drain_atom) { return drain_clients(self); },
      [self](status_atom) {
        const auto& st = self->state;
        return actor_status{st.ctx->node_id, self->mailbox().size(),
                            supervisor_status{st.clients.size(), st.sessions.size(),
                                              st.ctx->server_state->draining.load(), st.registry_restarts}};
      },
  };
}

gateway_supervisor_actor spawn_supervisor(caf::actor_system& sys, context_ptr ctx) {
  return sys.spawn(supervisor_behavior, std::move(ctx));
}

}  // namespace sb::actors

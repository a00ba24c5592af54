// The gateway supervisor: the indexes (client id -> actor, session id -> actor), session creation, and
// cleanup of children that end. A crashed client is cleaned up as if it had disconnected.
#include "actors/supervisor.hpp"

#include <spdlog/spdlog.h>

#include <caf/all.hpp>

#include "actors/spawn.hpp"
#include "actors/type_ids.hpp"

namespace sb::actors {

namespace {

using protocol::error_code;

op_result session_not_found(const std::string& sid) {
  return op_result::fail(error_code::session_not_found, "session '" + sid + "' not found");
}

/// Hands a session operation to the session, or answers SESSION_NOT_FOUND.
template <class... Ts>
caf::result<op_result> to_session(supervisor_actor* self, const std::string& sid, Ts&&... xs) {
  auto it = self->state.sessions.find(sid);
  if (it == self->state.sessions.end()) return session_not_found(sid);
  auto rp = self->make_response_promise();
  rp.delegate(it->second, std::forward<Ts>(xs)...);
  return rp;
}

void watch(supervisor_actor* self, const caf::actor& child, std::string tag) {
  self->state.watched[child.address()] = std::move(tag);
  self->monitor(child);
}

void on_down(supervisor_actor* self, const caf::down_msg& dm) {
  auto& st = self->state;
  auto it = st.watched.find(dm.source);
  if (it == st.watched.end()) return;
  const auto tag = it->second;
  st.watched.erase(it);
  const auto id = tag.substr(2);
  if (tag[0] == 's') {
    if (auto s = st.sessions.find(id); s != st.sessions.end() && s->second.address() == dm.source)
      st.sessions.erase(s);
    if (dm.reason && dm.reason != caf::exit_reason::normal)
      spdlog::error("session {}: ended abnormally: {}", id, to_string(dm.reason));
    return;
  }
  st.clients.erase(id);
  st.presence.erase(id);
  if (dm.reason && dm.reason != caf::exit_reason::normal) {
    // The client could not say goodbye: do it for it, so no session keeps a dead member and no agent stays
    // online.
    spdlog::error("client {}: ended abnormally ({}), cleaning up", id, to_string(dm.reason));
    for (const auto& [_, session] : st.sessions) self->send(session, gone_atom_v, id);
    self->send(st.ctx->registry, gone_atom_v, id);
  }
}

}  // namespace

caf::behavior supervisor_behavior(supervisor_actor* self, context_ptr ctx) {
  auto own = std::make_shared<gateway_context>(*ctx);
  own->supervisor = caf::actor_cast<caf::actor>(self);
  self->state.ctx = std::move(own);
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& st = self->state;
    for (const auto& [_, c] : st.clients) self->send_exit(c, msg.reason);
    for (const auto& [_, s] : st.sessions) self->send_exit(s, msg.reason);
    self->send_exit(st.ctx->registry, msg.reason);
    self->quit(msg.reason);
  });
  return {
      [self](up_atom, const std::string& client_id, const caf::actor& client) {
        self->state.clients[client_id] = client;
        watch(self, client, "c:" + client_id);
      },
      [self](presence_atom, const std::string& client_id, json& entry) {
        self->state.presence[client_id] = std::move(entry);
      },
      [self](list_atom, presence_atom) -> json {
        json out = json::array();
        for (const auto& [_, entry] : self->state.presence) out.push_back(entry);
        return out;
      },
      [self](gone_atom, const std::string& client_id) {
        self->state.clients.erase(client_id);
        self->state.presence.erase(client_id);
      },
      [self](create_atom, const std::string& sid, json& metadata, member& m) -> caf::result<op_result> {
        auto& st = self->state;
        if (st.sessions.count(sid))
          return op_result::fail(error_code::session_exists, "session '" + sid + "' already exists");
        auto session = spawn_session(self->system(), st.ctx, sid, std::move(metadata));
        st.sessions[sid] = session;
        watch(self, session, "s:" + sid);
        auto rp = self->make_response_promise();
        rp.delegate(session, join_atom_v, sid, std::move(m));
        return rp;
      },
      [self](join_atom, const std::string& sid, member& m) {
        return to_session(self, sid, join_atom_v, sid, std::move(m));
      },
      [self](leave_atom, const std::string& sid, const std::string& cid) {
        return to_session(self, sid, leave_atom_v, sid, cid);
      },
      [self](patch_atom, const std::string& sid, const std::string& cid, json& patch) {
        return to_session(self, sid, patch_atom_v, sid, cid, std::move(patch));
      },
      [self](relay_atom, const std::string& sid, const std::string& cid, protocol::envelope& msg,
             steady_time received) {
        return to_session(self, sid, relay_atom_v, sid, cid, std::move(msg), received);
      },
      [self](admin_atom, const json& request) { return run_admin_command(self, request); },
      [self](drain_atom) { drain_clients(self); },
      [self](status_atom) -> json {
        const auto& s = self->state;
        return {{"kind", "supervisor"},
                {"id", s.ctx->node_id},
                {"mailbox", self->mailbox().size()},
                {"state",
                 {{"clients", s.clients.size()},
                  {"sessions", s.sessions.size()},
                  {"draining", s.ctx->server_state->draining.load()}}}};
      },
  };
}

caf::actor spawn_supervisor(caf::actor_system& sys, context_ptr ctx) {
  return sys.spawn(supervisor_behavior, std::move(ctx));
}

}  // namespace sb::actors

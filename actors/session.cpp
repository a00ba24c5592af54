// The session actor: members, metadata and creation time of one session. A broadcast is serialized once and
// the same buffer is queued on every other member's connection.
//
//   live --(last member leaves or disconnects)--> ended (quits; the supervisor drops its index entry)
#include <spdlog/spdlog.h>

#include <caf/all.hpp>

#include "actors/spawn.hpp"
#include "actors/type_ids.hpp"
#include "protocol/merge_patch.hpp"

namespace sb::actors {

namespace {

using protocol::error_code;

struct member_entry {
  member who;
  std::uint64_t joined_seq = 0;
};

struct session_state {
  static inline const char* name = "sb.session";
  context_ptr ctx;
  std::string id;
  json metadata = json::object();
  std::int64_t created_at = protocol::now_ms();
  std::map<std::string, member_entry> members;
  std::uint64_t next_seq = 0;
  std::uint64_t broadcasts = 0;
};

using session_ptr = session_actor::stateful_pointer<session_state>;

session_info describe(const session_state& st) {
  std::vector<const member_entry*> ordered;
  for (const auto& [_, m] : st.members) ordered.push_back(&m);
  std::sort(ordered.begin(), ordered.end(), [](auto* a, auto* b) { return a->joined_seq < b->joined_seq; });
  session_info out{st.id, {}, st.metadata, st.created_at};
  for (const auto* m : ordered) out.clients.push_back(m->who.client_id);
  return out;
}

/// Queues one serialized frame on every member but `except`; returns how many got it.
std::size_t broadcast(session_ptr self, const protocol::envelope& msg, const std::string& except) {
  auto& st = self->state;
  auto frame = protocol::encode_shared(msg);
  std::size_t n = 0;
  for (const auto& [cid, m] : st.members) {
    if (cid == except) continue;
    m.who.sink->send(frame);
    ++n;
  }
  if (n > 0) st.ctx->metrics->messages_out.add(msg.type, n);
  ++st.broadcasts;
  return n;
}

void announce(session_ptr self, const char* event, const std::string& client_id) {
  const auto& sid = self->state.id;
  broadcast(
      self,
      protocol::make_event("presence", {{"event", event}, {"clientId", client_id}, {"sessionId", sid}}, sid),
      client_id);
}

op_result not_member(const session_state& st, const std::string& client_id) {
  return op_result::fail(error_code::not_in_session,
                         "client " + client_id + " is not in session '" + st.id + "'");
}

/// Removes a member and tells the others; ends the session when nobody is left.
void remove_member(session_ptr self, const std::string& client_id) {
  auto& st = self->state;
  st.members.erase(client_id);
  announce(self, "leave", client_id);
  if (st.members.empty()) {
    spdlog::info("session {}: empty, removed", st.id);
    self->quit();
  }
}

session_joined join(session_ptr self, member& m) {
  auto& st = self->state;
  if (!st.members.count(m.client_id)) {
    const auto cid = m.client_id;
    st.members.emplace(cid, member_entry{std::move(m), st.next_seq++});
    announce(self, "join", cid);
  }
  return {op_result::ok(describe(st)), caf::actor_cast<session_actor>(self)};
}

op_result relay(session_ptr self, const std::string& client_id, protocol::envelope msg,
                steady_time received) {
  auto& st = self->state;
  if (!st.members.count(client_id)) return not_member(st, client_id);
  msg.payload["from"] = client_id;
  msg.reply_to.reset();
  const auto n = broadcast(self, msg, client_id);
  if (received != steady_time{})
    st.ctx->metrics->broadcast_latency.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - received).count());
  return op_result::ok({{"delivered", n}});
}

}  // namespace

session_actor::behavior_type session_behavior(session_ptr self, context_ptr ctx, std::string id, json metadata) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.id = std::move(id);
  st.metadata = metadata.is_object() ? std::move(metadata) : json::object();
  st.ctx->metrics->sessions.fetch_add(1);
  self->attach_functor([metrics = st.ctx->metrics] { metrics->sessions.fetch_sub(1); });
  spdlog::info("session {}: created", st.id);
  return {
      [self](join_atom, member& m) { return join(self, m); },
      [self](leave_atom, const std::string& client_id) {
        if (!self->state.members.count(client_id)) return not_member(self->state, client_id);
        remove_member(self, client_id);
        return op_result::ok();
      },
      [self](patch_atom, const std::string& client_id, const json& patch) {
        auto& s = self->state;
        if (!s.members.count(client_id)) return not_member(s, client_id);
        // Patched on a copy: a patch that would cross maxSessionMetadataBytes is refused whole.
        json next = s.metadata;
        protocol::apply_merge_patch(next, patch);
        if (auto too_big = protocol::metadata_over_limit(next, s.ctx->config.max_session_metadata_bytes)) {
          s.ctx->metrics->limits_exceeded.add("maxSessionMetadataBytes");
          return op_result::fail(error_code::invalid_message, *too_big);
        }
        s.metadata = std::move(next);
        json body = describe(s);
        broadcast(self, protocol::make_event("session_info", {{"session", body}}, s.id), client_id);
        return op_result::ok(std::move(body));
      },
      [self](broadcast_atom, const std::string& client_id, protocol::envelope& msg, steady_time received) {
        return relay(self, client_id, std::move(msg), received);
      },
      [self](presence_update_atom, const std::string& client_id, const json& fields) {
        auto& s = self->state;
        if (!s.members.count(client_id)) return;
        json payload = fields;
        payload["event"] = "update";
        payload["clientId"] = client_id;
        payload["sessionId"] = s.id;
        broadcast(self, protocol::make_event("presence", std::move(payload), s.id), client_id);
      },
      [self](client_gone_atom, const std::string& client_id) {
        if (self->state.members.count(client_id)) remove_member(self, client_id);
      },
      [self](info_atom) { return describe(self->state); },
      [self](status_atom) {
        const auto& s = self->state;
        return actor_status{s.id, self->mailbox().size(), session_status{s.members.size(), s.broadcasts}};
      },
  };
}

session_actor spawn_session(caf::actor_system& sys, context_ptr ctx, std::string session_id, json metadata) {
  return sys.spawn(session_behavior, std::move(ctx), std::move(session_id), std::move(metadata));
}

}  // namespace sb::actors

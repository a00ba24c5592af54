// The client actor: one per WebSocket connection. It owns the client's protocol state (auth, device, role,
// sessions, presence, agents held, rate limit) and turns each inbound message into exactly one reply.
//
//   connected --(auth ok / mode none)--> authenticated --(closed)--> gone
//        \-------------------------------(closed)-------------------/
#include <spdlog/spdlog.h>

#include <caf/all.hpp>
#include <tuple>

#include "actors/spawn.hpp"
#include "protocol/ids.hpp"
#include "protocol/merge_patch.hpp"

namespace sb::actors {

namespace {

using protocol::error_code;
using protocol::kind;

constexpr auto rate_limit_grace = std::chrono::seconds(10);  // PROTOCOL.md: over the limit this long -> 4008
constexpr int max_auth_failures = 5;

struct rate_limiter {
  double tokens = 0;
  steady_time refilled{};
  std::optional<steady_time> over_since;  // start of the current stretch over the limit
  steady_time last_refused{};
};

struct client_state {
  static inline const char* name = "sb.client";
  context_ptr ctx;
  std::string id;
  transport::sink_ptr sink;
  transport::peer_info peer;
  bool authenticated = false;
  bool closing = false;
  int auth_failures = 0;
  std::string user_id;
  std::optional<std::string> device_id, role, client_name, version;
  json metadata = json::object();
  std::string status = "online";
  std::map<std::string, session_actor> sessions;  // joined session id -> its actor
  registry_actor registry;                        // the current one (the supervisor restarts a dead one)
  std::int64_t connected_at = protocol::now_ms();
  std::int64_t last_activity = protocol::now_ms();
  std::uint64_t messages_in = 0;
  rate_limiter limiter;
};

using client_ptr = client_actor::stateful_pointer<client_state>;

// -- replies
// -------------------------------------------------------------------------------------------------

void send(client_ptr self, const protocol::envelope& msg) {
  send_to(self->state.sink, msg, *self->state.ctx->metrics);
}

void reply(client_ptr self, const protocol::envelope& in, std::string type,
           json payload = json::object()) {
  send(self, protocol::make_reply(std::move(type), std::move(payload), in.id));
}

void fail(client_ptr self, std::optional<std::string> reply_to, error_code code, std::string message) {
  self->state.ctx->metrics->errors.add(std::string(protocol::to_string(code)));
  send(self, protocol::make_error(code, std::move(message), std::move(reply_to)));
}

void fail(client_ptr self, const protocol::envelope& in, error_code code, std::string message) {
  fail(self, in.id, code, std::move(message));
}

/// Answers a request's result: the body as `type` on success, else the error it carries.
void answer(client_ptr self, const protocol::envelope& in, const op_result& r, const char* type) {
  if (r.error)
    fail(self, in, *r.error, r.message);
  else
    reply(self, in, type, r.body);
}

void internal_error(client_ptr self, const protocol::envelope& in, const caf::error& err) {
  spdlog::error("client {}: internal request failed: {}", self->state.id, to_string(err));
  fail(self, in, error_code::internal, "internal error");
}

// -- state summaries
// -----------------------------------------------------------------------------------------

presence_entry presence_of(const client_state& st) { return {st.id, st.role, st.device_id, st.status}; }

client_info describe(const client_state& st) {
  client_info out;
  out.client_id = st.id;
  out.authenticated = st.authenticated;
  out.user_id = st.user_id;
  out.device_id = st.device_id;
  out.role = st.role;
  out.client_name = st.client_name;
  out.status = st.status;
  for (const auto& [sid, _] : st.sessions) out.sessions.push_back(sid);
  out.address = st.peer.address;
  out.tls = st.peer.tls;
  out.connected_at = st.connected_at;
  out.last_activity = st.last_activity;
  out.messages_in = st.messages_in;
  return out;
}

void publish_presence(client_ptr self) {
  if (self->state.authenticated)
    self->send(self->state.ctx->supervisor, presence_atom_v, self->state.id, presence_of(self->state));
}

// -- admission: rate limit and auth gate
// ---------------------------------------------------------------------

/// Token bucket: `rateLimit` per second, burst twice that. Returns false when the message must be refused.
bool admit(client_ptr self) {
  auto& st = self->state;
  const auto rate = st.ctx->config.rate_limit;
  if (rate == 0) return true;
  auto& l = st.limiter;
  const auto now = std::chrono::steady_clock::now();
  const double burst = 2.0 * rate;
  const double elapsed = std::chrono::duration<double>(now - l.refilled).count();
  l.tokens = std::min(burst, l.tokens + elapsed * rate);
  l.refilled = now;
  if (l.tokens >= 1.0) {
    l.tokens -= 1.0;
    // A stretch over the limit ends only after a second without refusals: a client sending at twice the
    // rate gets half its messages through yet stays over the limit.
    if (l.over_since && now - l.last_refused > std::chrono::seconds(1)) l.over_since.reset();
    return true;
  }
  l.last_refused = now;
  if (!l.over_since) l.over_since = now;
  if (now - *l.over_since >= rate_limit_grace && !st.closing) {
    st.closing = true;
    st.ctx->metrics->rate_limit_closes.fetch_add(1);
    spdlog::info("client {}: over the rate limit for 10 s, closing", st.id);
    st.sink->close(protocol::close_code::policy, "rate limit exceeded");
  }
  return false;
}

bool allowed_before_auth(kind k) { return k == kind::connect || k == kind::auth || k == kind::ping; }

// -- handshake
// -----------------------------------------------------------------------------------------------

void on_connect(client_ptr self, const protocol::envelope& in) {
  auto parsed = protocol::parse_connect(in.payload);
  auto* p = protocol::value_of(parsed);
  if (!p) return fail(self, in, error_code::invalid_message, protocol::error_of(parsed));
  auto& st = self->state;
  if (p->device_id) st.device_id = p->device_id;
  if (p->role) st.role = p->role;
  if (p->client_name) st.client_name = p->client_name;
  if (p->version) st.version = p->version;
  st.metadata = p->metadata;
  publish_presence(self);
  auto hello = [self, in](const presence_page& presence) {
    auto& s = self->state;
    reply(self, in, "hello_ok",
          {{"clientId", s.id},
           {"nodeId", s.ctx->node_id},
           {"uptimeMs", std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - s.ctx->started)
                            .count()},
           {"authRequired", s.ctx->config.auth != protocol::auth_mode::none},
           {"authenticated", s.authenticated},
           {"presence", presence.clients},
           {"presenceTotal", presence.total}});
  };
  if (!st.authenticated) return hello({});
  // The earliest presenceLimit only: a connect costs the same however many clients are present.
  self->request(st.ctx->supervisor, internal_request_timeout, presence_list_atom_v, std::uint64_t{0},
                st.ctx->config.presence_limit)
      .await([hello](presence_page& presence) { hello(presence); },
             [self, in](caf::error& err) { internal_error(self, in, err); });
}

void on_presence_list(client_ptr self, const protocol::envelope& in) {
  auto parsed = protocol::parse_presence_list(in.payload);
  auto* p = protocol::value_of(parsed);
  if (!p) return fail(self, in, error_code::invalid_message, protocol::error_of(parsed));
  self->request(self->state.ctx->supervisor, internal_request_timeout, presence_list_atom_v, p->after, p->limit)
      .await(
          [self, in](presence_page& page) {
            json payload{{"clients", page.clients}};
            if (page.next != 0) payload["next"] = std::to_string(page.next);
            reply(self, in, "presence_list", std::move(payload));
          },
          [self, in](caf::error& err) { internal_error(self, in, err); });
}

void authenticate(client_ptr self, const protocol::envelope& in, std::string user_id) {
  auto& st = self->state;
  st.authenticated = true;
  st.auth_failures = 0;
  st.user_id = !user_id.empty() ? std::move(user_id) : st.device_id ? *st.device_id : st.id;
  spdlog::info("client {}: authenticated as {}", st.id, st.user_id);
  publish_presence(self);
  reply(self, in, "auth_success", {{"clientId", st.id}, {"userId", st.user_id}});
}

void on_auth(client_ptr self, const protocol::envelope& in) {
  auto& st = self->state;
  const auto& cfg = st.ctx->config;
  if (cfg.auth == protocol::auth_mode::none) return authenticate(self, in, {});
  auto parsed = protocol::parse_auth(in.payload);
  auto* p = protocol::value_of(parsed);
  if (!p) return fail(self, in, error_code::invalid_message, protocol::error_of(parsed));
  std::optional<std::string> user;
  if (cfg.auth == protocol::auth_mode::token && p->token)
    user = st.ctx->validator->validate(*p->token);
  else if (cfg.auth == protocol::auth_mode::password && p->password &&
           protocol::constant_time_equal(*p->password, cfg.auth_password))
    user = std::string{};
  if (user) return authenticate(self, in, std::move(*user));
  ++st.auth_failures;
  spdlog::info("client {}: authentication failed ({} of {})", st.id, st.auth_failures, max_auth_failures);
  fail(self, in, error_code::auth_failed, "authentication failed");
  if (st.auth_failures >= max_auth_failures && !st.closing) {
    st.closing = true;
    st.sink->close(protocol::close_code::auth_failures, "too many authentication failures");
  }
}

/// authTimeoutMs after the upgrade: a connection that answers pings but never authenticates would otherwise
/// hold its socket and buffers for ever.
void on_auth_deadline(client_ptr self) {
  auto& st = self->state;
  if (st.authenticated || st.closing) return;
  st.closing = true;
  st.ctx->metrics->limits_exceeded.add("authTimeoutMs");
  spdlog::info("client {}: not authenticated within {} ms, closing", st.id, st.ctx->config.auth_timeout_ms);
  st.sink->close(protocol::close_code::auth_failures, "authentication timeout");
}

// -- sessions
// ------------------------------------------------------------------------------------------------

member self_member(client_ptr self) { return member{self->state.id, self->state.sink}; }

/// Sends a session operation to the session itself when this client is a member (`direct`, the session's
/// arguments), else through the supervisor (`via`, which names the session first); the supervisor answers
/// SESSION_NOT_FOUND or hands the request to the session (which answers NOT_IN_SESSION).
template <class Direct, class Via>
void session_request(client_ptr self, const protocol::envelope& in, const std::string& sid,
                     std::function<void(op_result&)> on_result, Direct direct, Via via) {
  auto on_error = [self, in, sid](caf::error& err) {
    // The session ended between our lookup and the request: it no longer exists.
    if (err == caf::sec::request_receiver_down) {
      self->state.sessions.erase(sid);
      return fail(self, in, error_code::session_not_found, "session '" + sid + "' not found");
    }
    internal_error(self, in, err);
  };
  auto on_ok = [on_result](op_result& r) { on_result(r); };
  auto it = self->state.sessions.find(sid);
  if (it != self->state.sessions.end()) {
    std::apply(
        [&](auto&&... xs) {
          self->request(it->second, internal_request_timeout, xs...).await(on_ok, on_error);
        },
        std::move(direct));
    return;
  }
  std::apply(
      [&](auto&&... xs) {
        self->request(self->state.ctx->supervisor, internal_request_timeout, xs...).await(on_ok, on_error);
      },
      std::move(via));
}

/// The answer to a create or a join: the session to talk to from now on, and the reply to the client.
void on_joined(client_ptr self, const protocol::envelope& in, const std::string& sid, session_joined& j) {
  if (j.result.error) return answer(self, in, j.result, "session_info");
  self->state.sessions[sid] = j.session;
  reply(self, in, "session_info", {{"session", j.result.body}});
}

void on_session_create(client_ptr self, const protocol::envelope& in) {
  auto parsed = protocol::parse_session_create(in);
  auto* p = protocol::value_of(parsed);
  if (!p) return fail(self, in, error_code::invalid_message, protocol::error_of(parsed));
  if (auto too_big =
          protocol::metadata_over_limit(p->metadata, self->state.ctx->config.max_session_metadata_bytes)) {
    self->state.ctx->metrics->limits_exceeded.add("maxSessionMetadataBytes");
    return fail(self, in, error_code::invalid_message, *too_big);
  }
  const auto sid = p->session_id ? *p->session_id : protocol::random_id("sess-");
  self->request(self->state.ctx->supervisor, internal_request_timeout, create_atom_v, sid, p->metadata,
                self_member(self))
      .await([self, in, sid](session_joined& j) { on_joined(self, in, sid, j); },
             [self, in](caf::error& err) { internal_error(self, in, err); });
}

void on_session_join(client_ptr self, const protocol::envelope& in) {
  if (!in.session_id) return fail(self, in, error_code::invalid_message, "session_join needs a sessionId");
  const auto sid = *in.session_id;
  self->request(self->state.ctx->supervisor, internal_request_timeout, join_atom_v, sid, self_member(self))
      .await(
          [self, in, sid](session_joined& j) { on_joined(self, in, sid, j); },
          [self, in, sid](caf::error& err) {
            if (err == caf::sec::request_receiver_down)
              return fail(self, in, error_code::session_not_found, "session '" + sid + "' not found");
            internal_error(self, in, err);
          });
}

void on_session_leave(client_ptr self, const protocol::envelope& in) {
  if (!in.session_id) return fail(self, in, error_code::invalid_message, "session_leave needs a sessionId");
  const auto sid = *in.session_id;
  session_request(
      self, in, sid,
      [self, in, sid](op_result& r) {
        if (!r.error) self->state.sessions.erase(sid);
        answer(self, in, r, "ack");
      },
      std::make_tuple(leave_atom_v, self->state.id), std::make_tuple(leave_atom_v, sid, self->state.id));
}

void on_session_patch(client_ptr self, const protocol::envelope& in) {
  if (!in.session_id) return fail(self, in, error_code::invalid_message, "session_patch needs a sessionId");
  auto parsed = protocol::parse_session_patch(in.payload);
  auto* p = protocol::value_of(parsed);
  if (!p) return fail(self, in, error_code::invalid_message, protocol::error_of(parsed));
  const auto sid = *in.session_id;
  session_request(
      self, in, sid,
      [self, in](op_result& r) {
        if (r.error) return answer(self, in, r, "session_info");
        reply(self, in, "session_info", {{"session", r.body}});
      },
      std::make_tuple(patch_atom_v, self->state.id, p->metadata),
      std::make_tuple(patch_atom_v, sid, self->state.id, p->metadata));
}

void relay(client_ptr self, const inbound_message& raw, const protocol::envelope& in) {
  const auto sid = *in.session_id;
  session_request(
      self, in, sid, [self, in](op_result& r) { answer(self, in, r, "ack"); },
      std::make_tuple(broadcast_atom_v, self->state.id, in, raw.received),
      std::make_tuple(broadcast_atom_v, sid, self->state.id, in, raw.received));
}

void on_chat(client_ptr self, const inbound_message& raw, const protocol::envelope& in) {
  if (!in.session_id) return fail(self, in, error_code::invalid_message, "chat needs a sessionId");
  auto parsed = protocol::parse_chat(in.payload);
  if (!protocol::value_of(parsed))
    return fail(self, in, error_code::invalid_message, protocol::error_of(parsed));
  relay(self, raw, in);
}

void on_presence(client_ptr self, const protocol::envelope& in) {
  auto parsed = protocol::parse_presence(in.payload);
  auto* p = protocol::value_of(parsed);
  if (!p) return fail(self, in, error_code::invalid_message, protocol::error_of(parsed));
  auto& st = self->state;
  st.status = p->status;
  publish_presence(self);
  for (const auto& [sid, session] : st.sessions)
    self->send(session, presence_update_atom_v, st.id, p->fields);
  reply(self, in, "ack");
}

// -- agents
// --------------------------------------------------------------------------------------------------

template <class... Ts>
void registry_request(client_ptr self, const protocol::envelope& in, const char* type, Ts&&... xs) {
  self->request(self->state.registry, internal_request_timeout, std::forward<Ts>(xs)...)
      .await([self, in, type](op_result& r) { answer(self, in, r, type); },
             [self, in](caf::error& err) { internal_error(self, in, err); });
}

template <class Payload, class... Ts>
void agent_op(client_ptr self, const protocol::envelope& in, protocol::parsed<Payload> parsed,
              Ts... atom) {
  auto* p = protocol::value_of(parsed);
  if (!p) return fail(self, in, error_code::invalid_message, protocol::error_of(parsed));
  registry_request(self, in, "ack", atom..., self->state.id, *p);
}

void on_agent_register(client_ptr self, const protocol::envelope& in) {
  auto parsed = protocol::parse_agent_register(in.payload);
  auto* p = protocol::value_of(parsed);
  if (!p) return fail(self, in, error_code::invalid_message, protocol::error_of(parsed));
  registry_request(self, in, "ack", register_atom_v, self->state.id, self->state.sink, *p);
}

void on_route_request(client_ptr self, const protocol::envelope& in) {
  auto parsed = protocol::parse_route_request(in.payload);
  auto* p = protocol::value_of(parsed);
  if (!p) return fail(self, in, error_code::invalid_message, protocol::error_of(parsed));
  // Not awaited: the agent may take up to routeTimeoutMs, and the registry answers the requester directly.
  self->send(self->state.registry, route_request_atom_v, self->state.id, self->state.sink, in.id, *p);
}

// -- dispatch
// ------------------------------------------------------------------------------------------------

void on_custom(client_ptr self, const inbound_message& raw, const protocol::envelope& in) {
  auto& st = self->state;
  if (const auto* handler = st.ctx->handlers ? st.ctx->handlers->find(in.type) : nullptr) {
    handler_context hctx(st.id, st.user_id, in, [self](protocol::envelope msg) { send(self, msg); });
    try {
      (*handler)(hctx);
    } catch (const std::exception& e) {
      spdlog::error("client {}: handler for '{}' threw: {}", st.id, in.type, e.what());
      hctx.fail(error_code::internal, "handler failed");
    }
    if (!hctx.replied()) reply(self, in, "ack");
    return;
  }
  if (in.session_id) return relay(self, raw, in);
  fail(self, in, error_code::unknown_type, "unknown message type '" + in.type + "'");
}

void dispatch(client_ptr self, const inbound_message& raw, const protocol::envelope& in) {
  switch (protocol::classify(in.type)) {
    case kind::ping:
      return reply(self, in, "pong");
    case kind::connect:
      return on_connect(self, in);
    case kind::auth:
      return on_auth(self, in);
    case kind::session_create:
      return on_session_create(self, in);
    case kind::session_join:
      return on_session_join(self, in);
    case kind::session_leave:
      return on_session_leave(self, in);
    case kind::session_patch:
      return on_session_patch(self, in);
    case kind::presence:
      return on_presence(self, in);
    case kind::presence_list:
      return on_presence_list(self, in);
    case kind::chat:
      return on_chat(self, raw, in);
    case kind::agent_register:
      return on_agent_register(self, in);
    case kind::agent_unregister:
      return agent_op(self, in, protocol::parse_agent_unregister(in.payload), unregister_atom_v);
    case kind::agent_status:
      return agent_op(self, in, protocol::parse_agent_status(in.payload), agent_status_atom_v);
    case kind::route_request:
      return on_route_request(self, in);
    case kind::route_response:
      return agent_op(self, in, protocol::parse_route_response(in.payload), route_response_atom_v);
    case kind::server_only:
      return fail(self, in, error_code::invalid_message, "'" + in.type + "' is sent by the server only");
    case kind::other:
      return on_custom(self, raw, in);
  }
}

void on_inbound(client_ptr self, inbound_message& raw) {
  auto& st = self->state;
  if (st.closing) return;
  st.last_activity = protocol::now_ms();
  ++st.messages_in;
  auto* in = std::get_if<protocol::envelope>(&raw.msg);
  st.ctx->metrics->messages_in.add(in ? in->type : std::string("_invalid"));
  std::optional<std::string> reply_to =
      in ? std::optional<std::string>(in->id) : std::get<protocol::decode_error>(raw.msg).id;
  if (!admit(self)) return fail(self, reply_to, error_code::rate_limited, "rate limit exceeded");
  if (!in) {
    const auto& err = std::get<protocol::decode_error>(raw.msg);
    if (err.limit) st.ctx->metrics->limits_exceeded.add(err.limit);
    return fail(self, err.id, err.code, err.message);
  }
  if (!st.authenticated && !allowed_before_auth(protocol::classify(in->type)))
    return fail(self, *in, error_code::auth_required, "authenticate first");
  dispatch(self, raw, *in);
}

// -- teardown
// ------------------------------------------------------------------------------------------------

void on_closed(client_ptr self, std::uint16_t code) {
  auto& st = self->state;
  spdlog::info("client {}: disconnected ({})", st.id, code);
  for (const auto& [sid, session] : st.sessions) self->send(session, client_gone_atom_v, st.id);
  st.sessions.clear();
  self->send(st.registry, client_gone_atom_v, st.id);
  self->send(st.ctx->supervisor, client_gone_atom_v, st.id);
  self->quit();
}

}  // namespace

void handler_context::reply(std::string type, nlohmann::json payload) {
  if (replied_) return;
  replied_ = true;
  send_(protocol::make_reply(std::move(type), std::move(payload), message_.id));
}

void handler_context::fail(protocol::error_code code, std::string message) {
  if (replied_) return;
  replied_ = true;
  send_(protocol::make_error(code, std::move(message), message_.id));
}

client_actor::behavior_type client_behavior(client_ptr self, context_ptr ctx, std::string id, transport::sink_ptr sink,
                              transport::peer_info peer) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.id = std::move(id);
  st.sink = std::move(sink);
  st.peer = std::move(peer);
  st.registry = st.ctx->registry;
  st.authenticated = st.ctx->config.auth == protocol::auth_mode::none;
  if (st.authenticated) st.user_id = st.id;
  st.limiter.tokens = 2.0 * st.ctx->config.rate_limit;
  st.limiter.refilled = std::chrono::steady_clock::now();
  const auto& cfg = st.ctx->config;
  send(self, protocol::make_event("session_info", {{"clientId", st.id},
                                                   {"nodeId", st.ctx->node_id},
                                                   {"authRequired", cfg.auth != protocol::auth_mode::none},
                                                   {"serverVersion", server_version},
                                                   {"heartbeatIntervalMs", cfg.heartbeat_interval_ms},
                                                   {"maxPayload", cfg.max_payload}}));
  if (st.authenticated)
    publish_presence(self);
  else
    self->delayed_send(self, std::chrono::milliseconds(cfg.auth_timeout_ms), auth_deadline_atom_v);
  spdlog::info("client {}: connected from {}{}", st.id, st.peer.address, st.peer.tls ? " (tls)" : "");
  return {
      [self](auth_deadline_atom) { on_auth_deadline(self); },
      [self](inbound_message& msg) { on_inbound(self, msg); },
      [self](connection_closed_atom, std::uint16_t code) { on_closed(self, code); },
      [self](kick_atom, std::string& reason) {
        spdlog::info("client {}: kicked: {}", self->state.id, reason);
        self->state.closing = true;
        self->state.sink->close(protocol::close_code::kicked, reason.empty() ? "kicked" : reason);
      },
      [self](drain_atom) {
        self->state.closing = true;
        self->state.sink->close(protocol::close_code::going_away, "server going away");
      },
      [self](registry_atom, registry_actor& registry) { self->state.registry = std::move(registry); },
      [self](info_atom) { return describe(self->state); },
      [self](status_atom) {
        const auto& s = self->state;
        return actor_status{s.id, self->mailbox().size(),
                            client_status{s.authenticated, s.sessions.size(), s.status, s.peer.address}};
      },
  };
}

client_actor spawn_client(caf::actor_system& sys, context_ptr ctx, std::string client_id,
                        transport::sink_ptr sink, transport::peer_info peer) {
  return sys.spawn(client_behavior, std::move(ctx), std::move(client_id), std::move(sink), std::move(peer));
}

}  // namespace sb::actors

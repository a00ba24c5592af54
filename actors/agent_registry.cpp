// The agent registry actor: agents, their capabilities and status, and the requests in flight to them with
// their timers. Routed requests and their answers go straight to the connections involved.
#include <spdlog/spdlog.h>

#include <caf/all.hpp>

#include "actors/spawn.hpp"
#include "actors/type_ids.hpp"
#include "protocol/ids.hpp"

namespace sb::actors {

namespace {

using protocol::agent_status_value;
using protocol::error_code;

struct agent_record {
  protocol::agent_register_payload info;
  agent_status_value status = agent_status_value::online;
  std::string client_id;     // the holder; empty while offline
  transport::sink_ptr sink;  // the holder's connection
  std::uint64_t registered_seq = 0;
  std::int64_t registered_at = 0;
  std::size_t in_flight = 0;
  std::uint64_t handled = 0;
};

struct route_entry {
  std::string agent_id;
  std::string requester;
  transport::sink_ptr requester_sink;
  std::string reply_to;  // the requester's message id
};

struct registry_state {
  static inline const char* name = "sb.agent_registry";
  context_ptr ctx;
  std::map<std::string, agent_record> agents;
  std::map<std::string, route_entry> routes;  // request id -> route
  std::uint64_t next_seq = 0;
};

using registry_actor = caf::stateful_actor<registry_state>;

void update_gauges(registry_state& st) {
  std::int64_t online = 0;
  for (const auto& [_, a] : st.agents) online += a.status == agent_status_value::online;
  st.ctx->metrics->agents.store(static_cast<std::int64_t>(st.agents.size()));
  st.ctx->metrics->agents_online.store(online);
}

void send_error(registry_state& st, const transport::sink_ptr& sink, const std::string& reply_to,
                error_code code, std::string message) {
  st.ctx->metrics->errors.add(std::string(protocol::to_string(code)));
  send_to(sink, protocol::make_error(code, std::move(message), reply_to), *st.ctx->metrics);
}

/// Ends a route: the agent gets its slot back; the entry is gone, so a late answer is ROUTE_NOT_FOUND.
route_entry finish_route(registry_state& st, std::map<std::string, route_entry>::iterator it) {
  auto entry = std::move(it->second);
  st.routes.erase(it);
  if (auto a = st.agents.find(entry.agent_id); a != st.agents.end() && a->second.in_flight > 0)
    --a->second.in_flight;
  return entry;
}

/// Requests in flight to agents that just went away fail at once with NO_AGENT (PROTOCOL.md).
void fail_routes_to(registry_state& st, const std::string& agent_id) {
  for (auto it = st.routes.begin(); it != st.routes.end();) {
    if (it->second.agent_id != agent_id) {
      ++it;
      continue;
    }
    auto entry = finish_route(st, it++);
    send_error(st, entry.requester_sink, entry.reply_to, error_code::no_agent,
               "agent '" + agent_id + "' went away before answering");
  }
}

json describe(const std::string& id, const agent_record& a) {
  return {{"agentId", id},
          {"name", a.info.name ? json(*a.info.name) : json(nullptr)},
          {"type", a.info.type},
          {"capabilities", a.info.capabilities},
          {"metadata", a.info.metadata},
          {"status", std::string(protocol::to_string(a.status))},
          {"clientId", a.client_id.empty() ? json(nullptr) : json(a.client_id)},
          {"inFlight", a.in_flight},
          {"handled", a.handled},
          {"registeredAt", a.registered_at}};
}

/// Checks that `client_id` holds `agent_id`; returns the record or the error to answer.
std::variant<agent_record*, op_result> held_by(registry_state& st, const std::string& client_id,
                                               const std::string& agent_id) {
  auto it = st.agents.find(agent_id);
  if (it == st.agents.end()) return op_result::fail(error_code::no_agent, "no agent '" + agent_id + "'");
  if (it->second.client_id != client_id)
    return op_result::fail(error_code::agent_conflict, "agent '" + agent_id + "' is held by another client");
  return &it->second;
}

op_result on_register(registry_actor* self, const std::string& client_id, transport::sink_ptr& sink,
                      protocol::agent_register_payload& p) {
  auto& st = self->state;
  auto it = st.agents.find(p.agent_id);
  if (it != st.agents.end() && !it->second.client_id.empty() && it->second.client_id != client_id)
    return op_result::fail(error_code::agent_conflict,
                           "agent '" + p.agent_id + "' is held by another live client");
  const auto id = p.agent_id;
  auto& rec = st.agents[id];
  if (rec.client_id.empty() && rec.registered_at == 0) {
    rec.registered_seq = st.next_seq++;
    rec.registered_at = protocol::now_ms();
  }
  rec.info = std::move(p);
  rec.status = agent_status_value::online;
  rec.client_id = client_id;
  rec.sink = std::move(sink);
  update_gauges(st);
  spdlog::info("agent {}: registered by client {}", id, client_id);
  return op_result::ok({{"agentId", id}});
}

bool matches(const agent_record& a, const protocol::route_request_payload& p, const std::string& id) {
  switch (p.selector) {
    case protocol::route_selector::agent_id:
      return id == p.target;
    case protocol::route_selector::capability:
      return std::find(a.info.capabilities.begin(), a.info.capabilities.end(), p.target) !=
             a.info.capabilities.end();
    case protocol::route_selector::agent_type:
      return a.info.type == p.target;
  }
  return false;
}

/// The online candidate with the fewest requests in flight; ties go to the earliest registered.
std::map<std::string, agent_record>::iterator choose(registry_state& st,
                                                     const protocol::route_request_payload& p) {
  auto best = st.agents.end();
  for (auto it = st.agents.begin(); it != st.agents.end(); ++it) {
    const auto& a = it->second;
    if (a.status != agent_status_value::online || !a.sink || !matches(a, p, it->first)) continue;
    if (best == st.agents.end() || a.in_flight < best->second.in_flight ||
        (a.in_flight == best->second.in_flight && a.registered_seq < best->second.registered_seq))
      best = it;
  }
  return best;
}

void on_route(registry_actor* self, const std::string& requester, transport::sink_ptr& sink,
              const std::string& reply_to, protocol::route_request_payload& p) {
  auto& st = self->state;
  auto chosen = choose(st, p);
  if (chosen == st.agents.end())
    return send_error(
        st, sink, reply_to, error_code::no_agent,
        "no online agent for " + std::string(protocol::to_string(p.selector)) + " '" + p.target + "'");
  const auto request_id = protocol::random_id("r-");
  auto& agent = chosen->second;
  ++agent.in_flight;
  st.routes.emplace(request_id, route_entry{chosen->first, requester, std::move(sink), reply_to});
  st.ctx->metrics->routes_total.fetch_add(1);
  send_to(agent.sink,
          protocol::make_event(
              "route_request",
              {{"requestId", request_id}, {"from", requester}, {"request", std::move(p.request)}}),
          *st.ctx->metrics);
  self->delayed_send(self, std::chrono::milliseconds(st.ctx->config.route_timeout_ms), timeout_atom_v,
                     request_id);
}

op_result on_response(registry_actor* self, const std::string& client_id,
                      protocol::route_response_payload& p) {
  auto& st = self->state;
  auto it = st.routes.find(p.request_id);
  if (it == st.routes.end())
    return op_result::fail(error_code::route_not_found, "no request '" + p.request_id + "' in flight");
  auto agent = st.agents.find(it->second.agent_id);
  if (agent == st.agents.end() || agent->second.client_id != client_id)
    return op_result::fail(error_code::route_not_found,
                           "request '" + p.request_id + "' was routed to another agent");
  ++agent->second.handled;
  auto entry = finish_route(st, it);
  send_to(entry.requester_sink,
          protocol::make_reply("route_response",
                               {{"agentId", entry.agent_id}, {"response", std::move(p.response)}},
                               entry.reply_to),
          *st.ctx->metrics);
  return op_result::ok();
}

void on_client_gone(registry_actor* self, const std::string& client_id) {
  auto& st = self->state;
  for (auto& [id, a] : st.agents) {
    if (a.client_id != client_id) continue;
    // The record stays so the agent can come back; only its connection is gone.
    a.status = agent_status_value::offline;
    a.client_id.clear();
    a.sink.reset();
    spdlog::info("agent {}: offline (client {} disconnected)", id, client_id);
    fail_routes_to(st, id);
  }
  // The requester is gone: its pending answers have nowhere to go.
  for (auto it = st.routes.begin(); it != st.routes.end();) {
    if (it->second.requester == client_id)
      finish_route(st, it++);
    else
      ++it;
  }
  update_gauges(st);
}

}  // namespace

caf::behavior registry_behavior(registry_actor* self, context_ptr ctx) {
  self->state.ctx = std::move(ctx);
  return {
      [self](register_atom, const std::string& client_id, transport::sink_ptr& sink,
             protocol::agent_register_payload& p) { return on_register(self, client_id, sink, p); },
      [self](unreg_atom, const std::string& client_id, const protocol::agent_id_payload& p) {
        auto& st = self->state;
        auto held = held_by(st, client_id, p.agent_id);
        if (auto* err = std::get_if<op_result>(&held)) return *err;
        st.agents.erase(p.agent_id);
        fail_routes_to(st, p.agent_id);
        update_gauges(st);
        return op_result::ok();
      },
      [self](astatus_atom, const std::string& client_id, const protocol::agent_status_payload& p) {
        auto& st = self->state;
        auto held = held_by(st, client_id, p.agent_id);
        if (auto* err = std::get_if<op_result>(&held)) return *err;
        std::get<agent_record*>(held)->status = p.status;
        update_gauges(st);
        return op_result::ok();
      },
      [self](route_atom, const std::string& requester, transport::sink_ptr& sink, const std::string& reply_to,
             protocol::route_request_payload& p) { on_route(self, requester, sink, reply_to, p); },
      [self](response_atom, const std::string& client_id, protocol::route_response_payload& p) {
        return on_response(self, client_id, p);
      },
      [self](timeout_atom, const std::string& request_id) {
        auto& st = self->state;
        auto it = st.routes.find(request_id);
        if (it == st.routes.end()) return;
        auto entry = finish_route(st, it);
        send_error(st, entry.requester_sink, entry.reply_to, error_code::route_timeout,
                   "agent '" + entry.agent_id + "' did not answer within " +
                       std::to_string(st.ctx->config.route_timeout_ms) + " ms");
      },
      [self](gone_atom, const std::string& client_id) { on_client_gone(self, client_id); },
      [self](list_atom) -> json {
        json out = json::array();
        for (const auto& [id, a] : self->state.agents) out.push_back(describe(id, a));
        return out;
      },
      [self](status_atom) -> json {
        const auto& s = self->state;
        return {{"kind", "agent_registry"},
                {"id", "agents"},
                {"mailbox", self->mailbox().size()},
                {"state", {{"agents", s.agents.size()}, {"inFlight", s.routes.size()}}}};
      },
  };
}

caf::actor spawn_agent_registry(caf::actor_system& sys, context_ptr ctx) {
  return sys.spawn(registry_behavior, std::move(ctx));
}

}  // namespace sb::actors

// The agent registry actor: agents, their capabilities and status, and the requests in flight to them with
// their timers. Routed requests and their answers go straight to the connections involved.
//
// Across the cluster: each node publishes its agents' records to the agents bucket and watches everyone
// else's; a route_request for an agent on another node is a bus request to that agent's subject, which only
// its node subscribes to while the agent is routable, so a vanished agent answers NO_AGENT at once (no
// responders) instead of after routeTimeoutMs.
//
// Every input here comes from clients, so every collection is bounded and every lookup is indexed:
//   - records: at most maxAgents on the node and maxAgentsPerClient held by one connection;
//   - a record nobody holds (its client went away) is forgotten agentOfflineTtlMs later;
//   - route candidates are kept per capability and per type, ordered the way PROTOCOL.md chooses (fewest in
//     flight, then earliest registered), so a register, route or disconnect costs O(log n), never a scan;
//   - the admin listing is paged by count and by bytes.
#include <spdlog/spdlog.h>

#include <caf/all.hpp>
#include <set>
#include <unordered_map>

#include "actors/admin_commands.hpp"
#include "actors/resync.hpp"
#include "actors/spawn.hpp"
#include "cluster/records.hpp"
#include "cluster/watch_sweep.hpp"
#include "protocol/ids.hpp"

namespace sb::actors {

namespace {

using protocol::agent_status_value;
using protocol::error_code;

/// The code a register refused by an agent bound is answered with. PROTOCOL.md names no limit code; the
/// message is refused as it stands, and the text names the config key.
constexpr error_code limit_error = error_code::invalid_message;

/// A route candidate's place in its index: the first one is the one PROTOCOL.md chooses.
using candidate = std::pair<std::size_t, std::uint64_t>;  // (requests in flight, registration sequence)
using candidate_set = std::set<candidate>;

struct agent_record {
  protocol::agent_register_payload info;
  agent_status_value status = agent_status_value::online;
  std::string client_id;     // the holder; empty while offline
  transport::sink_ptr sink;  // the holder's connection
  std::uint64_t registered_seq = 0;
  std::int64_t registered_at = 0;
  std::set<std::string> routes;  // request ids in flight to this agent
  std::uint64_t handled = 0;
  std::optional<steady_time> expires;  // set while nobody holds the record

  std::size_t in_flight() const { return routes.size(); }
  bool routable() const { return status == agent_status_value::online && sink != nullptr; }
  candidate key() const { return {in_flight(), registered_seq}; }
};

using agent_map = std::map<std::string, agent_record>;
using agent_it = agent_map::iterator;

struct route_entry {
  std::string agent_id;
  std::string requester;
  transport::sink_ptr requester_sink;  // empty when the requester is on another node
  std::string reply_to;                // the requester's message id, or the bus subject to answer on
};

/// A request this node's client sent to an agent on another node, waiting for that node's answer.
struct remote_route {
  std::string agent_id, node_id, requester;
  transport::sink_ptr requester_sink;
  std::string reply_to;
};

/// Other nodes' agents, from the agents bucket, indexed like the local ones (online ones only).
struct remote_agents {
  std::map<std::string, cluster::agent_entry> by_id;
  std::map<std::string, std::set<std::string>> by_capability, by_type;
};

struct registry_state {
  static inline const char* name = "sb.agent_registry";
  context_ptr ctx;
  agent_map agents;  // ordered by id: the admin listing pages by it
  std::unordered_map<std::uint64_t, agent_it> by_seq;
  std::map<std::string, candidate_set> by_capability;      // routable agents only
  std::map<std::string, candidate_set> by_type;            // routable agents only
  std::map<std::string, std::set<std::string>> by_client;  // holder -> the agent ids it holds
  std::set<std::pair<steady_time, std::uint64_t>> expiry;  // unheld records by deadline
  bool sweep_armed = false;
  std::size_t online = 0;
  std::map<std::string, route_entry> routes;  // request id -> route
  std::map<std::string, std::set<std::string>> routes_by_requester;
  std::uint64_t next_seq = 0;
  // The cluster:
  remote_agents remote;
  std::map<std::string, cluster::subscription_ptr> serving;  // subjects of the agents held here
  std::map<std::string, remote_route> remote_routes;         // request id -> route to another node
  cluster::subscription_ptr watch;
  cluster::watch_sweep sweep_remote;  // what the watch delivered since it last caught up
  bool resync_scheduled = false;
};

using registry_ptr = registry_actor::stateful_pointer<registry_state>;

// -- indices
// -------------------------------------------------------------------------------------------------
// A record's status, holder connection, in-flight count, type and capabilities decide where it sits in the
// indices. Every change to those is bracketed by detach() and attach(), so the indices never go stale.

void detach(registry_state& st, const agent_record& a) {
  if (a.status == agent_status_value::online) --st.online;
  if (!a.routable()) return;
  const auto key = a.key();
  auto drop = [&key](std::map<std::string, candidate_set>& index, const std::string& name) {
    auto it = index.find(name);
    if (it == index.end()) return;  // a capability listed twice is gone already
    it->second.erase(key);
    if (it->second.empty()) index.erase(it);
  };
  for (const auto& cap : a.info.capabilities) drop(st.by_capability, cap);
  drop(st.by_type, a.info.type);
}

void attach(registry_state& st, const agent_record& a) {
  if (a.status == agent_status_value::online) ++st.online;
  if (!a.routable()) return;
  for (const auto& cap : a.info.capabilities) st.by_capability[cap].insert(a.key());
  st.by_type[a.info.type].insert(a.key());
}

template <class F>
void change(registry_state& st, agent_record& a, F&& f) {
  detach(st, a);
  f(a);
  attach(st, a);
}

void update_gauges(registry_state& st) {
  st.ctx->metrics->agents.store(static_cast<std::int64_t>(st.agents.size()));
  st.ctx->metrics->agents_online.store(static_cast<std::int64_t>(st.online));
}

void release_holder(registry_state& st, const std::string& client_id, const std::string& agent_id) {
  auto it = st.by_client.find(client_id);
  if (it == st.by_client.end()) return;
  it->second.erase(agent_id);
  if (it->second.empty()) st.by_client.erase(it);
}

void cancel_expiry(registry_state& st, agent_record& a) {
  if (!a.expires) return;
  st.expiry.erase({*a.expires, a.registered_seq});
  a.expires.reset();
}

// -- the cluster's view of the agents held here
// --------------------------------------------------------------------------------------------------------

bool shared(const registry_state& st) { return st.ctx->cluster && st.ctx->cluster->shared; }

std::string agent_subject(const registry_state& st, const std::string& agent_id) {
  return st.ctx->cluster->name + ".agent." + cluster_context::key_of(agent_id);
}

/// Publishes a local agent's record and serves its subject while the record exists.
void announce(registry_ptr self, const std::string& id, const agent_record& a);

/// Forgets a record and every index entry for it. Its routes must have been finished already.
void remove_record(registry_state& st, agent_it it) {
  if (shared(st)) {
    st.serving.erase(it->first);
    st.ctx->cluster->agents->erase(cluster_context::key_of(it->first), std::nullopt, nullptr);
  }
  auto& a = it->second;
  detach(st, a);
  cancel_expiry(st, a);
  if (!a.client_id.empty()) release_holder(st, a.client_id, it->first);
  st.by_seq.erase(a.registered_seq);
  st.agents.erase(it);
}

// -- offline expiry
// ------------------------------------------------------------------------------------------
// One timer is armed at a time, for the earliest deadline: deadlines only grow (the TTL is fixed), so a
// record going offline never needs an earlier one, and churn cannot pile up timers.

void arm_sweep(registry_ptr self) {
  auto& st = self->state;
  if (st.sweep_armed || st.expiry.empty()) return;
  const auto delay = st.expiry.begin()->first - std::chrono::steady_clock::now();
  st.sweep_armed = true;
  self->delayed_send(self, std::max(delay, steady_time::duration::zero()), sweep_atom_v);
}

void expire_later(registry_ptr self, agent_record& a) {
  auto& st = self->state;
  cancel_expiry(st, a);
  a.expires =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(st.ctx->config.agent_offline_ttl_ms);
  st.expiry.emplace(*a.expires, a.registered_seq);
  arm_sweep(self);
}

void sweep(registry_ptr self) {
  auto& st = self->state;
  st.sweep_armed = false;
  const auto now = std::chrono::steady_clock::now();
  std::size_t forgotten = 0;
  while (!st.expiry.empty() && st.expiry.begin()->first <= now) {
    auto seq = st.expiry.begin()->second;
    st.expiry.erase(st.expiry.begin());
    auto it = st.by_seq.find(seq);
    if (it == st.by_seq.end()) continue;
    it->second->second.expires.reset();
    spdlog::info("agent {}: forgotten after {} ms offline", it->second->first,
                 st.ctx->config.agent_offline_ttl_ms);
    remove_record(st, it->second);
    ++forgotten;
  }
  if (forgotten > 0) update_gauges(st);
  arm_sweep(self);
}

// -- routes
// --------------------------------------------------------------------------------------------------

void send_error(registry_state& st, const transport::sink_ptr& sink, const std::string& reply_to,
                error_code code, std::string message) {
  st.ctx->metrics->errors.add(std::string(protocol::to_string(code)));
  send_to(sink, protocol::make_error(code, std::move(message), reply_to), *st.ctx->metrics);
}

/// A route's error for its requester: on its connection here, or as the answer to the node that asked.
void fail_route(registry_state& st, const route_entry& r, error_code code, std::string message) {
  if (r.requester_sink) return send_error(st, r.requester_sink, r.reply_to, code, std::move(message));
  st.ctx->cluster->bus->publish(
      r.reply_to, cluster::encode(cluster::routed_answer{std::string(protocol::to_string(code)), std::move(message), nullptr}));
}

void answer_route(registry_state& st, const route_entry& r, json response) {
  if (!r.requester_sink) {
    st.ctx->cluster->bus->publish(r.reply_to, cluster::encode(cluster::routed_answer{std::nullopt, {}, std::move(response)}));
    return;
  }
  send_to(r.requester_sink,
          protocol::make_reply("route_response", {{"agentId", r.agent_id}, {"response", std::move(response)}},
                               r.reply_to),
          *st.ctx->metrics);
}

/// Ends a route: the agent gets its slot back; the entry is gone, so a late answer is ROUTE_NOT_FOUND.
route_entry finish_route(registry_state& st, std::map<std::string, route_entry>::iterator it) {
  const auto request_id = it->first;
  auto entry = std::move(it->second);
  st.routes.erase(it);
  if (auto r = st.routes_by_requester.find(entry.requester); r != st.routes_by_requester.end()) {
    r->second.erase(request_id);
    if (r->second.empty()) st.routes_by_requester.erase(r);
  }
  if (auto a = st.agents.find(entry.agent_id); a != st.agents.end())
    change(st, a->second, [&](agent_record& rec) { rec.routes.erase(request_id); });
  return entry;
}

/// Requests in flight to agents that just went away fail at once with NO_AGENT (PROTOCOL.md).
void fail_routes_to(registry_state& st, agent_record& a, const std::string& agent_id) {
  const auto pending = a.routes;  // finish_route edits the record's set
  for (const auto& request_id : pending) {
    auto it = st.routes.find(request_id);
    if (it == st.routes.end()) continue;
    auto entry = finish_route(st, it);
    fail_route(st, entry, error_code::no_agent, "agent '" + agent_id + "' went away before answering");
  }
}

// -- listing
// -------------------------------------------------------------------------------------------------

agent_info describe(const std::string& id, const agent_record& a) {
  agent_info out;
  out.agent_id = id;
  out.name = a.info.name;
  out.type = a.info.type;
  out.capabilities = a.info.capabilities;
  out.metadata = a.info.metadata;
  out.status = std::string(protocol::to_string(a.status));
  if (!a.client_id.empty()) out.client_id = a.client_id;
  out.in_flight = a.in_flight();
  out.handled = a.handled;
  out.registered_at = a.registered_at;
  return out;
}

std::size_t rendered_size(const agent_info& a) {
  return json(a).dump(-1, ' ', false, json::error_handler_t::replace).size();
}

/// An entry and its rendered size; an oversized one keeps only its bounded fields (ids, type, counters).
std::pair<agent_info, std::size_t> page_entry(const std::string& id, const agent_record& a) {
  auto entry = describe(id, a);
  const auto bytes = rendered_size(entry);
  if (bytes <= max_entry_bytes) return {std::move(entry), bytes};
  entry.name.reset();
  entry.capabilities.clear();
  entry.metadata = json::object();
  entry.truncated_bytes = bytes;
  return {entry, rendered_size(entry)};
}

/// Up to `limit` agents after `cursor` (by id), cut short at page_byte_budget; `next` when more follow.
agent_page list_page(const registry_state& st, const std::string& cursor, std::uint64_t limit) {
  agent_page out;
  out.total = st.agents.size();
  std::size_t bytes = 0;
  auto it = cursor.empty() ? st.agents.begin() : st.agents.upper_bound(cursor);
  for (; it != st.agents.end() && out.agents.size() < limit; ++it) {
    auto [entry, size] = page_entry(it->first, it->second);
    if (!out.agents.empty() && bytes + size > page_byte_budget) break;
    bytes += size;
    out.agents.push_back(std::move(entry));
  }
  if (it != st.agents.end()) out.next = std::prev(it)->first;
  return out;
}

// -- requests
// ------------------------------------------------------------------------------------------------

/// Checks that `client_id` holds `agent_id`; returns the record or the error to answer.
std::variant<agent_it, op_result> held_by(registry_state& st, const std::string& client_id,
                                          const std::string& agent_id) {
  auto it = st.agents.find(agent_id);
  if (it == st.agents.end()) return op_result::fail(error_code::no_agent, "no agent '" + agent_id + "'");
  if (it->second.client_id != client_id)
    return op_result::fail(error_code::agent_conflict, "agent '" + agent_id + "' is held by another client");
  return it;
}

op_result refuse(registry_state& st, const char* key, std::size_t bound, const std::string& what) {
  st.ctx->metrics->limits_exceeded.add(key);
  return op_result::fail(limit_error, what + " (" + key + " is " + std::to_string(bound) + ")");
}

/// Makes room for one more record: the longest-unheld offline record goes first; nothing online is dropped.
bool make_room(registry_state& st) {
  if (st.agents.size() < st.ctx->config.max_agents) return true;
  if (st.expiry.empty()) return false;
  auto it = st.by_seq.find(st.expiry.begin()->second);
  if (it == st.by_seq.end()) return false;
  spdlog::info("agent {}: offline record dropped to make room (maxAgents)", it->second->first);
  remove_record(st, it->second);
  return st.agents.size() < st.ctx->config.max_agents;
}


// -- routes to other nodes' agents
// --------------------------------------------------------------------------------------------------------

void unindex_remote(remote_agents& r, const cluster::agent_entry& a) {
  auto drop = [&a](std::map<std::string, std::set<std::string>>& index, const std::string& name) {
    auto it = index.find(name);
    if (it == index.end()) return;
    it->second.erase(a.agent_id);
    if (it->second.empty()) index.erase(it);
  };
  for (const auto& cap : a.capabilities) drop(r.by_capability, cap);
  drop(r.by_type, a.type);
}

void index_remote(remote_agents& r, const cluster::agent_entry& a) {
  if (a.status != "online") return;
  for (const auto& cap : a.capabilities) r.by_capability[cap].insert(a.agent_id);
  r.by_type[a.type].insert(a.agent_id);
}

void forget_remote(remote_agents& r, const std::string& agent_id) {
  auto it = r.by_id.find(agent_id);
  if (it == r.by_id.end()) return;
  unindex_remote(r, it->second);
  r.by_id.erase(it);
}

void put_remote(remote_agents& r, cluster::agent_entry a) {
  forget_remote(r, a.agent_id);
  index_remote(r, a);
  auto id = a.agent_id;
  r.by_id.emplace(std::move(id), std::move(a));
}

/// Requests this node has in flight to `agent_id` on other nodes.
std::size_t remote_in_flight(const registry_state& st, const std::string& agent_id) {
  std::size_t n = 0;
  for (const auto& [_, r] : st.remote_routes) n += r.agent_id == agent_id;
  return n;
}

/// An online agent on another node for the request: by id, or the one with the fewest requests in flight
/// from here (the others' loads are not known here), then the smallest id.
std::optional<cluster::agent_entry> choose_remote(const registry_state& st, const protocol::route_request_payload& p) {
  const auto& r = st.remote;
  if (p.selector == protocol::route_selector::agent_id) {
    auto it = r.by_id.find(p.target);
    if (it == r.by_id.end() || it->second.status != "online") return std::nullopt;
    return it->second;
  }
  const auto& index = p.selector == protocol::route_selector::capability ? r.by_capability : r.by_type;
  auto it = index.find(p.target);
  if (it == index.end()) return std::nullopt;
  const std::string* best = nullptr;
  std::size_t best_load = 0;
  for (const auto& id : it->second) {
    const auto load = remote_in_flight(st, id);
    if (!best || load < best_load) {
      best = &id;
      best_load = load;
    }
  }
  if (!best) return std::nullopt;
  return r.by_id.at(*best);
}

void route_to_node(registry_ptr self, const cluster::agent_entry& agent, const std::string& requester,
                   transport::sink_ptr& sink, const std::string& reply_to, protocol::route_request_payload& p) {
  auto& st = self->state;
  const auto request_id = protocol::random_id("r-");
  st.remote_routes.emplace(request_id, remote_route{agent.agent_id, agent.node_id, requester, sink, reply_to});
  st.ctx->metrics->routes_total.fetch_add(1);
  st.ctx->cluster->bus->request(
      agent_subject(st, agent.agent_id), cluster::encode(cluster::routed_request{agent.agent_id, requester, std::move(p.request)}),
      std::chrono::milliseconds(st.ctx->config.route_timeout_ms),
      [me = caf::actor_cast<registry_actor>(self), request_id](cluster::result<std::string> r) {
        caf::anon_send(me, route_reply_atom_v, request_id, std::move(r));
      });
}

/// The other node's answer (or the bus's verdict) for a request sent there.
void on_route_reply(registry_ptr self, const std::string& request_id, const cluster::result<std::string>& r) {
  auto& st = self->state;
  auto it = st.remote_routes.find(request_id);
  if (it == st.remote_routes.end()) return;  // failed already (node lost) or the requester left
  auto route = std::move(it->second);
  st.remote_routes.erase(it);
  if (auto e = cluster::error_of(r)) {
    if (*e == cluster::bus_error::timeout)
      return send_error(st, route.requester_sink, route.reply_to, error_code::route_timeout,
                        "agent '" + route.agent_id + "' did not answer within " +
                            std::to_string(st.ctx->config.route_timeout_ms) + " ms");
    return send_error(st, route.requester_sink, route.reply_to, error_code::no_agent,
                      "agent '" + route.agent_id + "' is not reachable (" + std::string(cluster::to_string(*e)) + ")");
  }
  auto answer = cluster::decode_routed_answer(*cluster::value_of(r), st.ctx->config.max_json_depth);
  if (!answer) {
    st.ctx->metrics->cluster_rejected.fetch_add(1);
    return send_error(st, route.requester_sink, route.reply_to, error_code::internal, "malformed answer from node " + route.node_id);
  }
  if (answer->error_code) {
    const auto code = protocol::error_code_from_string(*answer->error_code).value_or(error_code::internal);
    return send_error(st, route.requester_sink, route.reply_to, code, answer->message);
  }
  send_to(route.requester_sink,
          protocol::make_reply("route_response", {{"agentId", route.agent_id}, {"response", std::move(answer->response)}},
                               route.reply_to),
          *st.ctx->metrics);
}

/// A route_request from another node for an agent held here: routed as a local one, answered on the bus.
void on_route_in(registry_ptr self, const cluster::message& m) {
  auto& st = self->state;
  if (m.reply_to.empty()) return;
  auto req = cluster::decode_routed_request(m.data, st.ctx->config.max_json_depth);
  if (!req) {
    st.ctx->metrics->cluster_rejected.fetch_add(1);
    return;
  }
  auto it = st.agents.find(req->agent_id);
  if (it == st.agents.end() || !it->second.routable()) {
    st.ctx->cluster->bus->publish(m.reply_to, cluster::encode(cluster::routed_answer{
                                                  std::string(protocol::to_string(error_code::no_agent)),
                                                  "agent '" + req->agent_id + "' is not online", nullptr}));
    return;
  }
  const auto request_id = protocol::random_id("r-");
  auto& agent = it->second;
  change(st, agent, [&](agent_record& rec) { rec.routes.insert(request_id); });
  st.routes.emplace(request_id, route_entry{it->first, req->from, nullptr, m.reply_to});
  send_to(agent.sink,
          protocol::make_event("route_request",
                               {{"requestId", request_id}, {"from", req->from}, {"request", std::move(req->request)}}),
          *st.ctx->metrics);
  self->delayed_send(self, std::chrono::milliseconds(st.ctx->config.route_timeout_ms), route_timeout_atom_v,
                     request_id);
}

cluster::agent_entry entry_of(const registry_state& st, const std::string& id, const agent_record& a) {
  cluster::agent_entry e;
  e.agent_id = id;
  e.node_id = st.ctx->node_id;
  e.type = a.info.type;
  e.status = std::string(protocol::to_string(a.status));
  e.name = a.info.name;
  if (!a.client_id.empty()) e.client_id = a.client_id;
  e.capabilities = a.info.capabilities;
  return e;
}

void announce(registry_ptr self, const std::string& id, const agent_record& a) {
  auto& st = self->state;
  if (!shared(st)) return;
  const auto& cl = *st.ctx->cluster;
  cl.agents->put(cluster_context::key_of(id), cluster::encode(entry_of(st, id, a)), nullptr);
  // Served for as long as the record exists, routable or not: a request that crossed the agent's going
  // offline on the wire is answered NO_AGENT by on_route_in, instead of being dropped by a subscription that
  // just ended (NATS would not report "no responders" for it).
  if (!st.serving.count(id))
    st.serving[id] = cl.bus->subscribe(agent_subject(st, id), [me = caf::actor_cast<registry_actor>(self)](cluster::message m) {
      caf::anon_send(me, route_in_atom_v, std::move(m));
    });
}

/// Another node's agent changed (or ours, echoed: a record of ours that this registry does not hold is left
/// from an earlier registry and is removed).
void on_agent_changed(registry_ptr self, const cluster::kv_entry& e) {
  auto& st = self->state;
  const auto id = cluster::decode_token(e.key);
  if (id.empty()) return;
  if (e.deleted) return forget_remote(st.remote, id);
  auto a = cluster::decode_agent_entry(e.value);
  if (!a || a->agent_id != id) {
    st.ctx->metrics->cluster_rejected.fetch_add(1);
    return;
  }
  if (a->node_id == st.ctx->node_id) {
    if (!st.agents.count(id)) st.ctx->cluster->agents->erase(e.key, e.revision, nullptr);
    return;
  }
  // Held elsewhere now: a record here for the same id is an offline leftover.
  st.sweep_remote.heard(id);
  put_remote(st.remote, std::move(*a));
}

/// The watch caught up after starting over: other nodes' agents whose records vanished meanwhile are gone.
void on_agents_synced(registry_ptr self) {
  auto& st = self->state;
  for (const auto& id : st.sweep_remote.stale(st.remote.by_id)) forget_remote(st.remote, id);
}

/// The bus is back: every record held here is written again (a NATS server that restarted lost them). A
/// failed write brings one more resync after a pause.
void resync(registry_ptr self) {
  auto& st = self->state;
  if (!shared(st)) return;
  st.resync_scheduled = false;
  auto me = caf::actor_cast<registry_actor>(self);
  for (const auto& [id, a] : st.agents)
    st.ctx->cluster->agents->put(cluster_context::key_of(id), cluster::encode(entry_of(st, id, a)),
                                 resync_write_done(me, st.ctx->metrics));
}

/// A node died: its agents are offline (every survivor writes so; the same value twice is harmless), and
/// requests from here to them fail now rather than at their timeout.
void on_node_lost(registry_ptr self, const std::string& node_id) {
  auto& st = self->state;
  std::vector<cluster::agent_entry> orphans;
  for (const auto& [_, a] : st.remote.by_id)
    if (a.node_id == node_id) orphans.push_back(a);
  for (auto& a : orphans) {
    a.status = "offline";
    a.client_id.reset();
    st.ctx->cluster->agents->put(cluster_context::key_of(a.agent_id), cluster::encode(a), nullptr);
    put_remote(st.remote, a);
  }
  for (auto it = st.remote_routes.begin(); it != st.remote_routes.end();) {
    if (it->second.node_id != node_id) {
      ++it;
      continue;
    }
    send_error(st, it->second.requester_sink, it->second.reply_to, error_code::no_agent,
               "agent '" + it->second.agent_id + "' was on node " + node_id + ", which is gone");
    it = st.remote_routes.erase(it);
  }
}

void watch_agents(registry_ptr self) {
  auto& st = self->state;
  if (!shared(st)) return;
  st.watch = st.ctx->cluster->agents->watch(">", [me = caf::actor_cast<registry_actor>(self)](std::optional<cluster::kv_entry> e) {
    if (e)
      caf::anon_send(me, agent_changed_atom_v, std::move(*e));
    else
      caf::anon_send(me, agents_synced_atom_v);
  });
}

op_result on_register(registry_ptr self, const std::string& client_id, transport::sink_ptr& sink,
                      protocol::agent_register_payload& p) {
  auto& st = self->state;
  const auto& cfg = st.ctx->config;
  auto it = st.agents.find(p.agent_id);
  if (it != st.agents.end() && !it->second.client_id.empty() && it->second.client_id != client_id)
    return op_result::fail(error_code::agent_conflict,
                           "agent '" + p.agent_id + "' is held by another live client");
  if (shared(st))
    if (auto r = st.remote.by_id.find(p.agent_id); r != st.remote.by_id.end() && r->second.status != "offline")
      return op_result::fail(error_code::agent_conflict,
                             "agent '" + p.agent_id + "' is held by a client on node " + r->second.node_id);
  const bool held_here = it != st.agents.end() && it->second.client_id == client_id;
  if (!held_here) {
    auto holds = st.by_client.find(client_id);
    if (holds != st.by_client.end() && holds->second.size() >= cfg.max_agents_per_client)
      return refuse(st, "maxAgentsPerClient", cfg.max_agents_per_client,
                    "this connection holds the most agents it may");
  }
  if (it == st.agents.end()) {
    if (!make_room(st))
      return refuse(st, "maxAgents", cfg.max_agents, "this node holds the most agent records it may");
    it = st.agents.emplace(p.agent_id, agent_record{}).first;
    it->second.status = agent_status_value::offline;  // not counted anywhere until change() below
    it->second.registered_seq = st.next_seq++;
    it->second.registered_at = protocol::now_ms();
    st.by_seq.emplace(it->second.registered_seq, it);
  }
  const auto id = it->first;
  change(st, it->second, [&](agent_record& rec) {
    rec.info = std::move(p);
    rec.status = agent_status_value::online;
    rec.client_id = client_id;
    rec.sink = std::move(sink);
  });
  cancel_expiry(st, it->second);
  st.by_client[client_id].insert(id);
  update_gauges(st);
  announce(self, id, it->second);
  spdlog::info("agent {}: registered by client {}", id, client_id);
  return op_result::ok({{"agentId", id}});
}

/// The online candidate with the fewest requests in flight; ties go to the earliest registered.
agent_it choose(registry_state& st, const protocol::route_request_payload& p) {
  auto from_index = [&st](const std::map<std::string, candidate_set>& index, const std::string& name) {
    auto it = index.find(name);
    if (it == index.end() || it->second.empty()) return st.agents.end();
    auto rec = st.by_seq.find(it->second.begin()->second);
    return rec == st.by_seq.end() ? st.agents.end() : rec->second;
  };
  switch (p.selector) {
    case protocol::route_selector::agent_id: {
      auto it = st.agents.find(p.target);
      return it != st.agents.end() && it->second.routable() ? it : st.agents.end();
    }
    case protocol::route_selector::capability:
      return from_index(st.by_capability, p.target);
    case protocol::route_selector::agent_type:
      return from_index(st.by_type, p.target);
  }
  return st.agents.end();
}

void on_route(registry_ptr self, const std::string& requester, transport::sink_ptr& sink,
              const std::string& reply_to, protocol::route_request_payload& p) {
  auto& st = self->state;
  auto chosen = choose(st, p);
  if (chosen == st.agents.end() && shared(st))
    if (auto remote = choose_remote(st, p)) return route_to_node(self, *remote, requester, sink, reply_to, p);
  if (chosen == st.agents.end())
    return send_error(
        st, sink, reply_to, error_code::no_agent,
        "no online agent for " + std::string(protocol::to_string(p.selector)) + " '" + p.target + "'");
  const auto request_id = protocol::random_id("r-");
  auto& agent = chosen->second;
  change(st, agent, [&](agent_record& rec) { rec.routes.insert(request_id); });
  st.routes.emplace(request_id, route_entry{chosen->first, requester, std::move(sink), reply_to});
  st.routes_by_requester[requester].insert(request_id);
  st.ctx->metrics->routes_total.fetch_add(1);
  send_to(agent.sink,
          protocol::make_event(
              "route_request",
              {{"requestId", request_id}, {"from", requester}, {"request", std::move(p.request)}}),
          *st.ctx->metrics);
  self->delayed_send(self, std::chrono::milliseconds(st.ctx->config.route_timeout_ms), route_timeout_atom_v,
                     request_id);
}

op_result on_response(registry_ptr self, const std::string& client_id,
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
  answer_route(st, entry, std::move(p.response));
  return op_result::ok();
}

void on_client_gone(registry_ptr self, const std::string& client_id) {
  auto& st = self->state;
  if (auto held = st.by_client.find(client_id); held != st.by_client.end()) {
    const auto ids = std::move(held->second);
    st.by_client.erase(held);
    for (const auto& id : ids) {
      auto it = st.agents.find(id);
      if (it == st.agents.end()) continue;
      // The record stays (for agentOfflineTtlMs) so the agent can come back; only its connection is gone.
      change(st, it->second, [](agent_record& rec) {
        rec.status = agent_status_value::offline;
        rec.client_id.clear();
        rec.sink.reset();
      });
      spdlog::info("agent {}: offline (client {} disconnected)", id, client_id);
      fail_routes_to(st, it->second, id);
      expire_later(self, it->second);
      announce(self, id, it->second);
    }
  }
  for (auto r = st.remote_routes.begin(); r != st.remote_routes.end();)
    r = r->second.requester == client_id ? st.remote_routes.erase(r) : std::next(r);
  // The requester is gone: its pending answers have nowhere to go.
  if (auto asked = st.routes_by_requester.find(client_id); asked != st.routes_by_requester.end()) {
    const auto ids = asked->second;  // finish_route edits the entry
    for (const auto& request_id : ids)
      if (auto it = st.routes.find(request_id); it != st.routes.end()) finish_route(st, it);
  }
  update_gauges(st);
}

}  // namespace

registry_actor::behavior_type registry_behavior(registry_ptr self, context_ptr ctx) {
  self->state.ctx = std::move(ctx);
  watch_agents(self);
  return {
      [self](register_atom, const std::string& client_id, transport::sink_ptr& sink,
             protocol::agent_register_payload& p) { return on_register(self, client_id, sink, p); },
      [self](unregister_atom, const std::string& client_id, const protocol::agent_id_payload& p) {
        auto& st = self->state;
        auto held = held_by(st, client_id, p.agent_id);
        if (auto* err = std::get_if<op_result>(&held)) return *err;
        auto it = std::get<agent_it>(held);
        fail_routes_to(st, it->second, p.agent_id);
        remove_record(st, it);
        update_gauges(st);
        return op_result::ok();
      },
      [self](agent_status_atom, const std::string& client_id, const protocol::agent_status_payload& p) {
        auto& st = self->state;
        auto held = held_by(st, client_id, p.agent_id);
        if (auto* err = std::get_if<op_result>(&held)) return *err;
        auto it = std::get<agent_it>(held);
        change(st, it->second, [&](agent_record& rec) { rec.status = p.status; });
        update_gauges(st);
        announce(self, it->first, it->second);
        return op_result::ok();
      },
      [self](route_request_atom, const std::string& requester, transport::sink_ptr& sink, const std::string& reply_to,
             protocol::route_request_payload& p) { on_route(self, requester, sink, reply_to, p); },
      [self](route_response_atom, const std::string& client_id, protocol::route_response_payload& p) {
        return on_response(self, client_id, p);
      },
      [self](route_timeout_atom, const std::string& request_id) {
        auto& st = self->state;
        auto it = st.routes.find(request_id);
        if (it == st.routes.end()) return;
        auto entry = finish_route(st, it);
        fail_route(st, entry, error_code::route_timeout,
                   "agent '" + entry.agent_id + "' did not answer within " +
                       std::to_string(st.ctx->config.route_timeout_ms) + " ms");
      },
      [self](sweep_atom) { sweep(self); },
      [self](client_gone_atom, const std::string& client_id) { on_client_gone(self, client_id); },
      [self](agent_page_atom, const std::string& cursor, std::uint64_t limit) {
        return list_page(self->state, cursor, limit);
      },
      [self](agent_changed_atom, const cluster::kv_entry& e) { on_agent_changed(self, e); },
      [self](route_in_atom, const cluster::message& m) { on_route_in(self, m); },
      [self](route_reply_atom, const std::string& request_id, const cluster::result<std::string>& r) {
        on_route_reply(self, request_id, r);
      },
      [self](node_lost_atom, const std::string& node_id) { on_node_lost(self, node_id); },
      [self](agents_synced_atom) { on_agents_synced(self); },
      [self](resync_atom) { resync(self); },
      [self](resync_failed_atom) {
        auto& st = self->state;
        if (st.resync_scheduled) return;
        st.resync_scheduled = true;
        self->delayed_send(self, resync_retry, resync_atom_v);
      },
      [self](status_atom) {
        const auto& s = self->state;
        return actor_status{"agents", self->mailbox().size(),
                            registry_status{s.agents.size(), s.online, s.expiry.size(), s.routes.size()}};
      },
  };
}

registry_actor spawn_agent_registry(caf::actor_system& sys, context_ptr ctx) {
  return sys.spawn(registry_behavior, std::move(ctx));
}

}  // namespace sb::actors

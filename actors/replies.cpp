// The JSON shapes of PROTOCOL.md "Admin socket" (and hello_ok's presence), rendered from the typed replies.
#include "actors/replies.hpp"

namespace sb::actors {

namespace {

using json = nlohmann::json;

template <class T>
json or_null(const std::optional<T>& x) {
  return x ? json(*x) : json(nullptr);
}

void put_traffic(json& j, const char* streams_key, const tunnel_traffic& t) {
  j[streams_key] = t.streams_total;
  j["bytesIn"] = t.bytes_in;
  j["bytesOut"] = t.bytes_out;
}

struct render_state {
  json operator()(const supervisor_status& x) const {
    return {{"clients", x.clients},
            {"sessions", x.sessions},
            {"draining", x.draining},
            {"registryRestarts", x.registry_restarts}};
  }
  json operator()(const client_status& x) const {
    return {{"authenticated", x.authenticated},
            {"sessions", x.sessions},
            {"status", x.status},
            {"address", x.address}};
  }
  json operator()(const session_status& x) const {
    return {{"members", x.members}, {"broadcasts", x.broadcasts}};
  }
  json operator()(const registry_status& x) const {
    return {{"agents", x.agents},
            {"online", x.online},
            {"offlineExpiring", x.offline_expiring},
            {"inFlight", x.in_flight}};
  }
  json operator()(const tunnel_info& x) const { return x; }
  json operator()(const tunnel_connection_status& x) const {
    json j = {{"relayUri", x.relay_uri}, {"connected", x.connected}, {"streams", x.streams}};
    if (x.traffic) put_traffic(j, "streamsTotal", *x.traffic);
    return j;
  }
  json operator()(const tunnel_stream_status& x) const { return {{"port", x.port}, {"openedAt", x.opened_at}}; }
  json operator()(const relay_directory_status& x) const { return {{"tunnels", x.tunnels}}; }
  json operator()(const relay_tunnel_info& x) const { return x; }
  json operator()(const relay_connection_status& x) const {
    return {{"role", x.role},         {"tunnelId", x.tunnel_id}, {"protocol", x.protocol},
            {"ready", x.ready},       {"bytesIn", x.bytes_in},   {"bytesOut", x.bytes_out},
            {"channels", x.channels}, {"openedAt", x.opened_at}};
  }
  json operator()(const members_status& x) const { return {{"nodes", x.nodes}, {"link", x.link}}; }
};

struct kind_name {
  const char* operator()(const supervisor_status&) const { return "supervisor"; }
  const char* operator()(const client_status&) const { return "client"; }
  const char* operator()(const session_status&) const { return "session"; }
  const char* operator()(const registry_status&) const { return "agent_registry"; }
  const char* operator()(const tunnel_info&) const { return "tunnel_supervisor"; }
  const char* operator()(const tunnel_connection_status&) const { return "tunnel_connection"; }
  const char* operator()(const tunnel_stream_status&) const { return "tunnel_stream"; }
  const char* operator()(const relay_directory_status&) const { return "relay_directory"; }
  const char* operator()(const relay_tunnel_info&) const { return "relay_tunnel"; }
  const char* operator()(const relay_connection_status&) const { return "relay_connection"; }
  const char* operator()(const members_status&) const { return "cluster_members"; }
};

}  // namespace

const char* kind_of(const actor_state& state) { return std::visit(kind_name{}, state); }

void to_json(json& j, const client_info& x) {
  j = {{"clientId", x.client_id},
       {"authenticated", x.authenticated},
       {"userId", x.user_id},
       {"deviceId", or_null(x.device_id)},
       {"role", or_null(x.role)},
       {"clientName", or_null(x.client_name)},
       {"status", x.status},
       {"sessions", x.sessions},
       {"address", x.address},
       {"tls", x.tls},
       {"connectedAt", x.connected_at},
       {"lastActivity", x.last_activity},
       {"messagesIn", x.messages_in}};
}

void to_json(json& j, const session_info& x) {
  j = {{"id", x.id}, {"clients", x.clients}, {"metadata", x.metadata}, {"createdAt", x.created_at}};
}

void to_json(json& j, const presence_entry& x) {
  j = {{"clientId", x.client_id},
       {"role", or_null(x.role)},
       {"deviceId", or_null(x.device_id)},
       {"status", x.status}};
}

void to_json(json& j, const agent_info& x) {
  j = {{"agentId", x.agent_id},
       {"type", x.type},
       {"status", x.status},
       {"clientId", or_null(x.client_id)},
       {"inFlight", x.in_flight},
       {"handled", x.handled},
       {"registeredAt", x.registered_at}};
  if (x.truncated_bytes) {
    j["truncated"] = true;
    j["bytes"] = *x.truncated_bytes;
    return;
  }
  j["name"] = or_null(x.name);
  j["capabilities"] = x.capabilities;
  j["metadata"] = x.metadata;
}

void to_json(json& j, const agent_page& x) {
  j = {{"agents", x.agents}, {"total", x.total}};
  if (x.next) j["next"] = *x.next;
}

void to_json(json& j, const tunnel_info& x) {
  j = {{"tunnelId", x.tunnel_id},
       {"status", x.status},
       {"relay", x.relay},
       {"protocol", or_null(x.protocol)},
       {"ports", x.ports},
       {"reconnects", x.reconnects},
       {"attempts", x.attempts},
       {"nextRetry", or_null(x.next_retry)},
       {"lastError", or_null(x.last_error)}};
  if (x.clients) j["clients"] = *x.clients;
  if (x.traffic) put_traffic(j, "clientsTotal", *x.traffic);
}

void to_json(json& j, const actor_status& x) {
  j = {{"kind", kind_of(x.state)},
       {"id", x.id},
       {"mailbox", x.mailbox},
       {"state", std::visit(render_state{}, x.state)}};
}

void to_json(json& j, const relay_tunnel_info& x) {
  j = {{"tunnelId", x.tunnel_id},
       {"host", x.host ? json(*x.host) : json(nullptr)},
       {"protocol", or_null(x.protocol)},
       {"ports", x.ports},
       {"clients", x.clients},
       {"hostsReplaced", x.hosts_replaced}};
}

void to_json(json& j, const cluster_member_info& x) {
  j = {{"nodeId", x.node_id}, {"address", x.address},     {"state", x.state},
       {"self", x.self},      {"lastHeartbeat", x.last_heartbeat}, {"clients", x.clients},
       {"sessions", x.sessions}, {"agents", x.agents}};
}

void to_json(json& j, const cluster_view& x) {
  // degraded: this node cannot reach NATS; it serves its own clients and the rest of the cluster waits.
  j = {{"cluster", x.name}, {"bus", x.bus}, {"link", x.link}, {"degraded", x.link != "connected"},
       {"members", x.members}, {"nodesLost", x.nodes_lost}};
}

}  // namespace sb::actors

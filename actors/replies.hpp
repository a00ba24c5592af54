#pragma once
// Typed answers of the actors' `info` and `status` requests. An actor fills a struct; only the edge that
// speaks JSON (the admin socket, the HTTP API) renders it, with to_json below, so a field renamed in one place
// is a compile error everywhere else instead of a silent 0 read back by string key.
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace sb::actors {

/// How long an actor asking another for its `info` or `status` waits: one silent actor is reported as such
/// instead of holding up an admin answer.
inline constexpr std::chrono::seconds status_ask_timeout{3};

// -- `info`: the full record of one client, session or agent --------------------------------------------

struct client_info {
  std::string client_id;
  bool authenticated = false;
  std::string user_id;
  std::optional<std::string> device_id, role, client_name;
  std::string status;
  std::vector<std::string> sessions;
  std::string address;
  bool tls = false;
  std::int64_t connected_at = 0;
  std::int64_t last_activity = 0;
  std::uint64_t messages_in = 0;
};

struct session_info {
  std::string id;
  std::vector<std::string> clients;  // in join order
  nlohmann::json metadata = nlohmann::json::object();
  std::int64_t created_at = 0;
};

/// One authenticated client as `hello_ok` and `presence_list` show it.
struct presence_entry {
  std::string client_id;
  std::optional<std::string> role, device_id;
  std::string status;
};

/// A page of the node's presence view in arrival order (`hello_ok`'s snapshot, `presence_list`).
struct presence_page {
  std::vector<presence_entry> clients;
  std::size_t total = 0;  // every authenticated client the node knows of
  std::uint64_t next = 0; // the cursor of the page after; 0 on the last
};

struct agent_info {
  std::string agent_id;
  std::optional<std::string> name;
  std::string type;
  std::vector<std::string> capabilities;
  nlohmann::json metadata = nlohmann::json::object();
  std::string status;
  std::optional<std::string> client_id;  // absent while offline
  std::size_t in_flight = 0;
  std::uint64_t handled = 0;
  std::int64_t registered_at = 0;
  /// Set when the whole entry would not fit a page: its size, and name, capabilities and metadata are left
  /// out (the rest is bounded).
  std::optional<std::size_t> truncated_bytes;
};

/// One page of the agent registry (PROTOCOL.md "Admin socket" paging).
struct agent_page {
  std::vector<agent_info> agents;
  std::size_t total = 0;
  std::optional<std::string> next;
};

// -- `status`: one line per actor for `admin actors` ------------------------------------------------------

struct supervisor_status {
  std::size_t clients = 0, sessions = 0;
  bool draining = false;
  std::uint64_t registry_restarts = 0;  // times the agent registry died and was started again
};
struct client_status {
  bool authenticated = false;
  std::size_t sessions = 0;
  std::string status, address;
};
struct session_status {
  std::size_t members = 0;
  std::uint64_t broadcasts = 0;
};
struct registry_status {
  std::size_t agents = 0, online = 0, offline_expiring = 0, in_flight = 0;
};
/// What the tunnel host's connection actor has carried (host_peer's live counters).
struct tunnel_traffic {
  std::uint64_t streams_total = 0, bytes_in = 0, bytes_out = 0;
};
/// The tunnel supervisor's state: `admin tunnel` and its line in `admin actors`.
struct tunnel_info {
  std::string tunnel_id, status, relay;
  std::optional<std::string> protocol;  // "v1" or "v2" once connected
  std::vector<std::uint16_t> ports;
  std::uint64_t reconnects = 0, attempts = 0;
  std::optional<std::int64_t> next_retry;  // epoch ms of the scheduled restart
  std::optional<std::string> last_error;
  // Only in `admin tunnel`, asked live from the connection actor:
  std::optional<std::size_t> clients;    // streams open now
  std::optional<tunnel_traffic> traffic;  // absent when the connection did not answer
};
struct tunnel_connection_status {
  std::string relay_uri;
  bool connected = false;
  std::size_t streams = 0;
  std::optional<tunnel_traffic> traffic;  // once the relay connection exists
};
struct tunnel_stream_status {
  std::uint16_t port = 0;
  std::int64_t opened_at = 0;
};

// -- the relay (actors/relay.cpp) --

/// The directory of a relay's tunnel actors.
struct relay_directory_status {
  std::size_t tunnels = 0;
};
/// One relay tunnel: `admin tunnels` and its line in `admin actors`.
struct relay_tunnel_info {
  std::string tunnel_id;
  std::optional<std::uint64_t> host;     // the host connection's id
  std::optional<std::string> protocol;   // the host's, "v1" or "v2"
  std::vector<std::uint32_t> ports;      // what the host forwards
  std::size_t clients = 0;
  std::uint64_t hosts_replaced = 0;
};
/// One relay WebSocket.
struct relay_connection_status {
  std::string role, tunnel_id, protocol;
  bool ready = false;  // SSH session ready (a piped client: spliced)
  std::uint64_t bytes_in = 0, bytes_out = 0, channels = 0;
  std::int64_t opened_at = 0;  // epoch ms
};

// -- the cluster (actors/cluster_members.cpp) --

struct cluster_member_info {
  std::string node_id, address, state;  // state: alive, draining, lost
  bool self = false;
  std::int64_t last_heartbeat = 0;  // epoch ms, as the node sent it
  std::uint64_t clients = 0, sessions = 0, agents = 0;
};
/// `admin cluster`: every member this node knows of, and how it reaches them.
struct cluster_view {
  std::string name, bus, link;  // link: connected, reconnecting, closed
  std::vector<cluster_member_info> members;
  std::uint64_t nodes_lost = 0;
};
struct members_status {
  std::size_t nodes = 0;
  std::string link;
};

using actor_state = std::variant<supervisor_status, client_status, session_status, registry_status,
                                 tunnel_info, tunnel_connection_status, tunnel_stream_status,
                                 relay_directory_status, relay_tunnel_info, relay_connection_status,
                                 members_status>;

struct actor_status {
  std::string id;
  std::size_t mailbox = 0;
  actor_state state;
};

/// The gateway supervisor's counts for `admin stats` (the rest of `stats` comes from the metrics).
struct node_stats {
  std::size_t clients = 0, authenticated_clients = 0, sessions = 0;
  std::size_t cluster_sessions = 0;  // every session of the cluster, from the sessions bucket (clustered nodes)
};

/// The kind named in `admin actors` for each state ("client", "session", ...).
const char* kind_of(const actor_state& state);

void to_json(nlohmann::json& j, const client_info& x);
void to_json(nlohmann::json& j, const session_info& x);
void to_json(nlohmann::json& j, const presence_entry& x);
void to_json(nlohmann::json& j, const agent_info& x);
void to_json(nlohmann::json& j, const agent_page& x);
void to_json(nlohmann::json& j, const tunnel_info& x);
void to_json(nlohmann::json& j, const relay_tunnel_info& x);
void to_json(nlohmann::json& j, const actor_status& x);
void to_json(nlohmann::json& j, const cluster_member_info& x);
void to_json(nlohmann::json& j, const cluster_view& x);

}  // namespace sb::actors

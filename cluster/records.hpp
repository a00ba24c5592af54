#pragma once
// What nodes write to the bus, and how they read it back, sans-I/O. Everything read from the bus is hostile
// (anyone with NATS access can write there): every decoder bounds size and depth and answers nullopt for
// anything malformed, never throws.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sb::cluster {

/// A session as the cluster knows it: one KV value per session, changed by compare-and-set only.
struct session_record {
  struct member {
    std::string client_id, node_id;
    std::uint64_t seq = 0;  // join order across the cluster
  };
  std::string id;
  nlohmann::json metadata = nlohmann::json::object();
  std::int64_t created_at = 0;
  std::vector<member> members;  // in join order
  std::uint64_t next_seq = 0;

  const member* find(std::string_view client_id) const;
  /// False when the client is a member already.
  bool add(std::string client_id, std::string node_id);
  bool remove(std::string_view client_id);
  /// Removes every member on `node_id`; returns how many.
  std::size_t remove_node(std::string_view node_id);
  std::size_t members_on_other_nodes(std::string_view node_id) const;
};

std::string encode(const session_record& r);
std::optional<session_record> decode_session_record(std::string_view text, std::size_t max_json_depth);

/// A frame for a session's members on other nodes: who sent it (the origin node and the member to leave
/// out) and the WebSocket text, sent as it will be delivered.
struct fanout {
  std::string origin_node, except_client;
  std::string frame;
};
std::string encode(const fanout& f);
std::optional<fanout> decode_fanout(std::string_view data);

/// A node's heartbeat: who it is, where clients reach it, how loaded it is.
struct heartbeat {
  std::string node_id, address, state;  // state: "alive" or "draining"; "leaving" is the last one sent
  std::uint64_t clients = 0, sessions = 0, agents = 0;
  std::int64_t sent_at = 0;  // epoch ms
};
std::string encode(const heartbeat& h);
std::optional<heartbeat> decode_heartbeat(std::string_view data);

/// One authenticated client's presence, as every node's hello_ok shows it.
struct presence_record {
  std::string client_id, node_id, status;
  std::optional<std::string> role, device_id;
};
std::string encode(const presence_record& p);
std::optional<presence_record> decode_presence_record(std::string_view text);

/// An agent as the other nodes see it: enough to route to it and list it.
struct agent_entry {
  std::string agent_id, node_id, type, status;  // status: online, busy, offline
  std::optional<std::string> name, client_id;
  std::vector<std::string> capabilities;
};
std::string encode(const agent_entry& a);
std::optional<agent_entry> decode_agent_entry(std::string_view text);

/// A route_request sent to the node that holds the agent, and that node's answer.
struct routed_request {
  std::string agent_id, from;  // the agent asked, the requesting client
  nlohmann::json request;
};
std::string encode(const routed_request& r);
std::optional<routed_request> decode_routed_request(std::string_view text, std::size_t max_json_depth);

struct routed_answer {
  std::optional<std::string> error_code;  // a PROTOCOL.md code (NO_AGENT, ROUTE_TIMEOUT) when it failed
  std::string message;
  nlohmann::json response;
};
std::string encode(const routed_answer& a);
std::optional<routed_answer> decode_routed_answer(std::string_view text, std::size_t max_json_depth);

/// A node id, cluster name or other name that goes into subjects unencoded: 1-64 of [A-Za-z0-9_-].
bool valid_name(std::string_view name);

}  // namespace sb::cluster

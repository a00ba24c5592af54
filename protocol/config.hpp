#pragma once
// Gateway configuration keys (PROTOCOL.md "Configuration keys"). Every source (file, environment, flags) is
// first turned into one JSON object of these keys; `parse_gateway_config` then checks it, naming the key that
// is unknown or wrong.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "protocol/cidr.hpp"

namespace sb::protocol {

enum class auth_mode { token, password, none };
std::string_view to_string(auth_mode m);

struct gateway_config {
  std::uint16_t port = 8080;
  std::string bind = "loopback";  // loopback, lan, all, or an IP address
  std::string path = "/ws";
  auth_mode auth = auth_mode::token;
  std::vector<std::string> auth_tokens;
  std::string auth_password;
  std::vector<std::string> cors_origins;
  std::vector<std::string> trusted_proxies_text;
  std::vector<cidr> trusted_proxies;
  std::size_t max_payload = 1048576;
  bool per_message_deflate = true;
  std::uint32_t heartbeat_interval_ms = 30000;
  std::uint32_t client_timeout_ms = 60000;
  std::uint32_t route_timeout_ms = 30000;
  std::uint32_t rate_limit = 100;  // messages per second per client; 0 disables
  std::uint32_t presence_limit = 100;  // entries in hello_ok's presence snapshot; presence_list pages the rest
  std::size_t send_queue_limit = 1024;
  std::size_t send_queue_bytes = 8 * 1024 * 1024;
  std::string tls_cert;
  std::string tls_key;
  std::string admin_socket = "switchboard.sock";
  std::string node_id;  // empty: generated at start
  std::string log_level = "info";
  std::uint32_t drain_timeout_ms = 10000;
  // Hostile-input bounds: each is a key, a counter in /metrics (switchboard_limit_exceeded_total) and a test.
  std::size_t max_json_depth = 64;                  // nesting of any JSON value a client sends
  std::size_t max_session_metadata_bytes = 65536;   // serialized size of one session's metadata
  std::size_t max_agents_per_client = 32;           // agents one connection may register
  std::size_t max_agents = 100000;                  // agent records on this node, online or offline
  std::uint32_t agent_offline_ttl_ms = 300000;      // an offline agent's record is forgotten after this
  std::uint32_t auth_timeout_ms = 10000;            // close a connection not authenticated by then
  std::size_t max_connections = 100000;             // open WebSocket connections on this node
  std::size_t max_connections_per_ip = 1000;        // open WebSocket connections from one client address
  // Exposing this node through a tunnel (TUNNEL.md `serve --tunnel-relay URL --tunnel ID --tunnel-token
  // ...`).
  std::string tunnel_relay;
  std::string tunnel_id;
  std::string tunnel_token;
  std::string tunnel_token_file;
  std::string tunnel_token_command;
  std::string tunnel_protocol = "auto";

  // The cluster (README "Cluster"): nodes coordinate through NATS; none given: a single node, in-process bus.
  std::vector<std::string> cluster_nats;  // nats:// or tls:// server URLs
  std::string cluster_name = "switchboard";  // namespaces subjects and buckets: two clusters may share a NATS
  std::string cluster_nats_token;
  std::string cluster_nats_user;
  std::string cluster_nats_password;
  std::string cluster_nats_creds;     // a .creds file (JWT and nkey seed)
  std::string cluster_nats_nkey;      // nkey public key, with clusterNatsNkeySeed
  std::string cluster_nats_nkey_seed; // file holding the nkey seed
  std::string cluster_nats_ca;        // CA file: TLS to NATS, verified against it
  std::uint32_t cluster_heartbeat_ms = 250;
  std::uint32_t cluster_node_timeout_ms = 1250;  // a node silent this long is gone: noticed within 1.5 s
  std::uint32_t cluster_kv_replicas = 1;
  std::size_t max_session_members = 5000;        // members of one session, across the cluster

  bool tunnel_enabled() const { return !tunnel_relay.empty(); }
  bool clustered() const { return !cluster_nats.empty(); }

  bool tls_enabled() const { return !tls_cert.empty(); }
};

enum class key_kind { integer, boolean, string, string_list };

struct config_key {
  const char* name;  // camelCase, as in the JSON file
  key_kind kind;
  const char* help;
};

/// Every key, in documentation order.
const std::vector<config_key>& gateway_config_keys();
const config_key* find_config_key(std::string_view name);

/// "maxPayload" -> "max-payload" (flag) and "SWITCHBOARD_MAX_PAYLOAD" (environment).
std::string flag_name(std::string_view key);
std::string env_name(std::string_view key);

/// Converts the text of a flag or environment variable to the key's JSON type. Lists are JSON arrays or
/// comma-separated. Returns an error message naming the key when the text does not fit.
std::variant<nlohmann::json, std::string> coerce_config_text(const config_key& key, const std::string& text);

/// Checks a merged object of keys and builds the configuration; the error names the offending key.
std::variant<gateway_config, std::string> parse_gateway_config(const nlohmann::json& object);

}  // namespace sb::protocol

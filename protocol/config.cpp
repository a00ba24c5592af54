#include "protocol/config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <limits>

#include "protocol/json_bounds.hpp"
#include "protocol/origin.hpp"
#include "protocol/text.hpp"

namespace sb::protocol {

std::string_view to_string(auth_mode m) {
  switch (m) {
    case auth_mode::token:
      return "token";
    case auth_mode::password:
      return "password";
    case auth_mode::none:
      return "none";
  }
  return "token";
}

const std::vector<config_key>& gateway_config_keys() {
  static const std::vector<config_key> keys = {
      {"port", key_kind::integer, "TCP port for WebSocket and HTTP (0 picks a free port)"},
      {"bind", key_kind::string, "loopback, lan, all, or an IP address"},
      {"path", key_kind::string, "WebSocket upgrade path"},
      {"authMode", key_kind::string, "token, password or none"},
      {"authTokens", key_kind::string_list, "accepted tokens; empty in token mode generates one"},
      {"authPassword", key_kind::string, "password for authMode password"},
      {"corsOrigins", key_kind::string_list, "allowed browser origins: exact, * or https://*.example.com"},
      {"trustedProxies", key_kind::string_list, "CIDRs whose X-Forwarded-* headers are honoured"},
      {"maxPayload", key_kind::integer, "largest message in bytes after decompression"},
      {"perMessageDeflate", key_kind::boolean, "negotiate permessage-deflate"},
      {"heartbeatIntervalMs", key_kind::integer, "WebSocket ping interval"},
      {"clientTimeoutMs", key_kind::integer, "close a connection silent for this long"},
      {"routeTimeoutMs", key_kind::integer, "ROUTE_TIMEOUT after this long"},
      {"rateLimit", key_kind::integer, "messages per second per client, burst 2x (0: off)"},
      {"presenceLimit", key_kind::integer, "entries in hello_ok's presence snapshot (presence_list pages the rest)"},
      {"sendQueueLimit", key_kind::integer, "frames queued per client before it is closed with 4008"},
      {"sendQueueBytes", key_kind::integer, "bytes queued per client before it is closed with 4008"},
      {"tlsCert", key_kind::string, "PEM certificate chain; with tlsKey serves wss/https only"},
      {"tlsKey", key_kind::string, "PEM private key"},
      {"adminSocket", key_kind::string, "admin Unix socket path"},
      {"nodeId", key_kind::string, "this node's id (generated when empty)"},
      {"logLevel", key_kind::string, "trace, debug, info, warn, error, critical or off"},
      {"drainTimeoutMs", key_kind::integer, "longest wait for clients to close on shutdown"},
      {"maxJsonDepth", key_kind::integer, "deepest nesting of arrays and objects accepted in a message"},
      {"maxSessionMetadataBytes", key_kind::integer, "largest serialized metadata of one session"},
      {"maxAgentsPerClient", key_kind::integer, "agents one connection may register"},
      {"maxAgents", key_kind::integer, "agent records kept on this node, online or offline"},
      {"agentOfflineTtlMs", key_kind::integer, "forget an offline agent's record after this long"},
      {"authTimeoutMs", key_kind::integer, "close a connection that has not authenticated by then"},
      {"maxConnections", key_kind::integer, "open WebSocket connections on this node"},
      {"maxConnectionsPerIp", key_kind::integer, "open WebSocket connections from one client address"},
      {"tunnelRelay", key_kind::string, "relay base URL: also expose this node through a tunnel"},
      {"tunnel", key_kind::string, "tunnel id for tunnelRelay"},
      {"tunnelToken", key_kind::string, "host access token of the tunnel"},
      {"tunnelTokenFile", key_kind::string, "file holding the host token; read again on 401"},
      {"tunnelTokenCommand", key_kind::string, "command printing the host token; run again on 401"},
      {"tunnelProtocol", key_kind::string, "auto, v2 or v1"},
      {"maxSessionMembers", key_kind::integer, "members of one session, across the cluster"},
      {"clusterNats", key_kind::string_list, "NATS server URLs (nats:// or tls://): join a cluster"},
      {"clusterName", key_kind::string, "namespace of this cluster's subjects and buckets on NATS"},
      {"clusterNatsToken", key_kind::string, "NATS token"},
      {"clusterNatsUser", key_kind::string, "NATS user (with clusterNatsPassword)"},
      {"clusterNatsPassword", key_kind::string, "NATS password"},
      {"clusterNatsCreds", key_kind::string, "NATS credentials file (JWT and nkey seed)"},
      {"clusterNatsNkey", key_kind::string, "NATS nkey public key (with clusterNatsNkeySeed)"},
      {"clusterNatsNkeySeed", key_kind::string, "file holding the NATS nkey seed"},
      {"clusterNatsCa", key_kind::string, "CA file: connect to NATS over TLS and verify it"},
      {"clusterHeartbeatMs", key_kind::integer, "interval of this node's heartbeats to the others"},
      {"clusterNodeTimeoutMs", key_kind::integer, "a node silent this long is gone: its clients leave"},
      {"clusterKvReplicas", key_kind::integer, "replicas of the cluster's KV buckets (NATS cluster size)"},
  };
  return keys;
}

namespace {

/// A name that goes into NATS subjects and bucket names as it is.
bool plain_name(const std::string& s) {
  return !s.empty() && s.size() <= 64 &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_'; });
}

std::optional<std::string> cluster_error(const gateway_config& cfg) {
  if (!plain_name(cfg.cluster_name)) return "clusterName: 1-64 letters, digits, '-' or '_'";
  if (!cfg.node_id.empty() && !plain_name(cfg.node_id)) return "nodeId: 1-64 letters, digits, '-' or '_'";
  for (const auto& url : cfg.cluster_nats)
    if (url.rfind("nats://", 0) != 0 && url.rfind("tls://", 0) != 0)
      return "clusterNats: expected nats:// or tls:// URLs, got '" + url + "'";
  const int credentials = int(!cfg.cluster_nats_token.empty()) + int(!cfg.cluster_nats_user.empty()) +
                          int(!cfg.cluster_nats_creds.empty()) + int(!cfg.cluster_nats_nkey_seed.empty());
  if (credentials > 1)
    return std::string(
        "clusterNatsToken: give at most one of clusterNatsToken, clusterNatsUser, clusterNatsCreds, clusterNatsNkeySeed");
  if (cfg.cluster_nats_user.empty() != cfg.cluster_nats_password.empty())
    return std::string("clusterNatsUser: clusterNatsUser and clusterNatsPassword must be set together");
  if (cfg.cluster_nats_nkey.empty() != cfg.cluster_nats_nkey_seed.empty())
    return std::string("clusterNatsNkey: clusterNatsNkey and clusterNatsNkeySeed must be set together");
  if (cfg.cluster_node_timeout_ms < 2 * cfg.cluster_heartbeat_ms)
    return std::string("clusterNodeTimeoutMs: must be at least twice clusterHeartbeatMs");
  return std::nullopt;
}

}  // namespace

const config_key* find_config_key(std::string_view name) {
  for (const auto& k : gateway_config_keys())
    if (name == k.name) return &k;
  return nullptr;
}

std::string flag_name(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (std::isupper(static_cast<unsigned char>(c))) {
      out.push_back('-');
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string env_name(std::string_view key) {
  std::string out = "SWITCHBOARD_";
  for (char c : flag_name(key)) out.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return out;
}

std::variant<nlohmann::json, std::string> coerce_config_text(const config_key& key, const std::string& text) {
  using nlohmann::json;
  const std::string where = std::string(key.name) + ": ";
  switch (key.kind) {
    case key_kind::integer: {
      if (text.empty() ||
          !std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); }))
        return where + "expected a non-negative integer, got '" + text + "'";
      try {
        return json(std::stoull(text));
      } catch (...) {
        return where + "number out of range: '" + text + "'";
      }
    }
    case key_kind::boolean:
      if (text == "true" || text == "1" || text == "yes" || text == "on") return json(true);
      if (text == "false" || text == "0" || text == "no" || text == "off") return json(false);
      return where + "expected true or false, got '" + text + "'";
    case key_kind::string:
      return json(text);
    case key_kind::string_list: {
      if (!text.empty() && text.front() == '[') {
        auto parsed = parse_untrusted_json(text);
        if (!parsed.ok() || !parsed.value.is_array()) return where + "invalid JSON array";
        return std::move(parsed.value);
      }
      json out = json::array();
      for (auto& item : split_comma_list(text)) out.push_back(std::move(item));
      return out;
    }
  }
  return where + "unsupported";
}

namespace {

using nlohmann::json;

struct reader {
  const json& obj;
  std::string error;

  const json* get(const char* key) {
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
  }

  template <class T>
  void integer(const char* key, T& out, std::uint64_t min, std::uint64_t max) {
    auto* v = get(key);
    if (!v || !error.empty()) return;
    if (!v->is_number_integer() || (v->is_number_integer() && v->get<std::int64_t>() < 0) ||
        v->get<std::uint64_t>() < min || v->get<std::uint64_t>() > max) {
      error = std::string(key) + ": expected an integer from " + std::to_string(min) + " to " +
              std::to_string(max);
      return;
    }
    out = static_cast<T>(v->get<std::uint64_t>());
  }

  void boolean(const char* key, bool& out) {
    auto* v = get(key);
    if (!v || !error.empty()) return;
    if (!v->is_boolean()) {
      error = std::string(key) + ": expected true or false";
      return;
    }
    out = v->get<bool>();
  }

  void string(const char* key, std::string& out) {
    auto* v = get(key);
    if (!v || !error.empty()) return;
    if (!v->is_string()) {
      error = std::string(key) + ": expected a string";
      return;
    }
    out = v->get<std::string>();
  }

  void strings(const char* key, std::vector<std::string>& out) {
    auto* v = get(key);
    if (!v || !error.empty()) return;
    if (!v->is_array() || !std::all_of(v->begin(), v->end(), [](const json& e) { return e.is_string(); })) {
      error = std::string(key) + ": expected an array of strings";
      return;
    }
    out = v->get<std::vector<std::string>>();
  }
};

bool valid_bind(const std::string& bind) {
  if (bind == "loopback" || bind == "lan" || bind == "all") return true;
  unsigned char buf[16];
  return inet_pton(AF_INET, bind.c_str(), buf) == 1 || inet_pton(AF_INET6, bind.c_str(), buf) == 1;
}

bool valid_log_level(const std::string& level) {
  static const char* levels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  return std::any_of(std::begin(levels), std::end(levels), [&](const char* l) { return level == l; });
}

}  // namespace

std::variant<gateway_config, std::string> parse_gateway_config(const nlohmann::json& object) {
  if (!object.is_object()) return std::string("configuration must be a JSON object");
  for (const auto& [key, value] : object.items())
    if (!find_config_key(key)) return "unknown configuration key '" + key + "'";

  gateway_config cfg;
  reader r{object, {}};
  constexpr auto u32max = std::numeric_limits<std::uint32_t>::max();
  r.integer("port", cfg.port, 0, 65535);
  r.string("bind", cfg.bind);
  r.string("path", cfg.path);
  std::string mode = "token";
  r.string("authMode", mode);
  r.strings("authTokens", cfg.auth_tokens);
  r.string("authPassword", cfg.auth_password);
  r.strings("corsOrigins", cfg.cors_origins);
  r.strings("trustedProxies", cfg.trusted_proxies_text);
  r.integer("maxPayload", cfg.max_payload, 64, 1ull << 30);
  r.boolean("perMessageDeflate", cfg.per_message_deflate);
  r.integer("heartbeatIntervalMs", cfg.heartbeat_interval_ms, 10, u32max);
  r.integer("clientTimeoutMs", cfg.client_timeout_ms, 10, u32max);
  r.integer("routeTimeoutMs", cfg.route_timeout_ms, 1, u32max);
  r.integer("rateLimit", cfg.rate_limit, 0, 1000000);
  r.integer("presenceLimit", cfg.presence_limit, 0, 1000);
  r.integer("sendQueueLimit", cfg.send_queue_limit, 1, 1u << 24);
  r.integer("sendQueueBytes", cfg.send_queue_bytes, 1024, 1ull << 34);
  r.string("tlsCert", cfg.tls_cert);
  r.string("tlsKey", cfg.tls_key);
  r.string("adminSocket", cfg.admin_socket);
  r.string("nodeId", cfg.node_id);
  r.string("logLevel", cfg.log_level);
  r.integer("drainTimeoutMs", cfg.drain_timeout_ms, 0, u32max);
  r.integer("maxJsonDepth", cfg.max_json_depth, 2, 1024);
  r.integer("maxSessionMetadataBytes", cfg.max_session_metadata_bytes, 2, 1ull << 30);
  r.integer("maxAgentsPerClient", cfg.max_agents_per_client, 1, 1000000);
  r.integer("maxAgents", cfg.max_agents, 1, 100000000);
  r.integer("agentOfflineTtlMs", cfg.agent_offline_ttl_ms, 0, u32max);
  r.integer("authTimeoutMs", cfg.auth_timeout_ms, 10, u32max);
  r.integer("maxConnections", cfg.max_connections, 1, 100000000);
  r.integer("maxConnectionsPerIp", cfg.max_connections_per_ip, 1, 100000000);
  r.string("tunnelRelay", cfg.tunnel_relay);
  r.string("tunnel", cfg.tunnel_id);
  r.string("tunnelToken", cfg.tunnel_token);
  r.string("tunnelTokenFile", cfg.tunnel_token_file);
  r.string("tunnelTokenCommand", cfg.tunnel_token_command);
  r.string("tunnelProtocol", cfg.tunnel_protocol);
  r.integer("maxSessionMembers", cfg.max_session_members, 1, 100000);
  r.strings("clusterNats", cfg.cluster_nats);
  r.string("clusterName", cfg.cluster_name);
  r.string("clusterNatsToken", cfg.cluster_nats_token);
  r.string("clusterNatsUser", cfg.cluster_nats_user);
  r.string("clusterNatsPassword", cfg.cluster_nats_password);
  r.string("clusterNatsCreds", cfg.cluster_nats_creds);
  r.string("clusterNatsNkey", cfg.cluster_nats_nkey);
  r.string("clusterNatsNkeySeed", cfg.cluster_nats_nkey_seed);
  r.string("clusterNatsCa", cfg.cluster_nats_ca);
  r.integer("clusterHeartbeatMs", cfg.cluster_heartbeat_ms, 50, 60000);
  r.integer("clusterNodeTimeoutMs", cfg.cluster_node_timeout_ms, 100, 600000);
  r.integer("clusterKvReplicas", cfg.cluster_kv_replicas, 1, 5);
  if (!r.error.empty()) return r.error;
  if (auto e = cluster_error(cfg)) return *e;
  if (cfg.tunnel_enabled()) {
    if (cfg.tunnel_relay.rfind("http://", 0) != 0 && cfg.tunnel_relay.rfind("https://", 0) != 0)
      return std::string("tunnelRelay: expected an http:// or https:// URL");
    if (cfg.tunnel_id.empty()) return std::string("tunnel: required with tunnelRelay");
    const int sources = int(!cfg.tunnel_token.empty()) + int(!cfg.tunnel_token_file.empty()) +
                        int(!cfg.tunnel_token_command.empty());
    if (sources != 1)
      return std::string("tunnelToken: give exactly one of tunnelToken, tunnelTokenFile, tunnelTokenCommand");
  }
  if (cfg.tunnel_protocol != "auto" && cfg.tunnel_protocol != "v2" && cfg.tunnel_protocol != "v1")
    return "tunnelProtocol: expected auto, v2 or v1, got '" + cfg.tunnel_protocol + "'";

  if (!valid_bind(cfg.bind))
    return "bind: expected loopback, lan, all or an IP address, got '" + cfg.bind + "'";
  if (cfg.path.empty() || cfg.path.front() != '/') return std::string("path: must start with '/'");
  if (mode == "token")
    cfg.auth = auth_mode::token;
  else if (mode == "password")
    cfg.auth = auth_mode::password;
  else if (mode == "none")
    cfg.auth = auth_mode::none;
  else
    return "authMode: expected token, password or none, got '" + mode + "'";
  if (cfg.auth == auth_mode::password && cfg.auth_password.empty())
    return std::string("authPassword: required when authMode is password");
  for (const auto& t : cfg.auth_tokens)
    if (t.empty()) return std::string("authTokens: tokens must not be empty");
  for (const auto& o : cfg.cors_origins)
    if (!valid_origin_pattern(o)) return "corsOrigins: invalid origin pattern '" + o + "'";
  for (const auto& text : cfg.trusted_proxies_text) {
    auto range = parse_cidr(text);
    if (!range) return "trustedProxies: invalid CIDR '" + text + "'";
    cfg.trusted_proxies.push_back(*range);
  }
  if (cfg.tls_cert.empty() != cfg.tls_key.empty())
    return std::string(cfg.tls_cert.empty() ? "tlsCert" : "tlsKey") +
           ": tlsCert and tlsKey must be set together";
  if (cfg.client_timeout_ms < cfg.heartbeat_interval_ms)
    return std::string("clientTimeoutMs: must not be shorter than heartbeatIntervalMs");
  if (cfg.admin_socket.size() >= 108)
    return std::string("adminSocket: path longer than a Unix socket allows");
  if (!valid_log_level(cfg.log_level)) return "logLevel: unknown level '" + cfg.log_level + "'";
  return cfg;
}

}  // namespace sb::protocol

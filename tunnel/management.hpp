#pragma once
// The relay's control plane: the subset of the Dev Tunnels management API that the SDK's
// `TunnelManagementHttpClient` calls (TUNNEL.md "Management API", devtunnels-protocol.md §7), as a pure
// request -> response function over a persisted tunnel store. No sockets: an HTTP listener in transport/
// turns requests into `http_request` and writes back `http_response`.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tunnel/jwt.hpp"

namespace sb::tunnel {

struct http_request {
  std::string method;
  std::string path;  // without the query; percent-encoding is decoded per path segment by the handler
  std::map<std::string, std::string> query;  // decoded; a repeated name is joined with ',' (see parse_query)
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

struct http_response {
  int status = 200;
  std::map<std::string, std::string> headers;  // names as sent: "Content-Type", "X-Served-By", ...
  std::string body;
};

/// Decodes "a=1&b=x%20y&a=2" into {a: "1,2", b: "x y"} ('+' is a space, as browsers and axios encode it).
/// Joining repeats with ',' makes `tokenScopes=host&tokenScopes=connect` read like
/// `tokenScopes=host,connect`.
std::map<std::string, std::string> parse_query(std::string_view query);

/// The reason phrase of the HTTP statuses the management API uses ("Not Found"), for ProblemDetails titles.
const char* reason_phrase(int status);

/// Every tunnel lives in this one cluster; the SDK only needs the id to be stable.
inline constexpr const char* local_cluster_id = "local";
/// Header the SDK looks for on 4xx responses; without it, it blames a firewall (see TUNNEL.md).
inline constexpr const char* served_by_header = "X-Served-By";
inline constexpr const char* served_by_value = "tunnels-switchboard";

/// Access scopes (contracts `TunnelAccessScopes`) that a tunnel token may carry.
namespace scope {
inline constexpr const char* manage = "manage";
inline constexpr const char* manage_ports = "manage:ports";
inline constexpr const char* host = "host";
inline constexpr const char* inspect = "inspect";
inline constexpr const char* connect = "connect";
}  // namespace scope

struct tunnel_port {
  std::uint16_t port_number = 0;
  std::string protocol = "auto";
  std::string name;
  std::string description;
  std::vector<std::string> labels;
  std::optional<bool> is_default;
  std::string ssh_user;
  nlohmann::json options;  // the SDK's TunnelOptions, kept as given; null when absent
};

/// A `TunnelRelay` endpoint as the host registered it. The relay URIs are not stored: they follow the
/// relay's public URL, which may change across restarts.
struct tunnel_endpoint {
  std::string id;
  std::string host_id;
  std::string connection_mode = "TunnelRelay";
  std::vector<std::string> host_public_keys;  // base64 SSH public key blobs
};

struct tunnel_record {
  std::string tunnel_id;
  std::string cluster_id = local_cluster_id;
  std::string name;
  std::string description;
  std::vector<std::string> labels;
  nlohmann::json options;          // TunnelOptions as given; null when absent
  std::vector<tunnel_port> ports;  // ordered by port number
  std::vector<tunnel_endpoint> endpoints;
  std::int64_t created = 0;  // seconds since the epoch
};

/// Tunnels persisted as one JSON file (`tunnels.json`) in a data directory, rewritten whole through a
/// temporary file and a rename on every change. The HS256 signing key lives there too (`signing-key`) unless
/// a key file is named; either is generated on first start, so a restart keeps tunnels and their tokens.
/// Each call is atomic; read-modify-write sequences are serialized by the caller (management_api).
class tunnel_store {
 public:
  static constexpr const char* tunnels_file_name = "tunnels.json";
  static constexpr const char* key_file_name = "signing-key";

  /// Creates `data_dir` (mode 0700) when missing and loads what is there. Throws std::runtime_error when a
  /// file exists but cannot be read or parsed, or the directory cannot be written: a startup error of the
  /// operator's files, reported before anything is served.
  explicit tunnel_store(std::string data_dir, std::string key_file = {});

  const signing_key& key() const { return key_; }
  const std::string& data_dir() const { return data_dir_; }

  std::optional<tunnel_record> find(const std::string& tunnel_id) const;
  std::vector<tunnel_record> list() const;  // ordered by tunnel id
  std::size_t size() const;

  /// Adds or replaces the tunnel and persists. On a failed write nothing changes and the error is returned.
  std::optional<std::string> put(tunnel_record record);
  /// Removes the tunnel (absent is fine) and persists; on a failed write nothing changes.
  std::optional<std::string> erase(const std::string& tunnel_id);

 private:
  std::optional<std::string> save(const std::map<std::string, tunnel_record>& tunnels) const;

  std::string data_dir_;
  signing_key key_;
  mutable std::mutex mutex_;
  std::map<std::string, tunnel_record> tunnels_;
};

/// Seconds since the Unix epoch; injectable so tests control token expiry and `created` times.
using clock_fn = std::function<std::int64_t()>;
std::int64_t system_clock_seconds();

inline constexpr std::chrono::seconds default_token_lifetime{24 * 60 * 60};
/// Request bodies larger than this are refused with 413 before parsing.
inline constexpr std::size_t max_request_body = 1024 * 1024;

/// What the relay's WebSocket side does with a token (devtunnels-protocol.md §1 and §4: the SDK refreshes
/// its token once on 401, gives up on 403 and 404).
enum class relay_auth { ok, unauthorized, forbidden, not_found };

class management_api {
 public:
  /// `public_url` is the relay's base URL (http or https, no path; a trailing '/' is dropped). It becomes
  /// the tokens' `iss` and the base of the relay URIs (ws:// for http, wss:// for https). Throws
  /// std::invalid_argument for any other URL: a configuration error, checked once at start.
  management_api(tunnel_store& store, std::string management_token, std::string public_url, signing_key key,
                 clock_fn clock = system_clock_seconds,
                 std::chrono::seconds token_lifetime = default_token_lifetime);

  /// Never throws for any request: unknown routes, bad credentials and malformed bodies become
  /// ProblemDetails responses; a failed store write becomes 500. Thread-safe.
  http_response handle(const http_request& request);

  /// For the relay's WebSocket upgrade: `token` is the raw JWT (from `Authorization: tunnel <jwt>` or a
  /// `Sec-WebSocket-Protocol` entry) or the management token. 401 for an invalid or expired token, 403 for a
  /// token of another tunnel or without `required_scope` (`manage` implies every scope), 404 for an unknown
  /// tunnel.
  relay_auth authorize_relay(const std::string& tunnel_id, std::string_view token,
                             std::string_view required_scope) const;

  std::optional<tunnel_record> find_tunnel(const std::string& tunnel_id) const;
  /// The tunnel's `TunnelRelay` endpoint (there is at most one: a new host replaces the previous one).
  std::optional<tunnel_endpoint> current_endpoint(const std::string& tunnel_id) const;
  /// Keys the relay itself serves with (V1 clients whose SSH session it terminates, TUNNEL.md "SSH on each
  /// hop"): appended to `hostPublicKeys` of every endpoint in responses, never stored.
  void set_relay_host_public_keys(std::vector<std::string> base64_keys);

  /// A fresh token for `tunnel_id` with `scopes`, valid for the configured lifetime from now.
  std::string issue_tunnel_token(const std::string& tunnel_id, const std::vector<std::string>& scopes) const;

  /// "ws://host:port/tunnels/{id}/host" (or wss://).
  std::string host_relay_uri(const std::string& tunnel_id) const;
  std::string client_relay_uri(const std::string& tunnel_id) const;

 private:
  struct caller;

  http_response dispatch(const http_request& request);
  std::optional<http_response> authenticate(const http_request& request, caller& out) const;

  http_response get_clusters() const;
  http_response get_cluster_recommendations() const;
  http_response list_tunnels(const http_request& request, const caller& who);
  http_response get_tunnel(const http_request& request, const caller& who, const std::string& id);
  http_response put_tunnel(const http_request& request, const caller& who, const std::string& id);
  http_response delete_tunnel(const caller& who, const std::string& id);
  http_response list_ports(const caller& who, const std::string& id);
  http_response get_port(const caller& who, const std::string& id, const std::string& port);
  http_response put_port(const http_request& request, const caller& who, const std::string& id,
                         const std::string& port);
  http_response delete_port(const caller& who, const std::string& id, const std::string& port);
  http_response put_endpoint(const http_request& request, const caller& who, const std::string& id,
                             const std::string& endpoint_id);
  http_response delete_endpoint(const caller& who, const std::string& id, const std::string& endpoint_id);
  http_response post_events(const http_request& request, const caller& who, const std::string& id);

  nlohmann::json tunnel_json(const tunnel_record& t, bool include_ports,
                             const std::map<std::string, std::string>& tokens) const;
  nlohmann::json endpoint_json(const tunnel_record& t, const tunnel_endpoint& e) const;
  std::string relay_uri(const std::string& tunnel_id, const char* role) const;

  tunnel_store& store_;
  std::string management_token_;
  std::string public_url_;  // normalized, no trailing '/'
  std::string ws_base_;     // ws://host or wss://host
  signing_key key_;
  clock_fn clock_;
  std::chrono::seconds token_lifetime_;
  std::vector<std::string> relay_host_keys_;
  // Serializes handle() (read-modify-write of the store) against itself and the relay-side accessors.
  mutable std::mutex mutex_;
};

}  // namespace sb::tunnel

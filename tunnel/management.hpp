#pragma once
// The relay's control plane: the subset of the Dev Tunnels management API that the SDK's
// `TunnelManagementHttpClient` calls (TUNNEL.md "Management API", devtunnels-protocol.md §7), as a pure
// request -> response function over a persisted tunnel store. No sockets: an HTTP listener in transport/
// turns requests into `http_request` and writes back `http_response`.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tunnel/jwt.hpp"
#include "tunnel/tunnel_store.hpp"

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


/// Seconds since the Unix epoch; injectable so tests control token expiry and `created` times.
using clock_fn = std::function<std::int64_t()>;
std::int64_t system_clock_seconds();

inline constexpr std::chrono::seconds default_token_lifetime{24 * 60 * 60};
/// Request bodies larger than this are refused with 413 before parsing.
inline constexpr std::size_t max_request_body = 1024 * 1024;


/// What the management API refused or failed, for the relay's metrics (a counter per limit).
struct management_counters {
  std::atomic<std::uint64_t> json_too_deep{0};         // bodies refused for nesting (maxJsonDepth)
  std::atomic<std::uint64_t> store_write_failures{0};  // changes refused because they could not be saved
};

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
  /// ProblemDetails responses. Thread-safe. `done` runs once: at once for reads and refusals; for a change,
  /// on the store's writer thread once the change is durable, or, when it cannot be made durable, with 507
  /// (the disk is full) or 503 (any other write failure) naming the failure. So a 2xx for a change means
  /// it survives a crash, and a failed write is never acknowledged. Reads see the last durable state and
  /// never wait for the disk; changes are serialized among themselves only for their in-memory part.
  void handle(const http_request& request, std::function<void(http_response)> done);
  /// The same, waiting for the answer (tests, tools).
  http_response handle(const http_request& request);

  /// For the relay's WebSocket upgrade (reads the durable snapshot: never waits for a write): `token` is the
  /// raw JWT (from `Authorization: tunnel <jwt>` or a `Sec-WebSocket-Protocol` entry) or the management
  /// token. 401 for an invalid or expired token, 403 for a token of another tunnel or without
  /// `required_scope` (`manage` implies every scope), 404 for an unknown tunnel.
  relay_auth authorize_relay(const std::string& tunnel_id, std::string_view token,
                             std::string_view required_scope) const;

  std::optional<tunnel_record> find_tunnel(const std::string& tunnel_id) const;
  /// The tunnel's `TunnelRelay` endpoint (there is at most one: a new host replaces the previous one).
  std::optional<tunnel_endpoint> current_endpoint(const std::string& tunnel_id) const;
  /// Keys the relay itself serves with (V1 clients whose SSH session it terminates, TUNNEL.md "SSH on each
  /// hop"): appended to `hostPublicKeys` of every endpoint in responses, never stored. Call before serving.
  void set_relay_host_public_keys(std::vector<std::string> base64_keys);

  /// Bodies nested deeper are refused with 400; at most store_max_json_depth - 16 so the store can reload
  /// whatever was accepted.
  /// Call before serving, like set_relay_host_public_keys.
  void set_max_json_depth(std::size_t depth);
  const management_counters& counters() const { return *counters_; }
  /// Tunnels in the durable snapshot.
  std::size_t stored_tunnels() const;

  /// A fresh token for `tunnel_id` with `scopes`, valid for the configured lifetime from now.
  std::string issue_tunnel_token(const std::string& tunnel_id, const std::vector<std::string>& scopes) const;

  /// "ws://host:port/tunnels/{id}/host" (or wss://).
  std::string host_relay_uri(const std::string& tunnel_id) const;
  std::string client_relay_uri(const std::string& tunnel_id) const;

 private:
  struct caller;

  http_response dispatch(const http_request& request);
  /// A mutating route's change: the response waits for it (see handle).
  void await_durable(std::shared_ptr<write_ticket> ticket, const char* what);
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
  std::size_t max_json_depth_ = default_max_json_depth;
  // Shared with pending write callbacks, which run on the store's writer thread.
  std::shared_ptr<management_counters> counters_ = std::make_shared<management_counters>();
  // Serializes the read-modify-write of changing requests (find_latest .. submit); never held across a
  // disk write, and never taken by reads.
  std::mutex write_mutex_;
  std::shared_ptr<write_ticket> pending_;  // the change of the request dispatched under write_mutex_
  const char* pending_what_ = "";
};

}  // namespace sb::tunnel

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

/// The outcome of one change handed to the store's writer: settled once, when the file holding it (or a
/// later state built on it) is durable, or when that write failed. Thread-safe.
class write_ticket {
 public:
  /// nullopt: durable. Otherwise why the change was not saved (it is then not in the store either).
  using outcome = std::optional<std::string>;

  /// Runs `done` once settled: at once (on this thread) if already settled, else on the writer thread.
  void on_settled(std::function<void(const outcome&)> done);
  /// Blocks until settled.
  outcome wait();
  void settle(outcome result);

 private:
  std::mutex mutex_;
  std::condition_variable settled_cv_;
  bool settled_ = false;
  outcome result_;
  std::function<void(const outcome&)> done_;
};

/// Writes `content` to `path` durably (temporary file, fsync, rename) or says why not. Injectable so tests
/// can make the disk slow or full at a chosen moment.
using store_write_fn =
    std::function<std::optional<std::string>(const std::string& path, std::string_view content)>;

/// Tunnels persisted as one JSON file (`tunnels.json`) in a data directory, rewritten whole through a
/// temporary file, an fsync and a rename. The HS256 signing key lives there too (`signing-key`) unless a key
/// file is named; either is generated on first start, so a restart keeps tunnels and their tokens.
///
/// Readers (API reads, relay authorization) see the last durable state: an immutable snapshot, swapped under
/// a lock held only for the pointer copy, so they never wait for the disk. Changes go to a dedicated writer
/// thread; every change submitted while one write is in flight is coalesced into the next write. A change is
/// acknowledged (its ticket settles without error) only once a file holding it is durable. When a write
/// fails, that change and every change queued after it (each was built on it) fail, the file on disk is
/// left as it was (the temporary file is removed) and the store goes back to the last durable state.
class tunnel_store {
 public:
  static constexpr const char* tunnels_file_name = "tunnels.json";
  static constexpr const char* key_file_name = "signing-key";
  using tunnel_map = std::map<std::string, tunnel_record>;

  /// Creates `data_dir` (mode 0700) when missing and loads what is there. Throws std::runtime_error when a
  /// file exists but cannot be read or parsed, or the directory cannot be written: a startup error of the
  /// operator's files, reported before anything is served. `write` defaults to write_private_file.
  explicit tunnel_store(std::string data_dir, std::string key_file = {}, store_write_fn write = {});
  /// Finishes the writes already submitted, then stops the writer.
  ~tunnel_store();
  tunnel_store(const tunnel_store&) = delete;
  tunnel_store& operator=(const tunnel_store&) = delete;

  const signing_key& key() const { return key_; }
  const std::string& data_dir() const { return data_dir_; }

  /// The last durable state; never waits for a write.
  std::shared_ptr<const tunnel_map> snapshot() const;
  std::optional<tunnel_record> find(const std::string& tunnel_id) const;
  std::vector<tunnel_record> list() const;  // ordered by tunnel id
  std::size_t size() const;

  /// The state every next change builds on: durable plus submitted changes. For read-modify-write, which
  /// the caller serializes (management_api holds one writers' lock across find_latest and submit).
  std::optional<tunnel_record> find_latest(const std::string& tunnel_id) const;

  /// Adds or replaces the tunnel, to be persisted by the writer thread.
  std::shared_ptr<write_ticket> submit_put(tunnel_record record);
  /// Removes the tunnel (absent is fine), to be persisted by the writer thread.
  std::shared_ptr<write_ticket> submit_erase(const std::string& tunnel_id);

  /// submit_* and wait: nullopt once durable; on a failed write nothing changed and the error is returned.
  std::optional<std::string> put(tunnel_record record);
  std::optional<std::string> erase(const std::string& tunnel_id);

  /// Writes that failed since the start (each failed write may refuse several changes).
  std::uint64_t write_failures() const { return write_failures_.load(); }

 private:
  std::shared_ptr<write_ticket> submit(std::shared_ptr<const tunnel_map> next);
  void writer_loop();
  std::string serialize(const tunnel_map& tunnels) const;

  std::string data_dir_;
  std::string path_;
  signing_key key_;
  store_write_fn write_;

  mutable std::mutex snapshot_mutex_;  // only for copying or swapping durable_
  std::shared_ptr<const tunnel_map> durable_;

  mutable std::mutex queue_mutex_;  // the writer's queue
  std::condition_variable queue_cv_;
  std::shared_ptr<const tunnel_map> latest_;
  std::vector<std::shared_ptr<write_ticket>> queued_;  // changes in latest_ not yet handed to a write
  bool stopping_ = false;
  std::atomic<std::uint64_t> write_failures_{0};
  std::thread writer_;
};

/// Seconds since the Unix epoch; injectable so tests control token expiry and `created` times.
using clock_fn = std::function<std::int64_t()>;
std::int64_t system_clock_seconds();

inline constexpr std::chrono::seconds default_token_lifetime{24 * 60 * 60};
/// Request bodies larger than this are refused with 413 before parsing.
inline constexpr std::size_t max_request_body = 1024 * 1024;

/// Nesting allowed in a management request body (`--max-json-depth`); deeper bodies are answered 400.
inline constexpr std::size_t default_max_json_depth = 64;
/// Nesting allowed in tunnels.json: the deepest accepted body plus the store's own wrapping around it.
inline constexpr std::size_t store_max_json_depth = default_max_json_depth + 16;

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

#pragma once
// The relay's tunnels on disk: the records the management API serves, and the store that keeps them durable
// in a data directory (see tunnel_store below). Plain files and one writer thread; no sockets.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tunnel/jwt.hpp"

namespace sb::tunnel {

/// Every tunnel lives in this one cluster; the SDK only needs the id to be stable.
inline constexpr const char* local_cluster_id = "local";

/// Nesting allowed in a management request body (`--max-json-depth`); deeper bodies are answered 400.
inline constexpr std::size_t default_max_json_depth = 64;
/// Nesting allowed in tunnels.json: the deepest accepted body plus the store's own wrapping around it.
inline constexpr std::size_t store_max_json_depth = default_max_json_depth + 16;

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

}  // namespace sb::tunnel

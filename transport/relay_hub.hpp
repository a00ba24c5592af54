#pragma once
// The relay's data plane: which host serves each tunnel, which ports it forwards, and the SSH sessions of
// hosts and clients joined channel to channel (devtunnels-protocol.md §2-§3, TUNNEL.md "SSH on each hop").
//
//   V2 host  <-SSH(none kex)->  relay  <-SSH(none or ECDH)->  V2 client     forwarded-tcpip channels spliced
//   V1 host  <-SSH(static none)-> relay <-raw bytes-> V1 client             client-ssh-session-stream pipe
//   V2 host  <-SSH(none kex)->  relay  <-SSH(ECDH, relay key)-> V1 client   relay terminates the client
//   V1 host  <-SSH(static none)-> relay <-SSH(relay key)-> client          relay terminates the client (it came
//     ^-- client-ssh-session-stream: the relay's own session as client    before the host, or speaks V2) and
//         of the host, where the host tells its ports                     learns ports in a session of its own
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "transport/ssh_link.hpp"
#include "tunnel/relay_messages.hpp"

namespace sb::transport {

/// Time bounds on every relay WebSocket after its upgrade (`switchboard relay --ssh-handshake-timeout-ms`,
/// `--idle-timeout-ms`). A token holder could otherwise park connections that never speak SSH, each holding a
/// socket and memory, for ever. Zero disables a bound.
struct relay_limits {
  /// The SSH session must be ready (version exchange, key exchange) within this; for a V1 client spliced
  /// end to end to a V1 host, whose session the relay cannot see, its first bytes must arrive within it.
  std::chrono::milliseconds ssh_handshake_timeout{10'000};
  /// A client connection that moves no byte either way for this long is closed; the client reconnects as
  /// after any lost connection. Hosts are exempt: one per tunnel (a new one replaces the previous), and
  /// waiting idle for clients is their job.
  std::chrono::milliseconds idle_timeout{300'000};
};

/// What the hub accepted and what the limits closed, since the start (the relay's /metrics).
struct relay_counters {
  std::atomic<std::uint64_t> hosts_accepted{0};
  std::atomic<std::uint64_t> clients_accepted{0};
  std::atomic<std::uint64_t> ssh_handshake_timeouts{0};  // --ssh-handshake-timeout-ms
  std::atomic<std::uint64_t> idle_timeouts{0};           // --idle-timeout-ms
};

/// What is connected now.
struct relay_load {
  std::size_t tunnels = 0;  // tunnels with a host or a client connected
  std::size_t hosts = 0;
  std::size_t clients = 0;
  std::uint64_t hosts_replaced = 0;  // hosts disconnected by a newer host of their tunnel, since the start
};

class relay_hub : public std::enable_shared_from_this<relay_hub> {
 public:
  explicit relay_hub(std::shared_ptr<const tunnel::ssh::ecdsa_key> relay_key, relay_limits limits = {});
  ~relay_hub();

  /// A host connected; a previous host of the same tunnel is disconnected with reason 12
  /// (tooManyConnections).
  void add_host(const std::string& tunnel_id, tunnel::protocol_version version,
                std::shared_ptr<byte_stream> stream);
  void add_client(const std::string& tunnel_id, tunnel::protocol_version version,
                  std::shared_ptr<byte_stream> stream);
  /// The protocol of the tunnel's connected host, if any (V1 clients of a V1 host are piped end to end).
  std::optional<tunnel::protocol_version> host_protocol(const std::string& tunnel_id) const;
  /// Drops every connection (relay shutdown); peers see connectionLost and reconnect.
  void close_all();
  relay_load load() const;
  const relay_counters& counters() const { return *counters_; }

  struct host_conn;
  struct client_conn;
  struct v1_port_session;

 private:
  friend struct host_conn;
  friend struct client_conn;
  friend struct v1_port_session;
  struct tunnel_slot;

  void port_added(const std::string& tunnel_id, const host_conn* host, std::uint32_t port,
                  const std::string& address);
  void port_removed(const std::string& tunnel_id, const host_conn* host, std::uint32_t port);
  void host_gone(const std::string& tunnel_id, const host_conn* host);
  void client_gone(const std::string& tunnel_id, const client_conn* client);
  std::shared_ptr<host_conn> host_of(const std::string& tunnel_id) const;
  std::set<std::uint32_t> ports_of(const std::string& tunnel_id) const;
  bool has_clients(const std::string& tunnel_id) const;

  std::shared_ptr<const tunnel::ssh::ecdsa_key> key_;
  relay_limits limits_;
  std::shared_ptr<relay_counters> counters_ = std::make_shared<relay_counters>();  // outlives guarded streams
  mutable std::mutex mtx_;
  std::map<std::string, std::shared_ptr<tunnel_slot>> tunnels_;
};

}  // namespace sb::transport

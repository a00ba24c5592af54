#pragma once
// The relay's data plane: the SSH sessions of hosts and clients, joined channel to channel.
//
//   V2 host  <-SSH(none kex)->  relay  <-SSH(none or ECDH)->  V2 client     forwarded-tcpip channels spliced
//   V1 host  <-SSH(static none)-> relay <-raw bytes-> V1 client             client-ssh-session-stream pipe
//   V2 host  <-SSH(none kex)->  relay  <-SSH(ECDH, relay key)-> V1 client   relay terminates the client
//   V1 host  <-SSH(static none)-> relay <-SSH(relay key)-> client          relay terminates the client (it came
//     ^-- client-ssh-session-stream: the relay's own session as client    before the host, or speaks V2) and
//         of the host, where the host tells its ports                     learns ports in a session of its own
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "tunnel/io/relay_control.hpp"
#include "tunnel/io/ssh_link.hpp"
#include "tunnel/relay_messages.hpp"

namespace sb::tunnel::io {

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

/// The relay's numbers since the start (its /metrics and `admin stats`): written by the hub, the relay
/// server and the control plane, read anywhere.
struct relay_counters {
  std::atomic<std::uint64_t> hosts_accepted{0};
  std::atomic<std::uint64_t> clients_accepted{0};
  std::atomic<std::uint64_t> hosts_open{0};    // gauge
  std::atomic<std::uint64_t> clients_open{0};  // gauge
  std::atomic<std::uint64_t> tunnels_active{0};  // gauge: tunnels with a host or a client (control plane)
  std::atomic<std::uint64_t> hosts_replaced{0};  // hosts disconnected by a newer host of their tunnel
  std::atomic<std::uint64_t> ssh_handshakes{0};  // relay SSH sessions that became ready
  std::atomic<std::uint64_t> bytes_in{0};        // relay WebSocket payload bytes received
  std::atomic<std::uint64_t> bytes_out{0};       // and sent
  std::atomic<std::uint64_t> unauthorized{0};    // relay WebSockets refused 401 (no or a bad token)
  std::atomic<std::uint64_t> forbidden{0};       // 403 (a token without the scope)
  std::atomic<std::uint64_t> not_found{0};       // 404 (no such tunnel)
  std::atomic<std::uint64_t> ssh_handshake_timeouts{0};  // --ssh-handshake-timeout-ms
  std::atomic<std::uint64_t> idle_timeouts{0};           // --idle-timeout-ms
};

/// The relay's data plane: each relay WebSocket's SSH session on its strand, spliced channel to channel
/// (devtunnels-protocol.md §2-§3, TUNNEL.md "SSH on each hop"). Which host and which clients a tunnel has is
/// the control plane's (relay_control); the hub reports to it and does what it answers.
class relay_hub : public std::enable_shared_from_this<relay_hub> {
 public:
  relay_hub(std::shared_ptr<const tunnel::ssh::ecdsa_key> relay_key, relay_limits limits,
            std::shared_ptr<relay_control> control, std::shared_ptr<relay_counters> counters);
  ~relay_hub();

  void add_host(const std::string& tunnel_id, tunnel::protocol_version version,
                std::shared_ptr<byte_stream> stream);
  void add_client(const std::string& tunnel_id, tunnel::protocol_version version,
                  std::shared_ptr<byte_stream> stream);
  /// The protocol of the tunnel's connected host, if any (V1 clients of a V1 host are piped end to end);
  /// `done` runs once, on any thread.
  void host_version(const std::string& tunnel_id,
                    std::function<void(std::optional<tunnel::protocol_version>)> done) const;
  relay_counters& counters() const { return *counters_; }

  struct host_conn;
  struct client_conn;
  struct v1_port_session;

 private:
  std::shared_ptr<const tunnel::ssh::ecdsa_key> key_;
  relay_limits limits_;
  std::shared_ptr<relay_control> control_;
  std::shared_ptr<relay_counters> counters_;  // outlives the guarded streams that count into it
  std::atomic<std::uint64_t> next_id_{0};
};

}  // namespace sb::tunnel::io

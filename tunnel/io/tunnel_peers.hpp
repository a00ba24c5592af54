#pragma once
// One relay connection of a tunnel host or a tunnel client: WebSocket to the relay, the SSH session the
// negotiated protocol version calls for, and the ports. The retry policy and status live above, in the actor
// that owns the connection; this layer reports what happened as typed outcomes.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tunnel/io/ssh_link.hpp"
#include "tunnel/relay_messages.hpp"

namespace sb::tunnel::io {

enum class protocol_choice { automatic, v2, v1 };

/// "auto", "v2" or "v1" (the CLI's --protocol).
inline std::optional<protocol_choice> parse_protocol_choice(const std::string& text) {
  if (text == "auto") return protocol_choice::automatic;
  if (text == "v2") return protocol_choice::v2;
  if (text == "v1") return protocol_choice::v1;
  return std::nullopt;
}

/// A relay that sends nothing for this long is taken for dead (stopped, or a network that swallows packets)
/// and the connection is dropped so the owner reconnects. The peer pings a third of it apart (an SSH
/// keepalive the relay must answer), so a live but idle relay always speaks in time. Zero: no watchdog.
inline constexpr std::chrono::milliseconds default_relay_idle_timeout{15000};

/// Why a relay connection ended or could not start.
struct relay_outcome {
  int http_status = 0;           // the relay refused the WebSocket upgrade with this status
  std::uint32_t ssh_reason = 0;  // SSH disconnect reason, when the session ended
  bool network = false;          // a network failure (refused, reset, timeout)
  bool was_connected = false;    // the session had reached ready
  std::string message;
};

struct relay_peer_callbacks {
  std::function<void(tunnel::protocol_version)> connected;
  std::function<void(const relay_outcome&)> ended;  // exactly once
  std::function<void(std::uint32_t port, bool added)> port_changed;
  /// A forwarded stream began (host: a client reached a local port) and ended, with its byte counts.
  std::function<void(std::uint64_t stream, std::uint16_t port)> stream_opened;
  std::function<void(std::uint64_t stream, std::uint64_t bytes_in, std::uint64_t bytes_out)> stream_closed;
};

struct host_options {
  std::string relay_uri;  // the endpoint's hostRelayUri
  std::string token;      // host-scoped access token
  protocol_choice protocol = protocol_choice::automatic;
  std::set<std::uint16_t> ports;
  std::shared_ptr<const tunnel::ssh::ecdsa_key> host_key;  // published in hostPublicKeys; serves V1 clients
  std::string ca_file;  // PEM CAs for a wss relay with a private certificate (--ca-file)
  std::chrono::milliseconds idle_timeout = default_relay_idle_timeout;
};

/// The host's side: forwards its ports to the relay and connects each forwarded stream to 127.0.0.1:port.
class host_peer : public std::enable_shared_from_this<host_peer> {
 public:
  host_peer(boost::asio::io_context& ioc, host_options options, relay_peer_callbacks callbacks);
  ~host_peer();
  void start();
  void stop();
  void add_port(std::uint16_t port);
  void remove_port(std::uint16_t port);
  std::set<std::uint16_t> ports() const;
  /// Live numbers for the admin socket: clients (streams) open, bytes each way.
  struct stats {
    std::uint64_t streams_open = 0, streams_total = 0, bytes_in = 0, bytes_out = 0;
  };
  stats current_stats() const;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

struct client_options {
  std::string relay_uri;  // the endpoint's clientRelayUri
  std::string token;      // connect-scoped access token
  protocol_choice protocol = protocol_choice::automatic;
  std::vector<std::string> host_public_keys;  // base64 blobs a V1 session's host key must match
  std::map<std::uint16_t, std::uint16_t>
      port_map;  // remote -> local; unmapped ports listen on the same number
  std::string ca_file;  // PEM CAs for a wss relay with a private certificate (--ca-file)
  std::chrono::milliseconds idle_timeout = default_relay_idle_timeout;
};

/// The client's side: listens on 127.0.0.1 for each port the relay announces and forwards each connection.
class client_peer : public std::enable_shared_from_this<client_peer> {
 public:
  client_peer(boost::asio::io_context& ioc, client_options options, relay_peer_callbacks callbacks);
  ~client_peer();
  void start();
  void stop();
  /// remote port -> local port currently listening.
  std::map<std::uint16_t, std::uint16_t> listening() const;
  /// Asks the relay to announce the ports again (the protocol's RefreshPorts).
  void refresh_ports();

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace sb::tunnel::io

#pragma once
// What the tunnel host's actors are configured with, and the endpoint registration's result: plain values,
// so the actors' vocabulary (actors/type_ids.hpp) can name them without pulling in the actors.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "transport/metrics.hpp"
#include "tunnel/io/tunnel_peers.hpp"
#include "tunnel/retry.hpp"

namespace sb::actors {

/// Where the host's relay WebSocket is: registering the endpoint through the management API yields it.
struct relay_endpoint_result {
  std::string host_relay_uri;
  int http_status = 0;  // a management API refusal
  std::string error;
};

struct tunnel_host_config {
  std::string tunnel_id;
  std::string token;
  tunnel::io::protocol_choice protocol = tunnel::io::protocol_choice::automatic;
  std::set<std::uint16_t> ports;
  tunnel::backoff_policy backoff;
  std::shared_ptr<const tunnel::ssh::ecdsa_key> host_key;
  std::string ca_file;  // PEM CAs for a wss relay with a private certificate, passed to the relay WebSocket
  boost::asio::io_context* ioc = nullptr;
  /// Registers the endpoint with `token` and returns the relay URI. Blocking: it runs on a thread its
  /// connection actor owns and joins when it stops, so it must return in bounded time (an HTTP timeout).
  std::function<relay_endpoint_result(const std::string& token)> resolve;
  /// A fresh token (re-read a file, run a command), or nullopt; may throw, with the reason as its message.
  /// Blocking and bounded, like `resolve`, on a thread the supervisor owns. Unset: no refresh, a 401 is
  /// final.
  std::function<std::optional<std::string>()> refresh_token;
  /// Where the blocking calls above run. Unset: on a thread the calling actor owns and joins when it stops.
  /// Tests on CAF's deterministic coordinator run them inline, so no thread races the coordinator.
  std::function<void(std::function<void()>)> run_blocking;
  /// The relay connection's liveness deadline (see tunnel::io::default_relay_idle_timeout).
  std::chrono::milliseconds relay_idle_timeout = tunnel::io::default_relay_idle_timeout;
  /// Told every status change, with the error that caused a disconnect (may be empty).
  std::function<void(tunnel::connection_status, const std::string&)> on_status;
  /// Told once when the supervisor stops retrying (a fatal error or the attempt limit).
  std::function<void(const std::string& error)> on_gave_up;
  std::shared_ptr<transport::metrics_registry> metrics;  // optional
};

}  // namespace sb::actors

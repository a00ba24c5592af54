#pragma once
// The seam between sockets and state: transport owns connections and hands the layer above a small sink
// (send a shared frame, close with a code); the layer above receives decoded messages through events.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "protocol/message.hpp"

namespace sb::transport {

struct peer_info {
  std::string address;  // the client: the socket peer, or X-Forwarded-For from a trusted proxy
  std::uint16_t port = 0;
  std::string socket_address;  // the TCP peer itself
  std::optional<std::string> forwarded_proto;
  std::optional<std::string> forwarded_host;
  std::optional<std::string> origin;
  std::optional<std::string> user_agent;
  bool tls = false;
  bool deflate = false;
};

/// Thread-safe handle to one client connection. Sending is bounded: a consumer that falls behind is closed
/// with 4008 by the transport itself.
class connection_sink {
 public:
  virtual ~connection_sink() = default;
  virtual void send(protocol::frame data) = 0;
  /// Flushes what is queued, then closes with `code`.
  virtual void close(std::uint16_t code, std::string reason) = 0;
};

using sink_ptr = std::shared_ptr<connection_sink>;

/// Called on the connection's strand, in order; `on_closed` exactly once, last.
class connection_events {
 public:
  virtual ~connection_events() = default;
  virtual void on_message(protocol::decode_result msg, std::chrono::steady_clock::time_point received) = 0;
  virtual void on_closed(std::uint16_t code) = 0;
};

class server_hooks {
 public:
  virtual ~server_hooks() = default;
  /// A WebSocket upgrade completed; returns who receives this connection's events.
  virtual std::shared_ptr<connection_events> on_open(sink_ptr sink, const peer_info& peer) = 0;
};

}  // namespace sb::transport

#pragma once
// Beast WebSocket + HTTP on one port (PROTOCOL.md "Transport"): upgrades on the configured path, /healthz,
// /readyz and /metrics, origin allow-list, trusted-proxy headers, optional TLS. Each connection runs on its
// own strand; the server holds no gateway state.
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "protocol/cidr.hpp"
#include "transport/connection.hpp"
#include "transport/metrics.hpp"

namespace sb::transport {

struct server_options {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;
  std::string path = "/ws";
  std::vector<std::string> cors_origins;
  std::vector<protocol::cidr> trusted_proxies;
  std::size_t max_payload = 1048576;
  bool per_message_deflate = true;
  std::uint32_t heartbeat_interval_ms = 30000;
  std::uint32_t client_timeout_ms = 60000;
  std::size_t send_queue_limit = 1024;
  std::size_t send_queue_bytes = 8 * 1024 * 1024;
  std::size_t max_json_depth = 64;
  std::size_t max_connections = 100000;
  std::size_t max_connections_per_ip = 1000;
  std::shared_ptr<boost::asio::ssl::context> tls;  // set: every connection is TLS
};

/// Readiness shared between the server and whoever drains it.
struct server_state {
  std::atomic<bool> draining{false};
};

class ws_server {
 public:
  ws_server(boost::asio::io_context& ioc, server_options options, server_hooks& hooks,
            metrics_registry& metrics, std::shared_ptr<server_state> state);
  ~ws_server();

  /// Binds and starts accepting; throws std::runtime_error when the address cannot be bound.
  void start();
  /// Closes the listening socket. Call once the io_context no longer runs: the acceptor is not thread-safe.
  void stop();
  std::uint16_t port() const;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace sb::transport

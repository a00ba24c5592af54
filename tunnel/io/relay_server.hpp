#pragma once
// The relay's one port: the management API over HTTP(S), and the relay WebSockets at
// /tunnels/{id}/host and /tunnels/{id}/client (TUNNEL.md). Authorization and subprotocol choice happen here;
// the sessions behind the upgrade belong to the relay hub.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "tunnel/io/relay_hub.hpp"
#include "tunnel/management.hpp"

namespace sb::tunnel::io {

struct relay_server_options {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;
  std::shared_ptr<boost::asio::ssl::context> tls;
};

class relay_server {
 public:
  relay_server(boost::asio::io_context& ioc, relay_server_options options);
  ~relay_server();
  /// Binds (so the public URL can name a port picked by the OS); throws std::runtime_error on failure.
  std::uint16_t bind();
  /// Starts accepting: management requests go to `api`, relay WebSockets to `hub`. Both must outlive the
  /// server.
  void serve(tunnel::management_api& api, std::shared_ptr<relay_hub> hub);
  /// Closes the listening socket; call once the io_context no longer runs.
  void stop();
  std::uint16_t port() const;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace sb::tunnel::io

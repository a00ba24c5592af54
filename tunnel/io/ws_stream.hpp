#pragma once
// SSH over WebSocket, as Dev Tunnels carries it: every binary frame is a piece of the SSH byte stream.
// Client side: connect with subprotocols and `Authorization: tunnel <token>`, learning the HTTP status on
// refusal (401/403/404 decide the retry rules). Server side: wrap an accepted WebSocket.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tunnel/io/ssh_link.hpp"

namespace sb::tunnel::io {

struct websocket_connect_result {
  boost::system::error_code ec;
  int http_status = 0;   // the refusal's status when the upgrade was declined
  std::string protocol;  // the subprotocol the server chose
  std::shared_ptr<byte_stream> stream;
  std::string error;  // human-readable reason when stream is null
};

struct websocket_connect_options {
  std::string url;
  std::vector<std::string> subprotocols;
  std::string authorization;  // full header value, e.g. "tunnel eyJ..."
  /// For wss: when null, a context verifying against the system store plus `ca_file` (the same trust as the
  /// management calls, see make_client_tls_context). The certificate must name the URL's host, a DNS name
  /// or an IP literal.
  std::shared_ptr<boost::asio::ssl::context> tls;
  std::string ca_file;  // PEM CAs trusted besides the system store (a private CA); empty: none
  std::chrono::milliseconds timeout = std::chrono::seconds(15);
};

void connect_websocket(boost::asio::io_context& ioc, websocket_connect_options options,
                       std::function<void(websocket_connect_result)> done);

std::shared_ptr<byte_stream> make_ws_stream(boost::beast::websocket::stream<boost::beast::tcp_stream> ws);
std::shared_ptr<byte_stream> make_ws_stream(
    boost::beast::websocket::stream<boost::beast::ssl_stream<boost::beast::tcp_stream>> ws);

}  // namespace sb::tunnel::io

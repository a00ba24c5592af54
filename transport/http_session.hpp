#pragma once
// What every HTTP connection of ours does the same way, the gateway's (ws_server) and the relay's
// (relay_server): the TLS handshake before the first request, writing a response then reading the next one
// or half-closing, and the buffer and parser of the request being read. The derived session reads and
// answers (do_read); this base is its CRTP parent and calls it.
#include <spdlog/spdlog.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <type_traits>

namespace sb::transport {

template <class Derived, class Stream>
class http_session_base : public std::enable_shared_from_this<Derived> {
 public:
  /// Over TLS the handshake comes first, bounded by `handshake_timeout`; then the first request is read.
  void run(std::chrono::steady_clock::duration handshake_timeout) {
    if constexpr (!std::is_same_v<Stream, boost::beast::tcp_stream>) {
      boost::beast::get_lowest_layer(stream_).expires_after(handshake_timeout);
      stream_.async_handshake(boost::asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](boost::beast::error_code ec) {
                                if (ec) return spdlog::debug("TLS handshake failed: {}", ec.message());
                                self->do_read();
                              });
    } else {
      boost::asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->do_read(); });
    }
  }

 protected:
  explicit http_session_base(Stream&& stream) : stream_(std::move(stream)) {}

  /// Writes `res`; then reads the next request, or half-closes when the response ends the connection.
  void write(boost::beast::http::response<boost::beast::http::string_body> res) {
    auto sp = std::make_shared<boost::beast::http::response<boost::beast::http::string_body>>(std::move(res));
    const bool keep = sp->keep_alive();
    boost::beast::http::async_write(
        stream_, *sp, [self = this->shared_from_this(), sp, keep](boost::beast::error_code ec, std::size_t) {
          if (ec || !keep) return self->shutdown();
          self->do_read();
        });
  }

  void shutdown() {
    boost::beast::error_code ec;
    boost::beast::get_lowest_layer(stream_).socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
  }

  Stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
};

}  // namespace sb::transport

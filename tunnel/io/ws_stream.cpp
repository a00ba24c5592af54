#include "tunnel/io/ws_stream.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>

#include "tunnel/io/http_client.hpp"
#include "tunnel/io/url.hpp"

namespace sb::tunnel::io {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using tunnel::ssh::bytes;

namespace {

/// A WebSocket whose binary messages are the pieces of one byte stream.
template <class Stream>
class ws_byte_stream : public byte_stream, public std::enable_shared_from_this<ws_byte_stream<Stream>> {
 public:
  explicit ws_byte_stream(websocket::stream<Stream> ws) : ws_(std::move(ws)) {
    ws_.binary(true);
    ws_.read_message_max(4 * 1024 * 1024);
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(10);
    t.idle_timeout = websocket::stream_base::none();
    t.keep_alive_pings = false;
    ws_.set_option(t);
  }
  net::any_io_executor executor() override { return ws_.get_executor(); }

  void read(std::function<void(boost::system::error_code, bytes)> done) override {
    ws_.async_read(buffer_,
                   [self = this->shared_from_this(), done](boost::system::error_code ec, std::size_t) {
                     bytes data(self->buffer_.size());
                     net::buffer_copy(net::buffer(data), self->buffer_.data());
                     self->buffer_.consume(self->buffer_.size());
                     done(ec, std::move(data));
                   });
  }

  void write(bytes data, std::function<void(boost::system::error_code)> done) override {
    // The frame owns its bytes until the write completes (TUNNEL.md: aliasing reused buffers corrupts
    // streams).
    auto buf = std::make_shared<bytes>(std::move(data));
    ws_.async_write(net::buffer(*buf), [self = this->shared_from_this(), buf, done](
                                           boost::system::error_code ec, std::size_t) { done(ec); });
  }

  void close() override {
    if (closing_) return;
    closing_ = true;
    ws_.async_close(websocket::close_code::normal,
                    [self = this->shared_from_this()](boost::system::error_code) {
                      beast::error_code ec;
                      beast::get_lowest_layer(self->ws_).socket().close(ec);
                    });
  }

 private:
  websocket::stream<Stream> ws_;
  beast::flat_buffer buffer_;
  bool closing_ = false;
};

/// One connection attempt: resolve, connect, TLS, upgrade. Owns everything until it hands the stream over.
template <class Stream>
class connector : public std::enable_shared_from_this<connector<Stream>> {
 public:
  connector(net::io_context& ioc, websocket::stream<Stream> ws, url_parts url,
            websocket_connect_options options, std::function<void(websocket_connect_result)> done)
      : resolver_(net::make_strand(ioc)),
        ws_(std::move(ws)),
        url_(std::move(url)),
        options_(std::move(options)),
        done_(std::move(done)) {}

  void run() {
    resolver_.async_resolve(
        url_.host, std::to_string(url_.port),
        [self = this->shared_from_this()](boost::system::error_code ec, tcp::resolver::results_type r) {
          if (ec) return self->fail(ec, "cannot resolve " + self->url_.host);
          self->on_resolved(r);
        });
  }

 private:
  void on_resolved(const tcp::resolver::results_type& results) {
    beast::get_lowest_layer(ws_).expires_after(options_.timeout);
    beast::get_lowest_layer(ws_).async_connect(
        results, [self = this->shared_from_this()](boost::system::error_code ec, const tcp::endpoint&) {
          if (ec) return self->fail(ec, "cannot connect to " + self->url_.host_header());
          boost::system::error_code nodelay_ec;
          beast::get_lowest_layer(self->ws_).socket().set_option(tcp::no_delay(true), nodelay_ec);
          self->on_connected();
        });
  }

  void on_connected() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      // The certificate must name the host we meant, not just chain to a trusted CA.
      if (!expect_peer_name(ws_.next_layer().native_handle(), url_.host))
        return fail(make_error_code(boost::system::errc::invalid_argument),
                    "cannot verify TLS peer name '" + url_.host + "'");
      ws_.next_layer().async_handshake(
          net::ssl::stream_base::client, [self = this->shared_from_this()](boost::system::error_code ec) {
            if (!ec) return self->upgrade();
            // "certificate verify failed" alone does not say which check failed.
            const auto why = verify_failure(self->ws_.next_layer().native_handle());
            self->fail(ec, "TLS handshake failed", why.empty() ? "" : " (" + why + ")");
          });
    } else {
      upgrade();
    }
  }

  void upgrade() {
    std::string protocols;
    for (const auto& p : options_.subprotocols) protocols += (protocols.empty() ? "" : ", ") + p;
    auto auth = options_.authorization;
    ws_.set_option(websocket::stream_base::decorator([protocols, auth](websocket::request_type& req) {
      if (!protocols.empty()) req.set(http::field::sec_websocket_protocol, protocols);
      if (!auth.empty()) req.set(http::field::authorization, auth);
      req.set(http::field::user_agent, "switchboard");
    }));
    ws_.async_handshake(
        res_, url_.host_header(), url_.target,
        [self = this->shared_from_this()](boost::system::error_code ec) { self->on_upgraded(ec); });
  }

  void on_upgraded(boost::system::error_code ec) {
    beast::get_lowest_layer(ws_).expires_never();
    websocket_connect_result r;
    r.ec = ec;
    if (ec) {
      r.http_status = ec == websocket::error::upgrade_declined ? res_.result_int() : 0;
      r.error = r.http_status ? "relay refused the connection: HTTP " + std::to_string(r.http_status)
                              : "WebSocket handshake failed: " + ec.message();
      return done_(std::move(r));
    }
    r.protocol = std::string(res_[http::field::sec_websocket_protocol]);
    r.stream = std::make_shared<ws_byte_stream<Stream>>(std::move(ws_));
    done_(std::move(r));
  }

  void fail(boost::system::error_code ec, const std::string& what, const std::string& detail = "") {
    websocket_connect_result r;
    r.ec = ec;
    r.error = what + ": " + ec.message() + detail;
    done_(std::move(r));
  }

  tcp::resolver resolver_;
  websocket::stream<Stream> ws_;
  url_parts url_;
  websocket_connect_options options_;
  std::function<void(websocket_connect_result)> done_;
  websocket::response_type res_;
};

}  // namespace

void connect_websocket(net::io_context& ioc, websocket_connect_options options,
                       std::function<void(websocket_connect_result)> done) {
  auto url = parse_url(options.url);
  if (!url || (url->scheme != "ws" && url->scheme != "wss")) {
    websocket_connect_result r;
    r.ec = make_error_code(boost::system::errc::invalid_argument);
    r.error = "not a ws:// or wss:// URL: " + options.url;
    return net::post(ioc, [done, r] { done(r); });
  }
  if (url->tls()) {
    auto ctx = options.tls;
    if (!ctx) {
      auto made = make_client_tls_context(options.ca_file);
      if (auto* error = std::get_if<std::string>(&made)) {
        websocket_connect_result r;
        r.ec = make_error_code(boost::system::errc::invalid_argument);
        r.error = *error;
        return net::post(ioc, [done, r] { done(r); });
      }
      ctx = std::get<0>(std::move(made));
    }
    websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(net::make_strand(ioc), *ctx);
    // Keep the context alive with the attempt.
    auto wrapped = [ctx, done](websocket_connect_result r) { done(std::move(r)); };
    std::make_shared<connector<beast::ssl_stream<beast::tcp_stream>>>(ioc, std::move(ws), *url,
                                                                      std::move(options), wrapped)
        ->run();
  } else {
    websocket::stream<beast::tcp_stream> ws(net::make_strand(ioc));
    std::make_shared<connector<beast::tcp_stream>>(ioc, std::move(ws), *url, std::move(options),
                                                   std::move(done))
        ->run();
  }
}

std::shared_ptr<byte_stream> make_ws_stream(websocket::stream<beast::tcp_stream> ws) {
  return std::make_shared<ws_byte_stream<beast::tcp_stream>>(std::move(ws));
}

std::shared_ptr<byte_stream> make_ws_stream(websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws) {
  return std::make_shared<ws_byte_stream<beast::ssl_stream<beast::tcp_stream>>>(std::move(ws));
}

}  // namespace sb::tunnel::io

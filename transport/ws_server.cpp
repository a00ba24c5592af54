#include "transport/ws_server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/zlib/error.hpp>
#include <boost/range/iterator_range.hpp>
#include <chrono>
#include <deque>
#include <sstream>
#include <stdexcept>

#include "protocol/forwarded.hpp"
#include "protocol/origin.hpp"
#include "protocol/websocket_rules.hpp"
#include "transport/connection_limits.hpp"
#include "transport/http_session.hpp"
#include "transport/listen.hpp"

namespace sb::transport {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

namespace {

constexpr auto http_read_timeout = std::chrono::seconds(30);
constexpr auto ws_handshake_timeout = std::chrono::seconds(10);
constexpr auto force_close_after = std::chrono::seconds(5);
constexpr std::size_t http_header_limit = 16 * 1024;
constexpr std::size_t http_body_limit = 64 * 1024;
constexpr std::size_t read_chunk = 64 * 1024;
constexpr const char* server_name = "switchboard";

std::string target_path(beast::string_view target) {
  auto q = target.find('?');
  return std::string(target.substr(0, q));
}

template <class Key>
std::optional<std::string> header(const http::request<http::string_body>& req, Key name) {
  auto it = req.find(name);
  if (it == req.end()) return std::nullopt;
  return std::string(it->value());
}

}  // namespace

struct ws_server::impl : std::enable_shared_from_this<ws_server::impl> {
  net::io_context& ioc;
  server_options opts;
  server_hooks& hooks;
  metrics_registry& metrics;
  std::shared_ptr<server_state> state;
  tcp::acceptor acceptor;
  std::uint16_t bound_port = 0;
  std::shared_ptr<connection_limits> limits;

  impl(net::io_context& io, server_options o, server_hooks& h, metrics_registry& m,
       std::shared_ptr<server_state> s)
      : ioc(io),
        opts(std::move(o)),
        hooks(h),
        metrics(m),
        state(std::move(s)),
        acceptor(net::make_strand(io)),
        limits(std::make_shared<connection_limits>(opts.max_connections, opts.max_connections_per_ip)) {}

  void do_accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
};

// ---------------------------------------------------------------------------------------------------------
// WebSocket session: one read loop, one bounded write queue, heartbeat, close handshake.
//
//   open --(close requested)--> closing --(close frame sent or forced)--> finished
//     \------------------(read error / peer close / timeout)-------------/

template <class Stream>
class ws_session : public connection_sink, public std::enable_shared_from_this<ws_session<Stream>> {
 public:
  ws_session(Stream&& stream, std::shared_ptr<ws_server::impl> server, peer_info peer,
             std::unique_ptr<connection_limits::slot> slot)
      : ws_(std::move(stream)),
        server_(std::move(server)),
        peer_(std::move(peer)),
        slot_(std::move(slot)),
        heartbeat_(ws_.get_executor()),
        force_close_(ws_.get_executor()) {}

  /// `received` holds the upgrade request as read plus whatever the client sent after it in the same
  /// packets: frames sent right behind the request must not be lost, so Beast parses both from it.
  void run(const std::string& received) {
    const auto& o = server_->opts;
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = ws_handshake_timeout;
    timeouts.idle_timeout = websocket::stream_base::none();  // our own heartbeat decides liveness
    timeouts.keep_alive_pings = false;
    ws_.set_option(timeouts);
    if (o.per_message_deflate) {
      websocket::permessage_deflate pmd;
      pmd.server_enable = true;
      ws_.set_option(pmd);
    }
    // Sizes are enforced per chunk by on_read so the error can be sent before 1009; inflated bytes count.
    ws_.read_message_max(0);
    ws_.auto_fragment(false);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, server_name); }));
    ws_.control_callback([this](websocket::frame_type kind, beast::string_view) {
      if (kind == websocket::frame_type::pong) last_seen_ = std::chrono::steady_clock::now();
      if (kind == websocket::frame_type::close) on_peer_close();
    });
    ws_.async_accept(net::buffer(received),
                     beast::bind_front_handler(&ws_session::on_accept, this->shared_from_this()));
  }

  void send(protocol::frame data) override {
    net::post(ws_.get_executor(), [self = this->shared_from_this(), data = std::move(data)]() mutable {
      self->enqueue(std::move(data));
    });
  }

  void close(std::uint16_t code, std::string reason) override {
    net::post(ws_.get_executor(),
              [self = this->shared_from_this(), code, reason = std::move(reason)]() mutable {
                self->begin_close(code, std::move(reason), true);
              });
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) {
      spdlog::debug("websocket accept from {} failed: {}", peer_.address, ec.message());
      return;
    }
    open_ = true;
    peer_.deflate = server_->opts.per_message_deflate;
    server_->metrics.connections.fetch_add(1);
    server_->metrics.connections_total.fetch_add(1);
    last_seen_ = std::chrono::steady_clock::now();
    events_ = server_->hooks.on_open(this->shared_from_this(), peer_);
    schedule_heartbeat();
    do_read();
  }

  // -- reading -------------------------------------------------------------------------------------------

  void do_read() {
    ws_.async_read_some(buffer_, read_chunk,
                        beast::bind_front_handler(&ws_session::on_read, this->shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return finish(ec);
    last_seen_ = std::chrono::steady_clock::now();
    if (closing_) {  // discard what arrives while our close is under way
      buffer_.consume(buffer_.size());
      return do_read();
    }
    if (buffer_.size() > server_->opts.max_payload) return reject_oversized();
    if (!ws_.is_message_done()) return do_read();
    const auto received = std::chrono::steady_clock::now();
    if (!ws_.got_text()) {
      buffer_.consume(buffer_.size());
      events_->on_message(
          protocol::decode_error{protocol::error_code::invalid_message,
                                 "binary frames are not accepted; send JSON text", std::nullopt},
          received);
    } else {
      auto text = beast::buffers_to_string(buffer_.data());
      buffer_.consume(buffer_.size());
      events_->on_message(protocol::decode(text, server_->opts.max_json_depth), received);
    }
    do_read();
  }

  void reject_oversized() {
    buffer_.consume(buffer_.size());
    server_->metrics.errors.add("MESSAGE_TOO_LARGE");
    enqueue(protocol::encode_shared(protocol::make_error(
        protocol::error_code::message_too_large,
        "message exceeds maxPayload of " + std::to_string(server_->opts.max_payload) + " bytes")));
    begin_close(protocol::close_code::too_large, "message too large", true);
    do_read();
  }

  // -- writing -------------------------------------------------------------------------------------------

  void enqueue(protocol::frame data) {
    if (!open_ || closing_ || !data) return;
    const auto& o = server_->opts;
    if (queue_.size() >= o.send_queue_limit || queued_bytes_ + data->size() > o.send_queue_bytes) {
      // A consumer this far behind would grow memory without bound: drop what it has not read and close it.
      server_->metrics.slow_consumers_dropped.fetch_add(1);
      spdlog::warn("closing slow consumer {} ({} frames, {} bytes queued)", peer_.address, queue_.size(),
                   queued_bytes_);
      queue_.erase(queue_.begin() + (writing_ ? 1 : 0), queue_.end());
      queued_bytes_ = queue_.empty() ? 0 : queue_.front()->size();
      begin_close(protocol::close_code::policy, "slow consumer", false);
      return;
    }
    queued_bytes_ += data->size();
    queue_.push_back(std::move(data));
    if (!writing_) do_write();
  }

  void do_write() {
    writing_ = true;
    writing_bytes_ = queue_.front()->size();
    ws_.text(true);
    ws_.async_write(net::buffer(*queue_.front()),
                    beast::bind_front_handler(&ws_session::on_write, this->shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t bytes) {
    writing_ = false;
    if (raw_close_pending_) {
      // Beast aborts the write once the read has failed; the frame is whole on the wire only when every byte
      // of the message went out, and only then may the close follow it.
      raw_close_pending_ = false;
      return bytes == writing_bytes_ ? write_raw_close() : terminate();
    }
    if (!queue_.empty()) {
      queued_bytes_ -= queue_.front()->size();
      queue_.pop_front();
    }
    if (ec) return;  // the read side reports the failure
    if (!queue_.empty() && (!closing_ || flush_before_close_)) return do_write();
    if (closing_ && !close_sent_) do_close();
  }

  // -- closing -------------------------------------------------------------------------------------------

  /// Beast echoes any close code from 1000 up; RFC 6455 7.4 defines none at or above 5000 (and reserves
  /// others), so such a close fails the connection with 1002. Our close is started here, inside the read,
  /// so that it takes the write lock before Beast's echo would (Beast then skips its own close frame).
  void on_peer_close() {
    const auto code = ws_.reason().code;
    if (code == websocket::close_code::none || protocol::valid_close_code(code) || closing_) return;
    spdlog::debug("{} sent invalid close code {}", peer_.address, code);
    closing_ = true;
    flush_before_close_ = false;
    close_code_ = protocol::protocol_error_close;
    close_reason_ = "invalid close code";
    arm_force_close();
    do_close();
  }

  /// A read failed inside permessage-deflate: Beast gives up on the stream without a close frame, so one is
  /// written by hand (control frames are never compressed, server frames are unmasked) before the socket
  /// goes, telling the peer why (RFC 7692 8.1 / RFC 6455 7.1.7). While a Beast write is in flight, the close
  /// follows it in on_write, and only if that message went out whole: never inside another frame.
  bool send_raw_close_after(beast::error_code ec) {
    static const auto& zlib_errors = beast::zlib::make_error_code(beast::zlib::error::general).category();
    const bool inflate_failed = ec.category() == zlib_errors || ec == websocket::error::partial_deflate_block;
    if (!inflate_failed || closing_) return false;
    closing_ = true;
    close_code_ = protocol::invalid_payload_close;
    if (writing_)
      raw_close_pending_ = true;
    else
      write_raw_close();
    return true;
  }

  void write_raw_close() {
    static constexpr char reason[] = "invalid compressed data";
    auto frame = std::make_shared<std::string>();
    frame->push_back(static_cast<char>(0x88));  // FIN + close
    frame->push_back(static_cast<char>(2 + sizeof(reason) - 1));
    frame->push_back(static_cast<char>(protocol::invalid_payload_close >> 8));
    frame->push_back(static_cast<char>(protocol::invalid_payload_close & 0xff));
    frame->append(reason, sizeof(reason) - 1);
    net::async_write(
        ws_.next_layer(), net::buffer(*frame),
        [self = this->shared_from_this(), frame](beast::error_code, std::size_t) { self->terminate(); });
  }

  void begin_close(std::uint16_t code, std::string reason, bool flush) {
    if (!open_ || closing_) return;
    closing_ = true;
    flush_before_close_ = flush;
    close_code_ = code;
    close_reason_ = std::move(reason);
    arm_force_close();
    if (!writing_) do_close();
  }

  /// A peer that never reads would keep a write or the close handshake pending forever.
  void arm_force_close() {
    force_close_.expires_after(force_close_after);
    force_close_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (!ec) self->terminate();
    });
  }

  void do_close() {
    close_sent_ = true;
    websocket::close_reason reason;
    reason.code = close_code_;
    reason.reason = close_reason_;
    ws_.async_close(reason, [self = this->shared_from_this()](beast::error_code) {});
  }

  void terminate() {
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  void finish(beast::error_code ec) {
    if (finished_) return;
    const bool close_written = send_raw_close_after(ec);
    finished_ = true;
    open_ = false;
    heartbeat_.cancel();
    force_close_.cancel();
    std::uint16_t code = protocol::close_code::abnormal;
    if (closing_)
      code = close_code_;
    else if (ec == websocket::error::closed)
      code = ws_.reason().code;
    queue_.clear();
    queued_bytes_ = 0;
    server_->metrics.connections.fetch_sub(1);
    if (events_) events_->on_closed(code);
    events_.reset();  // break the cycle events -> actor -> sink -> events
    slot_.reset();    // the connection is over for the limits, whoever still holds this object
    if (!closing_ && ec != websocket::error::closed && !close_written) terminate();
  }

  // -- heartbeat -----------------------------------------------------------------------------------------

  void schedule_heartbeat() {
    heartbeat_.expires_after(std::chrono::milliseconds(server_->opts.heartbeat_interval_ms));
    heartbeat_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (!ec) self->on_heartbeat();
    });
  }

  void on_heartbeat() {
    if (finished_ || closing_) return;
    const auto silent = std::chrono::steady_clock::now() - last_seen_;
    if (silent > std::chrono::milliseconds(server_->opts.client_timeout_ms)) {
      spdlog::info("closing {}: no pong for {} ms", peer_.address,
                   std::chrono::duration_cast<std::chrono::milliseconds>(silent).count());
      server_->metrics.heartbeat_timeouts.fetch_add(1);
      return terminate();
    }
    if (!ping_in_flight_) {
      ping_in_flight_ = true;
      ws_.async_ping({},
                     [self = this->shared_from_this()](beast::error_code) { self->ping_in_flight_ = false; });
    }
    schedule_heartbeat();
  }

  websocket::stream<Stream> ws_;
  std::shared_ptr<ws_server::impl> server_;
  peer_info peer_;
  std::unique_ptr<connection_limits::slot> slot_;
  std::shared_ptr<connection_events> events_;
  beast::flat_buffer buffer_;
  std::deque<protocol::frame> queue_;
  std::size_t queued_bytes_ = 0;
  net::steady_timer heartbeat_;
  net::steady_timer force_close_;
  std::chrono::steady_clock::time_point last_seen_{};
  std::uint16_t close_code_ = 0;
  std::string close_reason_;
  bool open_ = false;
  bool writing_ = false;
  bool raw_close_pending_ = false;  // a corrupt-deflate close waits for the write in flight
  std::size_t writing_bytes_ = 0;   // the size of the message being written
  bool closing_ = false;
  bool close_sent_ = false;
  bool flush_before_close_ = true;
  bool finished_ = false;
  bool ping_in_flight_ = false;
};

// ---------------------------------------------------------------------------------------------------------
// HTTP session: health, readiness, metrics, and the upgrade decision (path, drain, origin, proxies).

template <class Stream>
class http_session : public http_session_base<http_session<Stream>, Stream> {
  using base = http_session_base<http_session<Stream>, Stream>;
  friend base;
  using base::buffer_;
  using base::parser_;
  using base::shutdown;
  using base::stream_;
  using base::write;

 public:
  http_session(Stream&& stream, std::shared_ptr<ws_server::impl> server)
      : base(std::move(stream)), server_(std::move(server)) {}

 private:
  void do_read() {
    parser_.emplace();
    parser_->header_limit(http_header_limit);
    parser_->body_limit(http_body_limit);
    beast::get_lowest_layer(stream_).expires_after(http_read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&http_session::on_read, this->shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return shutdown();
    auto req = parser_->release();
    if (websocket::is_upgrade(req)) return upgrade(std::move(req));
    respond(req);
  }

  void upgrade(http::request<http::string_body> req) {
    auto& s = *server_;
    if (target_path(req.target()) != s.opts.path)
      return reject(req, http::status::not_found, "no such path\n");
    if (s.state->draining.load()) return reject(req, http::status::service_unavailable, "draining\n");
    auto origin = header(req, http::field::origin);
    if (!protocol::origin_allowed(origin ? std::optional<std::string_view>(*origin) : std::nullopt,
                                  s.opts.cors_origins)) {
      spdlog::info("refused upgrade from origin '{}'", *origin);
      return reject(req, http::status::forbidden, "origin not allowed\n");
    }
    if (!protocol::valid_websocket_key(header(req, http::field::sec_websocket_key).value_or("")))
      return reject(req, http::status::bad_request, "Sec-WebSocket-Key must be 16 bytes in base64\n");
    peer_info peer = make_peer(req);
    connection_limits::refusal why{};
    auto slot = s.limits->acquire(peer.address, why);
    if (!slot) {
      const bool total = why == connection_limits::refusal::total;
      s.metrics.limits_exceeded.add(total ? "maxConnections" : "maxConnectionsPerIp");
      spdlog::info("refused upgrade from {}: {}", peer.address,
                   total ? "maxConnections reached" : "maxConnectionsPerIp reached");
      return total ? reject(req, http::status::service_unavailable, "too many connections\n")
                   : reject(req, http::status::too_many_requests, "too many connections from your address\n");
    }
    // X-Forwarded-* from anyone but a trusted proxy could spoof the client's address: drop them here.
    for (auto f : {"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"}) req.erase(f);
    std::ostringstream received;
    received << req << beast::make_printable(buffer_.data());
    std::make_shared<ws_session<Stream>>(std::move(stream_), server_, std::move(peer), std::move(slot))
        ->run(received.str());
  }

  peer_info make_peer(const http::request<http::string_body>& req) {
    peer_info peer;
    beast::error_code ec;
    auto ep = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (!ec) {
      auto addr = ep.address();
      if (addr.is_v6() && addr.to_v6().is_v4_mapped())
        addr = net::ip::make_address_v4(net::ip::v4_mapped, addr.to_v6());
      peer.socket_address = addr.to_string();
      peer.port = ep.port();
    }
    peer.address = peer.socket_address;
    peer.tls = std::is_same_v<Stream, tls_stream>;
    peer.origin = header(req, http::field::origin);
    peer.user_agent = header(req, http::field::user_agent);
    if (protocol::any_contains(server_->opts.trusted_proxies, peer.socket_address)) {
      // Several X-Forwarded-For fields are one list, in order (RFC 7230 3.2.2).
      std::string xff;
      for (const auto& field : boost::make_iterator_range(req.equal_range("X-Forwarded-For"))) {
        if (!xff.empty()) xff += ',';
        xff.append(field.value().data(), field.value().size());
      }
      if (auto client = protocol::forwarded_client_address(xff, server_->opts.trusted_proxies))
        peer.address = *client;
      peer.forwarded_proto = header(req, "X-Forwarded-Proto");
      peer.forwarded_host = header(req, "X-Forwarded-Host");
    }
    return peer;
  }

  void reject(const http::request<http::string_body>& req, http::status status, const char* body) {
    server_->metrics.rejected_upgrades.fetch_add(1);
    http::response<http::string_body> res{status, req.version()};
    res.set(http::field::server, server_name);
    res.set(http::field::content_type, "text/plain");
    res.keep_alive(false);
    res.body() = body;
    res.prepare_payload();
    write(std::move(res));
  }

  void respond(const http::request<http::string_body>& req) {
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::server, server_name);
    res.keep_alive(req.keep_alive());
    const auto path = target_path(req.target());
    const bool get = req.method() == http::verb::get || req.method() == http::verb::head;
    if (get && path == "/healthz") {
      res.set(http::field::content_type, "application/json");
      res.body() = R"({"status":"ok"})";
    } else if (get && path == "/readyz") {
      res.set(http::field::content_type, "application/json");
      res.body() = readiness();
      if (server_->state->draining.load()) res.result(http::status::service_unavailable);
    } else if (get && path == "/metrics") {
      res.set(http::field::content_type, "text/plain; version=0.0.4");
      res.body() = server_->metrics.render();
    } else {
      res.result(http::status::not_found);
      res.set(http::field::content_type, "text/plain");
      res.body() = "not found\n";
    }
    res.prepare_payload();
    if (req.method() == http::verb::head) res.body().clear();
    write(std::move(res));
  }

  /// /readyz's body. A clustered node that lost NATS stays ready (its clients are served; taking every node
  /// out of the balancer when NATS fails would stop everything) and says it is degraded.
  std::string readiness() const {
    static const char* links[] = {"connected", "reconnecting", "closed"};
    std::string body = server_->state->draining.load() ? R"({"status":"draining")" : R"({"status":"ready")";
    const int link = server_->metrics.cluster_link.load();
    if (link >= 0 && link < 3) {
      body += R"(,"cluster":")";
      body += links[link];
      body += link == 0 ? R"(","degraded":false)" : R"(","degraded":true)";
    }
    return body + "}";
  }

  std::shared_ptr<ws_server::impl> server_;
};

// ---------------------------------------------------------------------------------------------------------

void ws_server::impl::do_accept() {
  acceptor.async_accept(net::make_strand(ioc),
                        beast::bind_front_handler(&impl::on_accept, shared_from_this()));
}

void ws_server::impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
  if (!ec) {
    // Frames are small and latency matters: do not wait for the peer's delayed ACK (Nagle).
    boost::system::error_code nodelay_ec;
    socket.set_option(tcp::no_delay(true), nodelay_ec);
    if (opts.tls)
      std::make_shared<http_session<tls_stream>>(tls_stream(std::move(socket), *opts.tls), shared_from_this())
          ->run(http_read_timeout);
    else
      std::make_shared<http_session<plain_stream>>(plain_stream(std::move(socket)), shared_from_this())
          ->run(http_read_timeout);
  } else {
    // EMFILE and friends: usually transient, so keep accepting, but not in a tight loop.
    spdlog::warn("accept failed: {}", ec.message());
    auto timer = std::make_shared<net::steady_timer>(acceptor.get_executor(), accept_retry_delay);
    timer->async_wait([self = shared_from_this(), timer](beast::error_code) { self->do_accept(); });
    return;
  }
  do_accept();
}

ws_server::ws_server(net::io_context& ioc, server_options options, server_hooks& hooks,
                     metrics_registry& metrics, std::shared_ptr<server_state> state)
    : impl_(std::make_shared<impl>(ioc, std::move(options), hooks, metrics, std::move(state))) {}

ws_server::~ws_server() { stop(); }

void ws_server::start() {
  auto& acc = impl_->acceptor;
  impl_->bound_port = open_listener(acc, impl_->opts.address, impl_->opts.port);
  net::dispatch(acc.get_executor(), [self = impl_] { self->do_accept(); });
}

void ws_server::stop() {
  beast::error_code ec;
  impl_->acceptor.close(ec);
}

std::uint16_t ws_server::port() const { return impl_->bound_port; }

}  // namespace sb::transport

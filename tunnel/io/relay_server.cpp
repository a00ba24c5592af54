#include "tunnel/io/relay_server.hpp"

#include "tunnel/io/relay_metrics.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <future>

#include "protocol/text.hpp"
#include "transport/http_session.hpp"
#include "transport/listen.hpp"
#include "tunnel/io/relay_metrics.hpp"
#include "tunnel/io/ws_stream.hpp"

namespace sb::tunnel::io {

using transport::http_session_base;
using transport::accept_retry_delay;
using transport::open_listener;

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

namespace {

constexpr auto read_timeout = std::chrono::seconds(30);

struct relay_route {
  std::string tunnel_id;
  bool host = false;
};

/// "/tunnels/{id}/host" or "/tunnels/{id}/client".
std::optional<relay_route> match_relay_path(const std::string& path) {
  const std::string prefix = "/tunnels/";
  if (path.rfind(prefix, 0) != 0) return std::nullopt;
  auto rest = path.substr(prefix.size());
  auto slash = rest.find('/');
  if (slash == std::string::npos || slash == 0) return std::nullopt;
  auto role = rest.substr(slash + 1);
  if (role != "host" && role != "client") return std::nullopt;
  return relay_route{rest.substr(0, slash), role == "host"};
}

bool is_protocol_name(const std::string& p) {
  return p == tunnel::subprotocol::host_v1 || p == tunnel::subprotocol::host_v2 ||
         p == tunnel::subprotocol::client_v1 || p == tunnel::subprotocol::client_v2;
}

tunnel::http_request to_management_request(const http::request<http::string_body>& req) {
  tunnel::http_request out;
  out.method = std::string(req.method_string());
  const std::string target(req.target());
  auto q = target.find('?');
  out.path = target.substr(0, q);
  if (q != std::string::npos) out.query = tunnel::parse_query(target.substr(q + 1));
  for (const auto& field : req) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    out.headers[name] = std::string(field.value());
  }
  out.body = req.body();
  return out;
}

}  // namespace

struct relay_server::impl : std::enable_shared_from_this<relay_server::impl> {
  net::io_context& ioc;
  relay_server_options opts;
  tunnel::management_api* api = nullptr;
  std::shared_ptr<relay_hub> hub;
  tcp::acceptor acceptor;
  std::uint16_t bound = 0;

  impl(net::io_context& io, relay_server_options o)
      : ioc(io), opts(std::move(o)), acceptor(net::make_strand(io)) {}

  void do_accept();
};

template <class Stream>
class relay_http_session : public http_session_base<relay_http_session<Stream>, Stream> {
  using base = http_session_base<relay_http_session<Stream>, Stream>;
  friend base;
  using base::buffer_;
  using base::parser_;
  using base::shutdown;
  using base::stream_;
  using base::write;

 public:
  relay_http_session(Stream&& s, std::shared_ptr<relay_server::impl> server)
      : base(std::move(s)), server_(std::move(server)) {}

 private:
  void do_read() {
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(tunnel::max_request_body);
    beast::get_lowest_layer(stream_).expires_after(read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec == http::error::body_limit)
                         return self->reply_status(413, "request body too large");
                       if (ec) return self->shutdown();
                       auto req = self->parser_->release();
                       if (websocket::is_upgrade(req)) return self->upgrade(std::move(req));
                       if (self->operations(req)) return;
                       self->manage(req);
                     });
  }

  void manage(const http::request<http::string_body>& req) {
    // A change answers once it is durable, from the store's writer thread: this I/O thread moves on, and
    // the reply is written back on the session's strand.
    const auto version = req.version();
    const bool keep_alive = req.keep_alive();
    server_->api->handle(to_management_request(req), [self = this->shared_from_this(), version,
                                                      keep_alive](tunnel::http_response result) {
      http::response<http::string_body> res{static_cast<http::status>(result.status), version};
      for (const auto& [k, v] : result.headers) res.set(k, v);
      res.set(http::field::server, "switchboard-relay");
      res.keep_alive(keep_alive);
      res.body() = std::move(result.body);
      res.prepare_payload();
      net::dispatch(self->stream_.get_executor(),
                    [self, res = std::move(res)]() mutable { self->write(std::move(res)); });
    });
  }

  /// GET /healthz and /metrics, for load balancers and Prometheus; paths the management API never uses.
  bool operations(const http::request<http::string_body>& req) {
    if (req.method() != http::verb::get) return false;
    const auto path = std::string(req.target()).substr(0, req.target().find('?'));
    if (path != "/healthz" && path != "/metrics") return false;
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::server, "switchboard-relay");
    res.keep_alive(req.keep_alive());
    if (path == "/healthz") {
      res.set(http::field::content_type, "text/plain");
      res.body() = "ok\n";
    } else {
      res.set(http::field::content_type, "text/plain; version=0.0.4");
      res.body() = render_relay_metrics(*server_->hub, *server_->api);
    }
    res.prepare_payload();
    write(std::move(res));
    return true;
  }

  void reply_status(int status, const std::string& detail) {
    http::response<http::string_body> res{static_cast<http::status>(status), 11};
    res.set(http::field::content_type, "application/problem+json");
    res.set(tunnel::served_by_header, tunnel::served_by_value);
    res.keep_alive(false);
    res.body() = nlohmann::json{
        {"title", std::string(http::obsolete_reason(static_cast<http::status>(status)))},
        {"detail", detail},
        {"status",
         status}}.dump();
    res.prepare_payload();
    write(std::move(res));
  }

  void upgrade(http::request<http::string_body> req) {
    const std::string target(req.target());
    auto route = match_relay_path(target.substr(0, target.find('?')));
    if (!route) return reply_status(404, "no relay endpoint at " + target);
    // The token: `Authorization: tunnel <jwt>` (or Bearer), or for browsers an extra subprotocol entry.
    std::string token;
    auto protocols = protocol::split_comma_list(std::string(req[http::field::sec_websocket_protocol]));
    std::string auth(req[http::field::authorization]);
    for (const char* scheme : {"tunnel ", "Tunnel ", "Bearer ", "bearer "})
      if (auth.rfind(scheme, 0) == 0) token = auth.substr(std::strlen(scheme));
    if (token.empty())
      for (const auto& p : protocols)
        if (!is_protocol_name(p)) token = p;
    const char* scope = route->host ? tunnel::scope::host : tunnel::scope::connect;
    switch (server_->api->authorize_relay(route->tunnel_id, token, scope)) {
      case tunnel::relay_auth::ok:
        break;
      case tunnel::relay_auth::unauthorized:
        ++server_->hub->counters().unauthorized;
        return reply_status(401, "missing or invalid tunnel access token");
      case tunnel::relay_auth::forbidden:
        ++server_->hub->counters().forbidden;
        return reply_status(403, std::string("token lacks the ") + scope + " scope");
      case tunnel::relay_auth::not_found:
        ++server_->hub->counters().not_found;
        return reply_status(404, "no tunnel " + route->tunnel_id);
    }
    auto offers = [protocols](const char* p) {
      return std::find(protocols.begin(), protocols.end(), p) != protocols.end();
    };
    if (route->host) {
      const char* chosen = offers(tunnel::subprotocol::host_v2)   ? tunnel::subprotocol::host_v2
                           : offers(tunnel::subprotocol::host_v1) ? tunnel::subprotocol::host_v1
                                                                  : "";
      return accept_upgrade(std::move(req), *route, chosen);
    }
    // A V1 client of a V1 host is piped end to end, so a client offering both gets V1 then; the control
    // plane knows the host. Its answer comes on another thread: the session continues on its strand.
    auto request = std::make_shared<http::request<http::string_body>>(std::move(req));
    server_->hub->host_version(
        route->tunnel_id, [self = this->shared_from_this(), request, route = *route,
                           offers](std::optional<tunnel::protocol_version> host) {
          const bool v1_host = host && *host == tunnel::protocol_version::v1;
          const char* chosen = "";
          if (offers(tunnel::subprotocol::client_v2) && !(v1_host && offers(tunnel::subprotocol::client_v1)))
            chosen = tunnel::subprotocol::client_v2;
          else if (offers(tunnel::subprotocol::client_v1))
            chosen = tunnel::subprotocol::client_v1;
          net::post(self->stream_.get_executor(), [self, request, route, chosen] {
            self->accept_upgrade(std::move(*request), route, chosen);
          });
        });
  }

  /// Completes the upgrade with the chosen subprotocol (empty: none fits, 400) and hands the WebSocket to
  /// the hub.
  void accept_upgrade(http::request<http::string_body> req, const relay_route& route, std::string chosen) {
    if (chosen.empty()) return reply_status(400, "no supported tunnel relay subprotocol offered");
    const auto version = (chosen == tunnel::subprotocol::host_v1 || chosen == tunnel::subprotocol::client_v1)
                             ? tunnel::protocol_version::v1
                             : tunnel::protocol_version::v2;
    beast::get_lowest_layer(stream_).expires_never();
    auto ws = std::make_shared<websocket::stream<Stream>>(std::move(stream_));
    ws->set_option(websocket::stream_base::decorator([chosen](websocket::response_type& res) {
      res.set(http::field::sec_websocket_protocol, chosen);
      res.set(http::field::server, "switchboard-relay");
    }));
    auto hub = server_->hub;
    const auto tunnel_id = route.tunnel_id;
    const bool host = route.host;
    ws->async_accept(req, [ws, hub, tunnel_id, host, version](beast::error_code ec) {
      if (ec) return spdlog::debug("relay: upgrade failed: {}", ec.message());
      auto stream = make_ws_stream(std::move(*ws));
      if (host)
        hub->add_host(tunnel_id, version, std::move(stream));
      else
        hub->add_client(tunnel_id, version, std::move(stream));
    });
  }

  std::shared_ptr<relay_server::impl> server_;
};

void relay_server::impl::do_accept() {
  acceptor.async_accept(net::make_strand(ioc), [self = shared_from_this()](beast::error_code ec,
                                                                           tcp::socket socket) {
    if (ec == net::error::operation_aborted || !self->acceptor.is_open()) return;
    if (!ec) {
      // SSH packets are small and interactive: without this, every small write waits for a delayed ACK.
      beast::error_code nodelay_ec;
      socket.set_option(tcp::no_delay(true), nodelay_ec);
      if (self->opts.tls)
        std::make_shared<relay_http_session<tls_stream>>(tls_stream(std::move(socket), *self->opts.tls), self)
            ->run(read_timeout);
      else
        std::make_shared<relay_http_session<plain_stream>>(plain_stream(std::move(socket)), self)->run(read_timeout);
    } else {
      spdlog::warn("relay: accept failed: {}", ec.message());
      auto timer = std::make_shared<net::steady_timer>(self->acceptor.get_executor(), accept_retry_delay);
      timer->async_wait([self, timer](beast::error_code) { self->do_accept(); });
      return;
    }
    self->do_accept();
  });
}

relay_server::relay_server(net::io_context& ioc, relay_server_options options)
    : impl_(std::make_shared<impl>(ioc, std::move(options))) {}

relay_server::~relay_server() {
  beast::error_code ec;
  if (impl_->acceptor.is_open()) stop();
}

std::uint16_t relay_server::bind() {
  impl_->bound = open_listener(impl_->acceptor, impl_->opts.address, impl_->opts.port);
  return impl_->bound;
}

void relay_server::serve(tunnel::management_api& api, std::shared_ptr<relay_hub> hub) {
  impl_->api = &api;
  impl_->hub = std::move(hub);
  net::dispatch(impl_->acceptor.get_executor(), [self = impl_] { self->do_accept(); });
}

void relay_server::stop() {
  // Close on the acceptor's strand when the io_context runs; directly when it does not.
  auto closed = std::make_shared<std::promise<void>>();
  auto done = closed->get_future();
  net::post(impl_->acceptor.get_executor(), [self = impl_, closed] {
    beast::error_code ec;
    self->acceptor.close(ec);
    closed->set_value();
  });
  if (done.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  }
}

std::uint16_t relay_server::port() const { return impl_->bound; }

}  // namespace sb::tunnel::io

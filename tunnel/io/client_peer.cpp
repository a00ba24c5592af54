#include "tunnel/io/relay_peer.hpp"

namespace sb::tunnel::io {

using namespace relay_peer_detail;

// =============================================================================================================
// client

struct client_peer::impl : relay_peer_core<client_peer::impl> {
  client_options opts;
  mutable std::mutex mtx;
  std::map<std::uint16_t, std::shared_ptr<tcp::acceptor>> listeners;  // remote port -> listener (guarded)

  impl(net::io_context& io, client_options o, relay_peer_callbacks c)
      : relay_peer_core(io, std::move(c)), opts(std::move(o)) {}

  void start() {
    open_websocket(opts.relay_uri, opts.token, opts.protocol, tunnel::subprotocol::client_v2,
                   tunnel::subprotocol::client_v1, opts.ca_file);
  }

  void on_connected(websocket_connect_result r) {
    if (!r.stream) return end(refusal_of(r));
    version = chosen(r.protocol, opts.protocol, tunnel::subprotocol::client_v1);
    ssh::session_config cfg;
    cfg.role = ssh::role::client;
    if (version == protocol_version::v2) {
      // The relay is authenticated by the WebSocket's TLS; its SSH key need not match (devtunnels-protocol.md
      // §2).
      cfg.kex = {"none", "ecdh-sha2-nistp384", "ecdh-sha2-nistp256"};
    } else {
      // V1: the session reaches the host (or the relay standing in for it): its key must be a published one.
      auto keys = opts.host_public_keys;
      cfg.accept_host_key = [keys](const ssh::bytes& blob) {
        const auto b64 = ssh::base64_encode(blob);
        return keys.empty() || std::find(keys.begin(), keys.end(), b64) != keys.end();
      };
    }
    // The client ignores global replies, so a keepalive needs no bookkeeping.
    start_link(r.stream, std::move(cfg), opts.idle_timeout, [](impl&, ssh_link& on) {
      on.session().global_request(keepalive_request, true);
      on.drive();
    });
  }

  void end(const relay_outcome& o) {
    if (ended) return;
    close_listeners();
    report_end(o);
  }

  /// Acceptors are closed on their own strands: closing one while its accept handler runs elsewhere races.
  static void close_listener(const std::shared_ptr<tcp::acceptor>& a) {
    net::post(a->get_executor(), [a] {
      boost::system::error_code ec;
      a->close(ec);
    });
  }

  void close_listeners() {
    std::lock_guard<std::mutex> g(mtx);
    for (auto& [_, a] : listeners) close_listener(a);
    listeners.clear();
  }

  void on_ready(ssh_link&) override {
    ready = true;
    if (cb.connected) cb.connected(version);
  }

  void accept_loop(std::shared_ptr<tcp::acceptor> acceptor, std::uint16_t remote) {
    acceptor->async_accept(net::make_strand(ioc), [self = shared_from_this(), acceptor, remote](
                                                      boost::system::error_code ec, tcp::socket s) {
      if (ec) return;  // closed
      auto socket = std::make_shared<tcp::socket>(std::move(s));
      self->link->post([self, socket, remote] {
        boost::system::error_code e;
        auto peer = socket->remote_endpoint(e);
        tunnel::forwarded_channel_open o;
        o.port = remote;
        o.originator_port = e ? 0 : peer.port();
        o.extended = self->version == protocol_version::v2;
        o.access_token = self->opts.token;
        const auto ch = self->link->session().open_channel(tunnel::forwarded_tcpip, tunnel::encode(o));
        self->link->bridge(ch, std::move(*socket));
        self->link->drive();
      });
      self->accept_loop(acceptor, remote);
    });
  }

  void on_global_request(ssh_link& l, const ssh::ev::global_request& req) override {
    const auto change = tunnel::read_port_forward(req.name, req.data);
    if (!change) return ssh_link_handler::on_global_request(l, req);
    if (!change->request) {
      if (req.want_reply) l.session().global_reply(false);
      return;
    }
    const bool add = change->add;
    const auto& r = change->request;
    const auto remote = static_cast<std::uint16_t>(r->port);
    bool ok = true;
    if (add) {
      std::lock_guard<std::mutex> g(mtx);
      if (!listeners.count(remote)) {
        auto mapped = opts.port_map.find(remote);
        const std::uint16_t local = mapped == opts.port_map.end() ? remote : mapped->second;
        auto acceptor = std::make_shared<tcp::acceptor>(net::make_strand(ioc));
        boost::system::error_code ec;
        acceptor->open(tcp::v4(), ec);
        if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
        if (!ec) acceptor->bind(loopback(local), ec);
        if (!ec) acceptor->listen(net::socket_base::max_listen_connections, ec);
        if (ec) {
          spdlog::warn("tunnel: cannot listen on 127.0.0.1:{} for remote port {}: {}", local, remote,
                       ec.message());
          ok = false;
        } else {
          listeners[remote] = acceptor;
          accept_loop(acceptor, remote);
          spdlog::info("tunnel: remote port {} on 127.0.0.1:{}", remote, acceptor->local_endpoint().port());
        }
      }
    } else {
      std::lock_guard<std::mutex> g(mtx);
      auto it = listeners.find(remote);
      if (it != listeners.end()) {
        close_listener(it->second);
        listeners.erase(it);
      }
    }
    if (req.want_reply)
      l.session().global_reply(ok, ok && add ? tunnel::encode_port_success(remote) : ssh::bytes{});
    if (ok && cb.port_changed) cb.port_changed(remote, add);
  }

  void on_closed(ssh_link&, std::uint32_t reason, const std::string& message) override {
    end(ending_of(reason, ready, message));
  }
};

client_peer::client_peer(net::io_context& ioc, client_options options, relay_peer_callbacks callbacks)
    : impl_(std::make_shared<impl>(ioc, std::move(options), std::move(callbacks))) {}
client_peer::~client_peer() { stop(); }
void client_peer::start() { impl_->start(); }

void client_peer::stop() {
  auto l = impl_->begin_stop();
  impl_->close_listeners();
  if (l) l->close(ssh::disconnect_reason::by_application, "client stopping");
}

std::map<std::uint16_t, std::uint16_t> client_peer::listening() const {
  std::lock_guard<std::mutex> g(impl_->mtx);
  std::map<std::uint16_t, std::uint16_t> out;
  for (const auto& [remote, a] : impl_->listeners) {
    boost::system::error_code ec;
    out[remote] = a->local_endpoint(ec).port();
  }
  return out;
}

void client_peer::refresh_ports() {
  if (auto l = std::atomic_load(&impl_->link))
    l->post([l] {
      l->session().global_request(tunnel::refresh_ports, true);
      l->drive();
    });
}


}  // namespace sb::tunnel::io

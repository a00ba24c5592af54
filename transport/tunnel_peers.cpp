#include "transport/tunnel_peers.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <deque>

#include "transport/ws_stream.hpp"
#include "tunnel/management_client.hpp"

namespace sb::transport {

namespace net = boost::asio;
namespace ssh = tunnel::ssh;
using tcp = net::ip::tcp;
using tunnel::protocol_version;

namespace {

std::vector<std::string> offered(protocol_choice choice, const char* v2, const char* v1) {
  switch (choice) {
    case protocol_choice::v2:
      return {v2};
    case protocol_choice::v1:
      return {v1};
    default:
      return {v2, v1};
  }
}

protocol_version chosen(const std::string& protocol, protocol_choice choice, const char* v1) {
  if (protocol.empty()) return choice == protocol_choice::v1 ? protocol_version::v1 : protocol_version::v2;
  return protocol == v1 ? protocol_version::v1 : protocol_version::v2;
}

const tcp::endpoint loopback(std::uint16_t port) { return {net::ip::make_address("127.0.0.1"), port}; }

/// Why a relay WebSocket could not be opened: an HTTP refusal, or a network failure when no status came back.
relay_outcome refusal_of(const websocket_connect_result& r) {
  relay_outcome o;
  o.http_status = r.http_status;
  o.network = r.http_status == 0;
  o.message = r.error;
  return o;
}

/// The outcome of a session that ended, for the retry rules.
relay_outcome ending_of(std::uint32_t reason, bool was_connected, const std::string& message) {
  relay_outcome o;
  o.ssh_reason = reason;
  o.was_connected = was_connected;
  o.network = reason == ssh::disconnect_reason::connection_lost;
  o.message = message;
  return o;
}

websocket_connect_options relay_websocket(const std::string& uri, const std::string& token,
                                          protocol_choice choice, const char* v2, const char* v1) {
  websocket_connect_options w;
  w.url = uri;
  w.subprotocols = offered(choice, v2, v1);
  w.authorization = tunnel::authorization_for(token);
  return w;
}

/// Connects to 127.0.0.1:port and, on the link's strand, accepts and bridges the channel or refuses it.
void connect_local_and_bridge(net::io_context& ioc, const std::shared_ptr<ssh_link>& link,
                              std::uint32_t channel, std::uint16_t port, ssh::bytes confirmation,
                              std::function<void()> on_open,
                              std::function<void(std::uint64_t, std::uint64_t)> on_done) {
  auto socket = std::make_shared<tcp::socket>(net::make_strand(ioc));
  socket->async_connect(loopback(port), [link, socket, channel, port, confirmation, on_open,
                                         on_done](boost::system::error_code ec) {
    link->post([link, socket, channel, port, ec, confirmation, on_open, on_done] {
      if (ec) {
        spdlog::info("tunnel: local port {} refused a stream: {}", port, ec.message());
        link->session().reject_channel(channel, ssh::open_failure::connect_failed, ec.message());
      } else {
        link->session().accept_channel(channel, confirmation);
        link->bridge(channel, std::move(*socket), on_done);
        if (on_open) on_open();
      }
      link->drive();
    });
  });
}

/// The keepalive the relay must answer (any answer will do: a refusal is traffic too), as OpenSSH sends it.
constexpr const char* keepalive_request = "keepalive@openssh.com";
/// Silent ticks (a third of the idle timeout each) before the relay counts as gone: one overdue tick, as
/// after this process itself was stopped and continued, does not drop a healthy connection.
constexpr unsigned silent_ticks_limit = 3;

/// Watches a relay link on its strand: every tick without a byte from the relay counts, any byte resets the
/// count, and `ping` (on the strand) provokes an answer. At the limit the link is aborted, which ends the
/// connection with connectionLost, so its owner reconnects. Holds the link only weakly: it stops with it.
void watch_relay_link(const std::shared_ptr<ssh_link>& link, std::chrono::milliseconds idle_timeout,
                      std::function<void(ssh_link&)> ping) {
  if (idle_timeout.count() <= 0) return;
  struct watch {
    std::weak_ptr<ssh_link> link;
    net::steady_timer timer;
    std::chrono::milliseconds idle, tick;
    std::function<void(ssh_link&)> ping;
    std::uint64_t seen = 0;
    unsigned silent = 0;
    watch(const std::shared_ptr<ssh_link>& l, std::chrono::milliseconds i, std::function<void(ssh_link&)> p)
        : link(l),
          timer(l->executor()),
          idle(i),
          tick(std::max<std::chrono::milliseconds>(i / silent_ticks_limit, std::chrono::milliseconds(1))),
          ping(std::move(p)) {}
    static void arm(const std::shared_ptr<watch>& w) {
      w->timer.expires_after(w->tick);
      w->timer.async_wait([w](boost::system::error_code ec) {
        auto l = w->link.lock();
        if (ec || !l || l->closed()) return;
        const auto now = l->counters().wire_bytes_in.load();
        if (now != w->seen) {
          w->seen = now;
          w->silent = 0;
        } else if (++w->silent >= silent_ticks_limit) {
          spdlog::warn("tunnel: nothing from the relay for {} ms: dropping the connection", w->idle.count());
          return l->abort("relay silent for " + std::to_string(w->idle.count()) + " ms");
        }
        if (w->ping) w->ping(*l);
        arm(w);
      });
    }
  };
  auto w = std::make_shared<watch>(link, idle_timeout, std::move(ping));
  w->seen = link->counters().wire_bytes_in.load();
  // The timer's executor is the link's: every tick runs on its strand.
  net::post(link->executor(), [w] { watch::arm(w); });
}

// -- a byte stream inside a channel
// -----------------------------------------------------------------------------

struct channel_stream : byte_stream, channel_endpoint, std::enable_shared_from_this<channel_stream> {
  std::weak_ptr<ssh_link> outer;
  std::uint32_t channel = 0;
  net::any_io_executor ex;
  std::deque<ssh::bytes> inbox;
  std::function<void(boost::system::error_code, ssh::bytes)> waiting;
  bool ended = false;

  net::any_io_executor executor() override { return ex; }

  void deliver() {
    if (!waiting) return;
    if (!inbox.empty()) {
      // Take the reader first: driving the outer link below may deliver more data into this stream.
      auto done = std::move(waiting);
      waiting = nullptr;
      auto data = std::move(inbox.front());
      inbox.pop_front();
      const auto n = data.size();
      net::post(ex, [done, data = std::move(data)]() mutable { done({}, std::move(data)); });
      if (auto l = outer.lock()) {
        l->session().consumed(channel, n);
        l->drive();
      }
    } else if (ended) {
      auto done = std::move(waiting);
      waiting = nullptr;
      net::post(ex, [done] { done(net::error::eof, {}); });
    }
  }

  void read(std::function<void(boost::system::error_code, ssh::bytes)> done) override {
    waiting = std::move(done);
    deliver();
  }
  void write(ssh::bytes data, std::function<void(boost::system::error_code)> done) override {
    auto l = outer.lock();
    if (!l || ended) return net::post(ex, [done] { done(net::error::broken_pipe); });
    l->send(channel, data);
    l->drive();
    net::post(ex, [done] { done({}); });
  }
  void close() override {
    if (auto l = outer.lock()) {
      l->session().close_channel(channel);
      l->drive();
    }
  }
  void on_data(ssh_link&, std::uint32_t, ssh::bytes data) override {
    inbox.push_back(std::move(data));
    deliver();
  }
  void on_eof(ssh_link&, std::uint32_t) override {
    ended = true;
    deliver();
  }
  void on_closed(ssh_link&, std::uint32_t) override {
    ended = true;
    deliver();
  }
};

}  // namespace

std::shared_ptr<byte_stream> make_channel_stream(const std::shared_ptr<ssh_link>& outer,
                                                 std::uint32_t channel) {
  auto s = std::make_shared<channel_stream>();
  s->outer = outer;
  s->channel = channel;
  s->ex = outer->executor();
  outer->attach(channel, s);
  return s;
}

/// What the host and the client peer share: the relay WebSocket offering V2 and V1, the SSH link published
/// to other threads (stop(), port changes) under one lock, and the one `ended` report.
template <class Derived>
struct relay_peer_core : ssh_link_handler, std::enable_shared_from_this<Derived> {
  net::io_context& ioc;
  relay_peer_callbacks cb;
  std::shared_ptr<ssh_link> link;
  protocol_version version = protocol_version::v2;
  bool ready = false;
  bool ended = false;
  std::atomic<bool> stopping{false};  // set by stop() on any thread, read on the strand
  std::mutex link_mtx;                // orders publishing the link against stop(): one of them sees the other

  relay_peer_core(net::io_context& io, relay_peer_callbacks c) : ioc(io), cb(std::move(c)) {}

  /// Makes the link visible to stop() and port changes on other threads; false once stopping.
  bool publish(const std::shared_ptr<ssh_link>& l) {
    std::lock_guard<std::mutex> g(link_mtx);
    if (stopping) return false;
    std::atomic_store(&link, l);
    return true;
  }
  /// Marks the peer stopping and returns the link to close, if one was published.
  std::shared_ptr<ssh_link> begin_stop() {
    std::lock_guard<std::mutex> g(link_mtx);
    stopping = true;
    return std::atomic_load(&link);
  }

  /// Opens the relay WebSocket; Derived::on_connected gets the result.
  void open_websocket(const std::string& uri, const std::string& token, protocol_choice choice, const char* v2,
                      const char* v1, const std::string& ca_file) {
    auto w = relay_websocket(uri, token, choice, v2, v1);
    w.ca_file = ca_file;
    connect_websocket(ioc, w, [self = this->shared_from_this()](websocket_connect_result r) {
      self->on_connected(std::move(r));
    });
  }

  /// Runs the SSH session over the relay WebSocket, kept alive by the link until it ends, with the idle
  /// watchdog sending `keepalive` once the session is ready.
  void start_link(const std::shared_ptr<byte_stream>& stream, ssh::session_config cfg,
                  std::chrono::milliseconds idle_timeout, std::function<void(Derived&, ssh_link&)> keepalive) {
    auto l = std::make_shared<ssh_link>(stream, std::move(cfg), *this);
    if (!publish(l)) return stream->close();
    l->hold(this->shared_from_this());
    l->start();
    watch_relay_link(l, idle_timeout, [w = this->weak_from_this(), keepalive](ssh_link& on) {
      auto self = w.lock();
      if (!self || !self->ready) return;  // before ready the handshake itself is the traffic
      keepalive(*self, on);
    });
  }

  /// Reports the end to the owner, once; false when it was reported already.
  bool report_end(const relay_outcome& o) {
    if (ended) return false;
    ended = true;
    if (cb.ended) cb.ended(o);
    return true;
  }
};

// =============================================================================================================
// host

struct host_peer::impl : relay_peer_core<host_peer::impl> {
  host_options opts;
  mutable std::mutex mtx;
  std::set<std::uint16_t> ports;  // guarded by mtx
  /// Outstanding global requests, in order (the protocol answers them in order): a port and whether it is
  /// being added, or a keepalive, whose answer nobody waits for.
  struct pending_reply {
    std::uint16_t port = 0;
    bool added = false;
    bool keepalive = false;
  };
  std::deque<pending_reply> replies;                             // link strand
  std::set<std::uint16_t> forwarded;                             // link strand (V2)
  std::atomic<std::uint64_t> streams_open{0}, streams_total{0};  // written on the strand, read anywhere
  std::atomic<std::uint64_t> next_stream{0};

  // V1: one SSH server session per client, inside its client-ssh-session-stream channel.
  struct v1_session : ssh_link_handler {
    std::weak_ptr<impl> host;
    std::shared_ptr<ssh_link> link;
    std::set<std::uint16_t> forwarded;
    void forward(std::uint16_t port) {
      if (!forwarded.insert(port).second) return;
      link->session().global_request(tunnel::tcpip_forward, true,
                                     tunnel::encode(tunnel::port_forward_request{"127.0.0.1", port, {}}));
    }
    void unforward(std::uint16_t port) {
      if (!forwarded.erase(port)) return;
      link->session().global_request(tunnel::cancel_tcpip_forward, true,
                                     tunnel::encode(tunnel::port_forward_request{"127.0.0.1", port, {}}));
    }
    void on_ready(ssh_link& l) override {
      if (auto h = host.lock())
        for (auto p : h->port_list()) forward(p);
      l.drive();
    }
    void on_global_request(ssh_link& l, const ssh::ev::global_request& req) override {
      if (req.name == tunnel::refresh_ports) {
        if (auto h = host.lock())
          for (auto p : h->port_list()) forward(p);
        if (req.want_reply) l.session().global_reply(true);
        return;
      }
      ssh_link_handler::on_global_request(l, req);
    }
    void on_channel_open(ssh_link& l, const ssh::ev::channel_open& open) override {
      auto h = host.lock();
      if (!h || (open.type != tunnel::forwarded_tcpip && open.type != tunnel::direct_tcpip))
        return ssh_link_handler::on_channel_open(l, open);
      h->open_stream(link, open, {});
    }
  };
  std::map<std::uint32_t, std::shared_ptr<v1_session>> v1_sessions;  // by outer channel

  impl(net::io_context& io, host_options o, relay_peer_callbacks c)
      : relay_peer_core(io, std::move(c)), opts(std::move(o)) {
    ports = opts.ports;
  }

  std::set<std::uint16_t> port_list() const {
    std::lock_guard<std::mutex> g(mtx);
    return ports;
  }

  void start() {
    open_websocket(opts.relay_uri, opts.token, opts.protocol, tunnel::subprotocol::host_v2,
                   tunnel::subprotocol::host_v1, opts.ca_file);
  }

  void on_connected(websocket_connect_result r) {
    if (!r.stream) return end(refusal_of(r));
    version = chosen(r.protocol, opts.protocol, tunnel::subprotocol::host_v1);
    ssh::session_config cfg;
    cfg.role = ssh::role::client;
    if (version == protocol_version::v1) {
      cfg.static_none = true;
    } else {
      // Offer none first: the relay authenticated us by token over (usually) TLS already.
      cfg.kex = {"none", "ecdh-sha2-nistp384", "ecdh-sha2-nistp256"};
    }
    start_link(r.stream, std::move(cfg), opts.idle_timeout, [](impl& self, ssh_link& on) {
      self.replies.push_back({0, false, true});  // its answer is matched in order, and dropped
      on.session().global_request(keepalive_request, true);
      on.drive();
    });
  }

  void end(const relay_outcome& o) { report_end(o); }

  void forward(std::uint16_t port) {
    if (version != protocol_version::v2 || !ready || !forwarded.insert(port).second) return;
    replies.push_back({port, true, false});
    link->session().global_request(
        tunnel::tcpip_forward, true,
        tunnel::encode(tunnel::port_forward_request{"127.0.0.1", port, opts.token}));
  }

  void unforward(std::uint16_t port) {
    if (version != protocol_version::v2 || !ready || !forwarded.erase(port)) return;
    replies.push_back({port, false, false});
    link->session().global_request(
        tunnel::cancel_tcpip_forward, true,
        tunnel::encode(tunnel::port_forward_request{"127.0.0.1", port, opts.token}));
  }

  void on_ready(ssh_link& l) override {
    ready = true;
    if (cb.connected) cb.connected(version);
    for (auto p : port_list()) forward(p);
    l.drive();
  }

  void on_global_reply(ssh_link&, const ssh::ev::global_reply& r) override {
    if (replies.empty()) return;
    const auto [port, added, keepalive] = replies.front();
    replies.pop_front();
    if (keepalive) return;
    if (!r.success)
      spdlog::warn("tunnel: relay refused to {} port {}", added ? "forward" : "stop forwarding", port);
    if (r.success && cb.port_changed) cb.port_changed(port, added);
  }

  void on_global_request(ssh_link& l, const ssh::ev::global_request& req) override {
    if (req.name == tunnel::refresh_ports) {
      for (auto p : port_list()) forward(p);
      if (req.want_reply) l.session().global_reply(true);
      return;
    }
    ssh_link_handler::on_global_request(l, req);
  }

  void open_stream(const std::shared_ptr<ssh_link>& on, const ssh::ev::channel_open& open,
                   ssh::bytes confirmation) {
    auto request = tunnel::decode_forwarded_channel_open(open.data);
    const auto allowed = port_list();
    if (!request || !allowed.count(static_cast<std::uint16_t>(request->port)))
      return on->session().reject_channel(open.id, ssh::open_failure::administratively_prohibited,
                                          "port not shared");
    auto self = shared_from_this();
    const auto port = static_cast<std::uint16_t>(request->port);
    const auto stream = ++next_stream;
    connect_local_and_bridge(
        ioc, on, open.id, port, std::move(confirmation),
        [self, stream, port] {
          self->link->post([self, stream, port] {
            ++self->streams_open;
            ++self->streams_total;
            if (self->cb.stream_opened) self->cb.stream_opened(stream, port);
          });
        },
        [self, stream](std::uint64_t in, std::uint64_t out) {
          self->link->post([self, stream, in, out] {
            --self->streams_open;
            if (self->cb.stream_closed) self->cb.stream_closed(stream, in, out);
          });
        });
  }

  void on_channel_open(ssh_link& l, const ssh::ev::channel_open& open) override {
    if (version == protocol_version::v2 && open.type == tunnel::forwarded_tcpip)
      // We do not run E2E encryption inside channels: answer that it is off.
      return open_stream(link, open, tunnel::encode_open_confirmation(false));
    if (version == protocol_version::v1 && open.type == tunnel::client_stream_channel) {
      l.session().accept_channel(open.id);
      auto session = std::make_shared<v1_session>();
      session->host = weak_from_this();
      ssh::session_config cfg;
      cfg.role = ssh::role::server;
      cfg.host_key = opts.host_key;
      session->link = std::make_shared<ssh_link>(make_channel_stream(link, open.id), cfg, *session);
      session->link->hold(session);
      v1_sessions[open.id] = session;
      session->link->start();
      return;
    }
    ssh_link_handler::on_channel_open(l, open);
  }

  void on_channel_closed(ssh_link&, std::uint32_t id) override { v1_sessions.erase(id); }

  void on_closed(ssh_link&, std::uint32_t reason, const std::string& message) override {
    for (auto& [_, s] : v1_sessions) s->link->close();
    end(ending_of(reason, ready, message));
  }
};

host_peer::host_peer(net::io_context& ioc, host_options options, relay_peer_callbacks callbacks)
    : impl_(std::make_shared<impl>(ioc, std::move(options), std::move(callbacks))) {}
host_peer::~host_peer() { stop(); }
void host_peer::start() { impl_->start(); }

void host_peer::stop() {
  if (auto l = impl_->begin_stop()) l->close(ssh::disconnect_reason::by_application, "host stopping");
}

void host_peer::add_port(std::uint16_t port) {
  {
    std::lock_guard<std::mutex> g(impl_->mtx);
    if (!impl_->ports.insert(port).second) return;
  }
  if (auto l = std::atomic_load(&impl_->link))
    l->post([i = impl_, port] {
      i->forward(port);
      for (auto& [_, s] : i->v1_sessions) s->forward(port), s->link->drive();
      i->link->drive();
    });
}

void host_peer::remove_port(std::uint16_t port) {
  {
    std::lock_guard<std::mutex> g(impl_->mtx);
    if (!impl_->ports.erase(port)) return;
  }
  if (auto l = std::atomic_load(&impl_->link))
    l->post([i = impl_, port] {
      i->unforward(port);
      for (auto& [_, s] : i->v1_sessions) s->unforward(port), s->link->drive();
      i->link->drive();
    });
}

std::set<std::uint16_t> host_peer::ports() const { return impl_->port_list(); }

host_peer::stats host_peer::current_stats() const {
  // Every number is an atomic the strand writes: a snapshot, not a consistent cut, which is all stats need.
  stats s;
  s.streams_open = impl_->streams_open.load();
  s.streams_total = impl_->streams_total.load();
  if (auto l = std::atomic_load(&impl_->link)) {
    s.bytes_in = l->counters().bytes_in.load();
    s.bytes_out = l->counters().bytes_out.load();
  }
  return s;
}

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
    const bool add = req.name == tunnel::tcpip_forward;
    if (!add && req.name != tunnel::cancel_tcpip_forward) return ssh_link_handler::on_global_request(l, req);
    auto r = tunnel::decode_port_forward_request(req.data);
    if (!r || r->port == 0) {
      if (req.want_reply) l.session().global_reply(false);
      return;
    }
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

}  // namespace sb::transport

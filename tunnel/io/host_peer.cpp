#include "tunnel/io/channel_stream.hpp"
#include "tunnel/io/relay_peer.hpp"

namespace sb::tunnel::io {

using namespace relay_peer_detail;

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

}  // namespace sb::tunnel::io

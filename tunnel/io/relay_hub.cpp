#include "tunnel/io/relay_hub.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "tunnel/io/channel_stream.hpp"
#include "tunnel/io/splice.hpp"

namespace sb::tunnel::io {

namespace ssh = tunnel::ssh;
using tunnel::protocol_version;

namespace {

ssh::session_config relay_session(std::shared_ptr<const ssh::ecdsa_key> key, bool offer_none) {
  ssh::session_config cfg;
  cfg.role = ssh::role::server;
  cfg.host_key = std::move(key);
  // The SDK host only works when the relay selects `none` (TUNNEL.md): offer it first to whoever lists it.
  cfg.kex = offer_none ? std::vector<std::string>{"none", "ecdh-sha2-nistp384", "ecdh-sha2-nistp256"}
                       : std::vector<std::string>{"ecdh-sha2-nistp384", "ecdh-sha2-nistp256"};
  return cfg;
}


using steady = std::chrono::steady_clock;

/// A relay WebSocket under the relay_limits: closed when its SSH handshake is not done in time, or when no
/// byte moved either way for the idle timeout. All calls on the inner stream's executor (the link's strand).
class guarded_stream : public byte_stream, public std::enable_shared_from_this<guarded_stream> {
 public:
  guarded_stream(std::shared_ptr<byte_stream> inner, const relay_limits& limits, bool guard_idle,
                 std::shared_ptr<relay_counters> counters, std::string what)
      : inner_(std::move(inner)),
        timer_(inner_->executor()),
        handshake_timeout_(limits.ssh_handshake_timeout),
        idle_timeout_(guard_idle ? limits.idle_timeout : std::chrono::milliseconds::zero()),
        counters_(std::move(counters)),
        what_(std::move(what)) {}

  /// Arms the deadlines; call once, before the stream is handed to its user.
  void start() {
    boost::asio::dispatch(inner_->executor(), [self = shared_from_this()] {
      self->started_ = self->last_activity_ = steady::now();
      self->handshaken_ = self->handshake_timeout_.count() == 0;
      self->arm();
    });
  }

  /// The SSH session is ready: the handshake deadline no longer applies.
  void handshake_done() { handshaken_ = true; }
  /// For a stream the relay only pipes (V1 end to end), the first bytes from the peer stand for the
  /// handshake, since the session inside is not the relay's to see. On the strand, before the first read.
  void handshake_on_first_bytes() { handshake_on_first_bytes_ = true; }

  std::uint64_t bytes_in() const { return bytes_in_; }
  std::uint64_t bytes_out() const { return bytes_out_; }

  boost::asio::any_io_executor executor() override { return inner_->executor(); }

  void read(std::function<void(boost::system::error_code, tunnel::ssh::bytes)> done) override {
    inner_->read([self = shared_from_this(), done = std::move(done)](boost::system::error_code ec,
                                                                     tunnel::ssh::bytes data) {
      if (!data.empty()) {
        self->last_activity_ = steady::now();
        self->bytes_in_ += data.size();
        self->counters_->bytes_in += data.size();
        if (self->handshake_on_first_bytes_) self->handshaken_ = true;
      }
      if (ec) self->stop();
      done(ec, std::move(data));
    });
  }

  void write(tunnel::ssh::bytes data, std::function<void(boost::system::error_code)> done) override {
    last_activity_ = steady::now();
    bytes_out_ += data.size();
    counters_->bytes_out += data.size();
    inner_->write(std::move(data),
                  [self = shared_from_this(), done = std::move(done)](boost::system::error_code ec) {
                    self->last_activity_ = steady::now();
                    done(ec);
                  });
  }

  void close() override {
    stop();
    inner_->close();
  }

 private:
  void stop() {
    stopped_ = true;
    timer_.cancel();
  }

  void arm() {
    if (stopped_) return;
    std::optional<steady::time_point> next;
    if (!handshaken_) next = started_ + handshake_timeout_;
    if (idle_timeout_.count() > 0) {
      const auto idle_at = last_activity_ + idle_timeout_;
      if (!next || idle_at < *next) next = idle_at;
    }
    if (!next) return;
    timer_.expires_at(*next);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->check();
    });
  }

  void check() {
    if (stopped_) return;
    const auto now = steady::now();
    if (!handshaken_ && now >= started_ + handshake_timeout_) {
      const auto total = ++counters_->ssh_handshake_timeouts;
      spdlog::warn(
          "relay: closing {}: no SSH handshake within {} ms (ssh handshake timeouts: {}, idle "
          "timeouts: {})",
          what_, handshake_timeout_.count(), total, counters_->idle_timeouts.load());
      return close();
    }
    if (idle_timeout_.count() > 0 && now >= last_activity_ + idle_timeout_) {
      const auto total = ++counters_->idle_timeouts;
      spdlog::info("relay: closing {}: idle for {} ms (idle timeouts: {}, ssh handshake timeouts: {})", what_,
                   idle_timeout_.count(), total, counters_->ssh_handshake_timeouts.load());
      return close();
    }
    arm();
  }

  std::shared_ptr<byte_stream> inner_;
  boost::asio::steady_timer timer_;
  const std::chrono::milliseconds handshake_timeout_, idle_timeout_;
  bool handshake_on_first_bytes_ = false;
  std::shared_ptr<relay_counters> counters_;
  const std::string what_;
  steady::time_point started_{}, last_activity_{};
  bool handshaken_ = false;
  bool stopped_ = false;
  std::atomic<std::uint64_t> bytes_in_{0}, bytes_out_{0};  // written on the strand, read anywhere
};

}  // namespace

const char* name_of(relay_role role) {
  switch (role) {
    case relay_role::host:
      return "host";
    case relay_role::client:
      return "client";
    case relay_role::piped_client:
      return "piped client";
  }
  return "?";
}

// -- host side
// ------------------------------------------------------------------------------------------------

struct relay_hub::host_conn : relay_host_handle, ssh_link_handler, std::enable_shared_from_this<host_conn> {
  std::uint64_t id_ = 0;
  std::string tunnel_id_;
  protocol_version version_ = protocol_version::v2;
  std::shared_ptr<relay_counters> counters;
  std::shared_ptr<ssh_link> link;
  std::shared_ptr<guarded_stream> guard;
  std::shared_ptr<relay_link_events> events;
  std::atomic<bool> ready{false};
  // Link strand:
  bool ended = false;
  bool v1_ports_wanted = false;
  std::map<std::uint32_t, std::string> forwarded;  // what the host said it forwards, for a V1 host's end
  /// V1: the relay's own session inside the host (see serve_terminated_clients), published with
  /// atomic_store because clients' strands read it to open channels.
  std::shared_ptr<ssh_link> v1_ports;

  // relay_host_handle
  std::uint64_t id() const override { return id_; }
  relay_role role() const override { return relay_role::host; }
  const std::string& tunnel_id() const override { return tunnel_id_; }
  protocol_version version() const override { return version_; }
  relay_link_stats stats() const override {
    return {guard->bytes_in(), guard->bytes_out(), link->counters().channels_opened.load(), ready.load()};
  }
  void close(std::uint32_t reason, const std::string& why) override {
    if (reason == 0) return link->abort(why);
    link->close(reason, why);
  }
  void serve_terminated_clients() override {
    link->post([self = shared_from_this()] {
      self->v1_ports_wanted = true;
      self->open_v1_ports();
    });
  }

  /// The channel a relay-terminated client's forwarded-tcpip channel opens on: the relay session of a V2
  /// host, the relay's own session inside a V1 host. Null when there is none (yet).
  std::shared_ptr<ssh_link> channel_target() const {
    return version_ == protocol_version::v2 ? link : std::atomic_load(&v1_ports);
  }

  void open_v1_ports();

  // ssh_link_handler
  void on_ready(ssh_link&) override {
    guard->handshake_done();
    ready = true;
    ++counters->ssh_handshakes;
    spdlog::info("relay: host of tunnel {} ready ({})", tunnel_id_, version_name(version_));
    events->ready();
    open_v1_ports();
  }

  /// tcpip-forward and cancel-tcpip-forward, on the relay session (V2) or the relay's own session inside a
  /// V1 host; `l` is the link the request came on, and its answer goes there.
  void on_global_request(ssh_link& l, const ssh::ev::global_request& req) override {
    const auto change = tunnel::read_port_forward(req.name, req.data);
    if (!change) return ssh_link_handler::on_global_request(l, req);
    if (!change->request) {
      if (req.want_reply) l.session().global_reply(false);
      return;
    }
    const bool add = change->add;
    const auto& r = change->request;
    if (add)
      forwarded[r->port] = r->address;
    else
      forwarded.erase(r->port);
    if (!ended) events->port_changed(r->port, r->address, add);
    if (req.want_reply) l.session().global_reply(true, add ? tunnel::encode_port_success(r->port) : ssh::bytes{});
  }

  /// The relay's own session inside a V1 host ended while the host stays: the ports it told are gone.
  void v1_ports_ended() {
    std::atomic_store(&v1_ports, std::shared_ptr<ssh_link>());
    auto ports = std::move(forwarded);
    forwarded.clear();
    if (ended) return;
    for (const auto& [port, _] : ports) events->port_changed(port, {}, false);
  }

  void on_closed(ssh_link&, std::uint32_t reason, const std::string& message) override {
    if (ended) return;
    ended = true;
    --counters->hosts_open;
    spdlog::info("relay: host of tunnel {} gone ({}: {})", tunnel_id_, reason, message);
    events->closed(reason, message);
  }
};

/// The relay as a client of a V1 host, in a client-ssh-session-stream channel: the host's tcpip-forward
/// requests here are its ports, handled as a V2 host's on the relay session.
struct relay_hub::v1_port_session : ssh_link_handler {
  std::weak_ptr<host_conn> host;

  void on_global_request(ssh_link& l, const ssh::ev::global_request& req) override {
    if (auto h = host.lock()) return h->on_global_request(l, req);
    ssh_link_handler::on_global_request(l, req);
  }

  void on_closed(ssh_link&, std::uint32_t reason, const std::string& message) override {
    auto h = host.lock();
    if (!h) return;
    // Its link runs on the host link's strand (a channel stream of it), so the host's state is ours here.
    spdlog::info("relay: the relay's session in the V1 host of tunnel {} ended ({}: {})", h->tunnel_id_,
                 reason, message);
    h->v1_ports_ended();
  }
};

void relay_hub::host_conn::open_v1_ports() {
  if (version_ != protocol_version::v1 || !ready || !v1_ports_wanted || ended || link->closed() ||
      std::atomic_load(&v1_ports))
    return;
  const auto channel = link->session().open_channel(tunnel::client_stream_channel);
  // A real key exchange with the host's own key; the relay already knows this host by its token.
  ssh::session_config cfg;
  cfg.role = ssh::role::client;
  auto handler = std::make_shared<v1_port_session>();
  handler->host = weak_from_this();
  auto inner = std::make_shared<ssh_link>(make_channel_stream(link, channel), cfg, *handler);
  inner->hold(handler);
  std::atomic_store(&v1_ports, inner);
  inner->start();
  link->drive();
}

// -- client side
// ----------------------------------------------------------------------------------------------

struct relay_hub::client_conn : relay_client_handle, ssh_link_handler, std::enable_shared_from_this<client_conn> {
  std::uint64_t id_ = 0;
  std::string tunnel_id_;
  protocol_version version_ = protocol_version::v2;
  std::shared_ptr<relay_counters> counters;
  std::shared_ptr<const ssh::ecdsa_key> key;
  std::shared_ptr<guarded_stream> guard;
  std::shared_ptr<relay_link_events> events;
  std::shared_ptr<ssh_link> link;  // set on the strand when the relay terminates the client's session
  std::atomic<relay_role> role_{relay_role::client};
  std::atomic<bool> ready{false};
  // Stream strand:
  bool started = false;
  bool ended = false;
  relay_tunnel_view view;
  std::set<std::uint32_t> announced;

  // relay_client_handle
  std::uint64_t id() const override { return id_; }
  relay_role role() const override { return role_; }
  const std::string& tunnel_id() const override { return tunnel_id_; }
  protocol_version version() const override { return version_; }
  relay_link_stats stats() const override {
    auto l = std::atomic_load(&link);
    return {guard->bytes_in(), guard->bytes_out(), l ? l->counters().channels_opened.load() : 0, ready.load()};
  }
  void close(std::uint32_t reason, const std::string& why) override {
    if (auto l = std::atomic_load(&link)) {
      if (reason == 0) return l->abort(why);
      return l->close(reason, why);
    }
    boost::asio::post(guard->executor(), [g = guard] { g->close(); });
  }
  void show(relay_tunnel_view v) override {
    boost::asio::post(guard->executor(), [self = shared_from_this(), v = std::move(v)]() mutable {
      self->apply(std::move(v));
    });
  }

  void apply(relay_tunnel_view v) {
    // A piped client's session is the host's own: the relay has nothing to announce to it.
    if (ended || role_ == relay_role::piped_client) return;
    const bool first = !started;
    started = true;
    if (first && version_ == protocol_version::v1 && v.host && v.host->version() == protocol_version::v1)
      return pipe_to(std::static_pointer_cast<host_conn>(v.host));
    view = std::move(v);
    if (first) return start_session();
    if (!ready) return;
    for (auto it = announced.begin(); it != announced.end();)
      if (!view.ports.count(*it))
        withdraw(*(it++));
      else
        ++it;
    for (const auto& [port, _] : view.ports) announce(port);
  }

  /// Both ends speak V1: their SSH session is end to end; the relay only moves its bytes.
  void pipe_to(const std::shared_ptr<host_conn>& host) {
    role_ = relay_role::piped_client;
    guard->handshake_on_first_bytes();
    ready = true;
    events->ready();
    open_and_splice_stream(guard, host->link, tunnel::client_stream_channel,
                           [self = shared_from_this()] { self->end(ssh::disconnect_reason::by_application, "piped session ended"); });
  }

  /// The relay terminates the session: a V1 client expects a real key exchange with the host key it was
  /// given, the relay's own (published in the endpoint's hostPublicKeys).
  void start_session() {
    auto l = std::make_shared<ssh_link>(guard, relay_session(key, version_ == protocol_version::v2), *this);
    l->hold(shared_from_this());
    std::atomic_store(&link, l);
    l->start();
  }

  void announce(std::uint32_t port) {
    if (!ready || !announced.insert(port).second) return;
    link->session().global_request(tunnel::tcpip_forward, true,
                                   tunnel::encode(tunnel::port_forward_request{"127.0.0.1", port, {}}));
    link->drive();
  }

  void withdraw(std::uint32_t port) {
    if (!announced.erase(port)) return;
    link->session().global_request(tunnel::cancel_tcpip_forward, true,
                                   tunnel::encode(tunnel::port_forward_request{"127.0.0.1", port, {}}));
    link->drive();
  }

  void end(std::uint32_t reason, const std::string& message) {
    if (ended) return;
    ended = true;
    --counters->clients_open;
    events->closed(reason, message);
  }

  // ssh_link_handler
  void on_ready(ssh_link&) override {
    guard->handshake_done();
    ready = true;
    ++counters->ssh_handshakes;
    events->ready();
    for (const auto& [port, _] : view.ports) announce(port);
  }

  void on_global_request(ssh_link& l, const ssh::ev::global_request& req) override {
    if (req.name == tunnel::refresh_ports) {
      for (const auto& [port, _] : view.ports) announce(port);
      if (req.want_reply) l.session().global_reply(true);
      return;
    }
    ssh_link_handler::on_global_request(l, req);
  }

  void on_channel_open(ssh_link& l, const ssh::ev::channel_open& open) override {
    if (open.type != tunnel::forwarded_tcpip && open.type != tunnel::direct_tcpip)
      return ssh_link_handler::on_channel_open(l, open);
    auto request = tunnel::decode_forwarded_channel_open(open.data);
    auto host = std::static_pointer_cast<host_conn>(view.host);
    auto port = request ? view.ports.find(request->port) : view.ports.end();
    const auto target = host ? host->channel_target() : nullptr;
    if (!request || !target || port == view.ports.end())
      return l.session().reject_channel(open.id, ssh::open_failure::connect_failed, "no host serves that port");
    const bool v2_host = host->version() == protocol_version::v2;
    // The relay always sends the extended open to a V2 host (devtunnels-protocol.md §3), the plain one to V1.
    tunnel::forwarded_channel_open to_host;
    to_host.host = port->second;
    to_host.port = request->port;
    to_host.originator_ip = request->originator_ip;
    to_host.originator_port = request->originator_port;
    to_host.extended = v2_host;
    to_host.e2e_requested = v2_host && version_ == protocol_version::v2 && request->e2e_requested;
    const bool answer_e2e = version_ == protocol_version::v2 && request->extended;
    auto self = shared_from_this();
    const auto channel = open.id;
    open_and_splice(link, channel, target, tunnel::forwarded_tcpip, tunnel::encode(to_host),
                    [self, channel, answer_e2e](const ssh::bytes& confirmation) {
                      const bool e2e = tunnel::decode_open_confirmation(confirmation);
                      self->link->post([self, channel, answer_e2e, e2e] {
                        self->link->session().accept_channel(
                            channel, answer_e2e ? tunnel::encode_open_confirmation(e2e) : ssh::bytes{});
                        self->link->drive();
                      });
                    });
  }

  void on_closed(ssh_link&, std::uint32_t reason, const std::string& message) override { end(reason, message); }
};

// -- the hub
// --------------------------------------------------------------------------------------------------

relay_hub::relay_hub(std::shared_ptr<const ssh::ecdsa_key> relay_key, relay_limits limits,
                     std::shared_ptr<relay_control> control, std::shared_ptr<relay_counters> counters)
    : key_(std::move(relay_key)), limits_(limits), control_(std::move(control)), counters_(std::move(counters)) {}
relay_hub::~relay_hub() = default;

void relay_hub::add_host(const std::string& tunnel_id, protocol_version version,
                         std::shared_ptr<byte_stream> stream) {
  ++counters_->hosts_accepted;
  ++counters_->hosts_open;
  auto conn = std::make_shared<host_conn>();
  conn->id_ = ++next_id_;
  conn->tunnel_id_ = tunnel_id;
  conn->version_ = version;
  conn->counters = counters_;
  auto cfg = relay_session(key_, true);
  cfg.static_none = version == protocol_version::v1;
  conn->guard = std::make_shared<guarded_stream>(std::move(stream), limits_, false, counters_,
                                                 "a host connection of tunnel " + tunnel_id);
  conn->guard->start();
  conn->link = std::make_shared<ssh_link>(conn->guard, cfg, *conn);
  conn->link->hold(conn);
  // Reported before the session starts, so nothing it does can come before the control plane knows it.
  conn->events = control_->host_opened(conn);
  conn->link->start();
}

void relay_hub::add_client(const std::string& tunnel_id, protocol_version version,
                           std::shared_ptr<byte_stream> stream) {
  ++counters_->clients_accepted;
  ++counters_->clients_open;
  auto conn = std::make_shared<client_conn>();
  conn->id_ = ++next_id_;
  conn->tunnel_id_ = tunnel_id;
  conn->version_ = version;
  conn->counters = counters_;
  conn->key = key_;
  conn->guard = std::make_shared<guarded_stream>(std::move(stream), limits_, true, counters_,
                                                 "a client connection of tunnel " + tunnel_id);
  conn->guard->start();
  // Nothing is read or written until the control plane shows the client its tunnel (relay_client_handle).
  conn->events = control_->client_opened(conn);
}

void relay_hub::host_version(const std::string& tunnel_id,
                             std::function<void(std::optional<protocol_version>)> done) const {
  control_->host_version(tunnel_id, std::move(done));
}

}  // namespace sb::tunnel::io

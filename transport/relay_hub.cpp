#include "transport/relay_hub.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>

#include "transport/splice.hpp"
#include "transport/tunnel_peers.hpp"

namespace sb::transport {

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

const char* name_of(protocol_version v) { return v == protocol_version::v2 ? "v2" : "v1"; }

using steady = std::chrono::steady_clock;

/// A relay WebSocket under the relay_limits: closed when its SSH handshake is not done in time, or when no
/// byte moved either way for the idle timeout. All calls on the inner stream's executor (the link's strand).
class guarded_stream : public byte_stream, public std::enable_shared_from_this<guarded_stream> {
 public:
  /// `handshake_on_first_bytes`: for a stream the relay only pipes (V1 end to end), the first bytes from
  /// the peer stand for the handshake, since the session inside is not the relay's to see.
  guarded_stream(std::shared_ptr<byte_stream> inner, const relay_limits& limits, bool guard_idle,
                 bool handshake_on_first_bytes, std::shared_ptr<relay_counters> counters, std::string what)
      : inner_(std::move(inner)),
        timer_(inner_->executor()),
        handshake_timeout_(limits.ssh_handshake_timeout),
        idle_timeout_(guard_idle ? limits.idle_timeout : std::chrono::milliseconds::zero()),
        handshake_on_first_bytes_(handshake_on_first_bytes),
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

  boost::asio::any_io_executor executor() override { return inner_->executor(); }

  void read(std::function<void(boost::system::error_code, tunnel::ssh::bytes)> done) override {
    inner_->read([self = shared_from_this(), done = std::move(done)](boost::system::error_code ec,
                                                                     tunnel::ssh::bytes data) {
      if (!data.empty()) {
        self->last_activity_ = steady::now();
        if (self->handshake_on_first_bytes_) self->handshaken_ = true;
      }
      if (ec) self->stop();
      done(ec, std::move(data));
    });
  }

  void write(tunnel::ssh::bytes data, std::function<void(boost::system::error_code)> done) override {
    last_activity_ = steady::now();
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
  const bool handshake_on_first_bytes_;
  std::shared_ptr<relay_counters> counters_;
  const std::string what_;
  steady::time_point started_{}, last_activity_{};
  bool handshaken_ = false;
  bool stopped_ = false;
};

}  // namespace

struct relay_hub::tunnel_slot {
  std::shared_ptr<host_conn> host;
  std::map<std::uint32_t, std::string> ports;  // port -> address the host forwarded it with
  std::map<const client_conn*, std::shared_ptr<client_conn>> clients;
  std::uint64_t hosts_replaced = 0;
};

// -- host side
// ------------------------------------------------------------------------------------------------

struct relay_hub::host_conn : ssh_link_handler, std::enable_shared_from_this<host_conn> {
  std::weak_ptr<relay_hub> hub;
  std::string tunnel_id;
  protocol_version version = protocol_version::v2;
  std::shared_ptr<ssh_link> link;
  std::shared_ptr<guarded_stream> guard;
  bool ready = false;  // link strand
  /// V1: the relay's own session inside the host (see open_v1_ports), published with atomic_store because
  /// clients' strands read it to open channels.
  std::shared_ptr<ssh_link> v1_ports;

  void on_ready(ssh_link&) override {
    guard->handshake_done();
    ready = true;
    spdlog::info("relay: host of tunnel {} ready ({})", tunnel_id, name_of(version));
    if (auto h = hub.lock(); h && h->has_clients(tunnel_id)) open_v1_ports();
  }

  /// A V1 host tells its ports only inside a client's own SSH session, never to the relay. For the clients
  /// whose session the relay terminates (they came before the host, or speak V2), the relay opens one such
  /// session of its own, as the host's client, learns the ports there and opens their channels through it.
  /// Link strand; once per host.
  void open_v1_ports();

  void on_global_request(ssh_link& l, const ssh::ev::global_request& req) override {
    auto h = hub.lock();
    const bool add = req.name == tunnel::tcpip_forward;
    if (h && (add || req.name == tunnel::cancel_tcpip_forward)) {
      auto r = tunnel::decode_port_forward_request(req.data);
      if (!r || r->port == 0) {
        if (req.want_reply) l.session().global_reply(false);
        return;
      }
      if (add)
        h->port_added(tunnel_id, this, r->port, r->address);
      else
        h->port_removed(tunnel_id, this, r->port);
      if (req.want_reply)
        l.session().global_reply(true, add ? tunnel::encode_port_success(r->port) : ssh::bytes{});
      return;
    }
    ssh_link_handler::on_global_request(l, req);
  }

  void on_closed(ssh_link&, std::uint32_t reason, const std::string& message) override {
    spdlog::info("relay: host of tunnel {} gone ({}: {})", tunnel_id, reason, message);
    if (auto h = hub.lock()) h->host_gone(tunnel_id, this);
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
    auto hub = h ? h->hub.lock() : nullptr;
    if (!hub) return;
    // Only this session told the relay a V1 host's ports: they are gone with it, and a later client may
    // open a new one.
    h->link->post([h] { std::atomic_store(&h->v1_ports, std::shared_ptr<ssh_link>()); });
    for (auto port : hub->ports_of(h->tunnel_id)) hub->port_removed(h->tunnel_id, h.get(), port);
    spdlog::info("relay: the relay's session in the V1 host of tunnel {} ended ({}: {})", h->tunnel_id, reason,
                 message);
  }
};

void relay_hub::host_conn::open_v1_ports() {
  if (version != protocol_version::v1 || !ready || link->closed() || std::atomic_load(&v1_ports)) return;
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

struct relay_hub::client_conn : ssh_link_handler, std::enable_shared_from_this<client_conn> {
  std::weak_ptr<relay_hub> hub;
  std::string tunnel_id;
  protocol_version version = protocol_version::v2;
  std::shared_ptr<ssh_link> link;     // set when the relay terminates the client's SSH session
  std::set<std::uint32_t> announced;  // link strand
  std::shared_ptr<guarded_stream> guard;
  bool ready = false;

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

  void on_ready(ssh_link&) override {
    guard->handshake_done();
    ready = true;
    auto h = hub.lock();
    if (!h) return;
    for (auto port : h->ports_of(tunnel_id)) announce(port);
    if (auto host = h->host_of(tunnel_id); host && host->version == protocol_version::v1)
      host->link->post([host] { host->open_v1_ports(); });
  }

  void on_global_request(ssh_link& l, const ssh::ev::global_request& req) override {
    if (req.name == tunnel::refresh_ports) {
      if (auto h = hub.lock())
        for (auto port : h->ports_of(tunnel_id)) announce(port);
      if (req.want_reply) l.session().global_reply(true);
      return;
    }
    ssh_link_handler::on_global_request(l, req);
  }

  void on_channel_open(ssh_link& l, const ssh::ev::channel_open& open) override {
    if (open.type != tunnel::forwarded_tcpip && open.type != tunnel::direct_tcpip)
      return ssh_link_handler::on_channel_open(l, open);
    auto request = tunnel::decode_forwarded_channel_open(open.data);
    auto h = hub.lock();
    auto host = h ? h->host_of(tunnel_id) : nullptr;
    std::string address;
    if (h) {
      std::lock_guard<std::mutex> g(h->mtx_);
      auto slot = h->tunnels_.find(tunnel_id);
      if (slot != h->tunnels_.end() && request) {
        auto p = slot->second->ports.find(request->port);
        if (p != slot->second->ports.end()) address = p->second;
      }
    }
    const bool v2_host = host && host->version == protocol_version::v2;
    // A V2 host's channels open on its relay session; a V1 host's inside the relay's own session in it.
    const auto target = !host ? nullptr : v2_host ? host->link : std::atomic_load(&host->v1_ports);
    if (!request || !target || address.empty())
      return l.session().reject_channel(open.id, ssh::open_failure::connect_failed,
                                        "no host serves that port");
    // The relay always sends the extended open to a V2 host (devtunnels-protocol.md §3), the plain one to V1.
    tunnel::forwarded_channel_open to_host;
    to_host.host = address;
    to_host.port = request->port;
    to_host.originator_ip = request->originator_ip;
    to_host.originator_port = request->originator_port;
    to_host.extended = v2_host;
    to_host.e2e_requested = v2_host && version == protocol_version::v2 && request->e2e_requested;
    const bool answer_e2e = version == protocol_version::v2 && request->extended;
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

  void on_closed(ssh_link&, std::uint32_t, const std::string&) override {
    if (auto h = hub.lock()) h->client_gone(tunnel_id, this);
  }
};

// -- the hub
// --------------------------------------------------------------------------------------------------

relay_hub::relay_hub(std::shared_ptr<const ssh::ecdsa_key> relay_key, relay_limits limits)
    : key_(std::move(relay_key)), limits_(limits) {}
relay_hub::~relay_hub() = default;

void relay_hub::add_host(const std::string& tunnel_id, protocol_version version,
                         std::shared_ptr<byte_stream> stream) {
  ++counters_->hosts_accepted;
  auto conn = std::make_shared<host_conn>();
  conn->hub = weak_from_this();
  conn->tunnel_id = tunnel_id;
  conn->version = version;
  auto cfg = relay_session(key_, true);
  cfg.static_none = version == protocol_version::v1;
  conn->guard = std::make_shared<guarded_stream>(std::move(stream), limits_, false, false, counters_,
                                                 "a host connection of tunnel " + tunnel_id);
  conn->guard->start();
  conn->link = std::make_shared<ssh_link>(conn->guard, cfg, *conn);
  conn->link->hold(conn);
  std::shared_ptr<host_conn> previous;
  {
    std::lock_guard<std::mutex> g(mtx_);
    auto& slot = tunnels_[tunnel_id];
    if (!slot) slot = std::make_shared<tunnel_slot>();
    previous = std::move(slot->host);
    if (previous) ++slot->hosts_replaced;
    slot->host = conn;
    slot->ports.clear();
  }
  if (previous) {
    spdlog::info("relay: a new host for tunnel {} replaces the previous one", tunnel_id);
    previous->link->close(ssh::disconnect_reason::too_many_connections,
                          "another host connected to this tunnel");
  }
  conn->link->start();
}

void relay_hub::add_client(const std::string& tunnel_id, protocol_version version,
                           std::shared_ptr<byte_stream> stream) {
  ++counters_->clients_accepted;
  auto host = host_of(tunnel_id);
  if (version == protocol_version::v1 && host && host->version == protocol_version::v1) {
    // Both ends speak V1: their SSH session is end to end; the relay only moves its bytes.
    auto guard = std::make_shared<guarded_stream>(std::move(stream), limits_, true, true, counters_,
                                                  "a V1 client connection of tunnel " + tunnel_id);
    guard->start();
    open_and_splice_stream(guard, host->link, tunnel::client_stream_channel);
    return;
  }
  auto conn = std::make_shared<client_conn>();
  conn->hub = weak_from_this();
  conn->tunnel_id = tunnel_id;
  conn->version = version;
  // A V1 client expects a real key exchange with the host key it was given: the relay's own, published in
  // the endpoint's hostPublicKeys.
  conn->guard = std::make_shared<guarded_stream>(std::move(stream), limits_, true, false, counters_,
                                                 "a client connection of tunnel " + tunnel_id);
  conn->guard->start();
  conn->link =
      std::make_shared<ssh_link>(conn->guard, relay_session(key_, version == protocol_version::v2), *conn);
  conn->link->hold(conn);
  {
    std::lock_guard<std::mutex> g(mtx_);
    auto& slot = tunnels_[tunnel_id];
    if (!slot) slot = std::make_shared<tunnel_slot>();
    slot->clients[conn.get()] = conn;
  }
  conn->link->start();
}

std::optional<protocol_version> relay_hub::host_protocol(const std::string& tunnel_id) const {
  auto host = host_of(tunnel_id);
  if (!host) return std::nullopt;
  return host->version;
}

std::shared_ptr<relay_hub::host_conn> relay_hub::host_of(const std::string& tunnel_id) const {
  std::lock_guard<std::mutex> g(mtx_);
  auto it = tunnels_.find(tunnel_id);
  return it == tunnels_.end() ? nullptr : it->second->host;
}

bool relay_hub::has_clients(const std::string& tunnel_id) const {
  std::lock_guard<std::mutex> g(mtx_);
  auto it = tunnels_.find(tunnel_id);
  return it != tunnels_.end() && !it->second->clients.empty();
}

std::set<std::uint32_t> relay_hub::ports_of(const std::string& tunnel_id) const {
  std::lock_guard<std::mutex> g(mtx_);
  std::set<std::uint32_t> out;
  auto it = tunnels_.find(tunnel_id);
  if (it != tunnels_.end())
    for (const auto& [port, _] : it->second->ports) out.insert(port);
  return out;
}

void relay_hub::port_added(const std::string& tunnel_id, const host_conn* host, std::uint32_t port,
                           const std::string& address) {
  std::vector<std::shared_ptr<client_conn>> clients;
  {
    std::lock_guard<std::mutex> g(mtx_);
    auto it = tunnels_.find(tunnel_id);
    if (it == tunnels_.end() || it->second->host.get() != host) return;
    it->second->ports[port] = address;
    for (const auto& [_, c] : it->second->clients) clients.push_back(c);
  }
  spdlog::info("relay: tunnel {} forwards port {}", tunnel_id, port);
  for (auto& c : clients) c->link->post([c, port] { c->announce(port); });
}

void relay_hub::port_removed(const std::string& tunnel_id, const host_conn* host, std::uint32_t port) {
  std::vector<std::shared_ptr<client_conn>> clients;
  {
    std::lock_guard<std::mutex> g(mtx_);
    auto it = tunnels_.find(tunnel_id);
    if (it == tunnels_.end() || it->second->host.get() != host) return;
    it->second->ports.erase(port);
    for (const auto& [_, c] : it->second->clients) clients.push_back(c);
  }
  for (auto& c : clients) c->link->post([c, port] { c->withdraw(port); });
}

void relay_hub::host_gone(const std::string& tunnel_id, const host_conn* host) {
  std::shared_ptr<host_conn> keep;
  std::vector<std::shared_ptr<client_conn>> clients;
  std::map<std::uint32_t, std::string> ports;
  {
    std::lock_guard<std::mutex> g(mtx_);
    auto it = tunnels_.find(tunnel_id);
    if (it == tunnels_.end() || it->second->host.get() != host) return;
    keep = std::move(it->second->host);
    ports = std::move(it->second->ports);
    it->second->ports.clear();
    for (const auto& [_, c] : it->second->clients) clients.push_back(c);
  }
  for (auto& c : clients)
    c->link->post([c, ports] {
      for (const auto& [port, _] : ports) c->withdraw(port);
    });
  // Released later: we are inside one of this connection's own callbacks.
  keep->link->post([keep] {});
}

void relay_hub::client_gone(const std::string& tunnel_id, const client_conn* client) {
  std::shared_ptr<client_conn> keep;
  {
    std::lock_guard<std::mutex> g(mtx_);
    auto it = tunnels_.find(tunnel_id);
    if (it == tunnels_.end()) return;
    auto c = it->second->clients.find(client);
    if (c == it->second->clients.end()) return;
    keep = std::move(c->second);
    it->second->clients.erase(c);
  }
  keep->link->post([keep] {});
}

void relay_hub::close_all() {
  std::vector<std::shared_ptr<ssh_link>> links;
  {
    std::lock_guard<std::mutex> g(mtx_);
    for (const auto& [_, slot] : tunnels_) {
      if (slot->host) links.push_back(slot->host->link);
      for (const auto& [__, c] : slot->clients) links.push_back(c->link);
    }
  }
  // Drop rather than say goodbye: hosts and clients treat a lost connection as retryable and come back
  // once the relay is up again, as they would after a crash.
  for (auto& l : links) l->abort();
}

relay_load relay_hub::load() const {
  std::lock_guard<std::mutex> g(mtx_);
  relay_load out;
  for (const auto& [_, slot] : tunnels_) {
    out.tunnels += (slot->host || !slot->clients.empty()) ? 1 : 0;
    out.hosts += slot->host ? 1 : 0;
    out.clients += slot->clients.size();
    out.hosts_replaced += slot->hosts_replaced;
  }
  return out;
}

}  // namespace sb::transport

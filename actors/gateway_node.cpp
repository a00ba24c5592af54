#include "actors/gateway_node.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <caf/all.hpp>
#include <mutex>
#include <thread>

#include "actors/admin_commands.hpp"
#include "actors/spawn.hpp"
#include "actors/tunnel_host.hpp"
#include "actors/tunnel_setup.hpp"
#include "cluster/local_bus.hpp"
#include "cluster/nats_bus.hpp"
#include "protocol/ids.hpp"
#include "transport/admin_socket.hpp"
#include "transport/bind_address.hpp"
#include "transport/io_pool.hpp"
#include "transport/tls.hpp"
#include "transport/ws_server.hpp"

namespace sb::actors {

namespace {

constexpr unsigned io_threads = 2;

/// Forwards one connection's events to its client actor as typed messages.
class actor_events : public transport::connection_events {
 public:
  explicit actor_events(client_actor client) : client_(std::move(client)) {}
  void on_message(protocol::decode_result msg, std::chrono::steady_clock::time_point received) override {
    caf::anon_send(client_, inbound_message{std::move(msg), received});
  }
  void on_closed(std::uint16_t code) override { caf::anon_send(client_, connection_closed_atom_v, code); }

 private:
  client_actor client_;
};

cluster::nats_settings nats_settings_from(const protocol::gateway_config& c, const std::string& node_id) {
  cluster::nats_settings s;
  s.servers = c.cluster_nats;
  s.client_name = node_id;
  s.token = c.cluster_nats_token;
  s.user = c.cluster_nats_user;
  s.password = c.cluster_nats_password;
  s.creds_file = c.cluster_nats_creds;
  s.nkey_public = c.cluster_nats_nkey;
  s.nkey_seed_file = c.cluster_nats_nkey_seed;
  s.ca_file = c.cluster_nats_ca;
  s.kv_replicas = static_cast<int>(c.cluster_kv_replicas);
  return s;
}

/// A session record holds the metadata and every member; NATS refuses messages over 1 MiB by default.
constexpr std::size_t session_record_limit = 1024 * 1024 - 4096;

/// The bus this node coordinates through: NATS when configured, else one in this process.
cluster_ptr make_cluster(const protocol::gateway_config& c, const std::string& node_id) {
  auto out = std::make_shared<cluster_context>();
  out->name = c.cluster_name;
  out->node_id = node_id;
  out->shared = c.clustered();
  out->bus = c.clustered() ? cluster::make_nats_bus(nats_settings_from(c, node_id)) : cluster::make_local_bus();
  out->sessions = out->bus->bucket(cluster_context::bucket_name(c.cluster_name, "sessions"), session_record_limit);
  out->presence = out->bus->bucket(cluster_context::bucket_name(c.cluster_name, "presence"), 4096);
  out->agents = out->bus->bucket(cluster_context::bucket_name(c.cluster_name, "agents"), session_record_limit);
  return out;
}

transport::server_options server_options_from(const protocol::gateway_config& c) {
  transport::server_options o;
  o.address = transport::resolve_bind_address(c.bind);
  o.port = c.port;
  o.path = c.path;
  o.cors_origins = c.cors_origins;
  o.trusted_proxies = c.trusted_proxies;
  o.max_payload = c.max_payload;
  o.per_message_deflate = c.per_message_deflate;
  o.heartbeat_interval_ms = c.heartbeat_interval_ms;
  o.client_timeout_ms = c.client_timeout_ms;
  o.send_queue_limit = c.send_queue_limit;
  o.send_queue_bytes = c.send_queue_bytes;
  o.max_json_depth = c.max_json_depth;
  o.max_connections = c.max_connections;
  o.max_connections_per_ip = c.max_connections_per_ip;
  if (c.tls_enabled()) o.tls = transport::make_server_tls_context(c.tls_cert, c.tls_key);
  return o;
}

}  // namespace

struct gateway_node::impl : transport::server_hooks {
  protocol::gateway_config config;
  std::string node_id;
  std::vector<std::string> generated;
  std::shared_ptr<transport::metrics_registry> metrics = std::make_shared<transport::metrics_registry>();
  std::shared_ptr<transport::server_state> state = std::make_shared<transport::server_state>();
  std::shared_ptr<handler_registry> handlers = std::make_shared<handler_registry>();
  std::shared_ptr<const protocol::token_validator> validator;
  // Destroyed in reverse order: sockets and the io_context go before the actor system they send into.
  caf::actor_system_config caf_config;
  std::unique_ptr<caf::actor_system> system;
  context_ptr ctx;
  gateway_supervisor_actor supervisor;
  cluster_members_actor members;
  tunnel_supervisor_actor tunnel;  // when the node exposes itself through a tunnel
  boost::asio::io_context ioc;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard;
  std::vector<std::thread> threads;
  std::unique_ptr<transport::ws_server> server;
  std::unique_ptr<transport::admin_server> admin;
  cluster::subscription_ptr node_admin;  // other nodes' kick/client/session for ids held here
  std::mutex io_gate_mutex;              // guards io_gate_open against a NATS thread handing off during stop
  bool io_gate_open = true;
  bool started = false;
  bool stopped = false;

  std::shared_ptr<transport::connection_events> on_open(transport::sink_ptr sink,
                                                        const transport::peer_info& peer) override {
    auto id = protocol::random_id("c-");
    auto client = spawn_client(*system, ctx, id, std::move(sink), peer);
    caf::anon_send(supervisor, client_started_atom_v, id, client);
    return std::make_shared<actor_events>(std::move(client));
  }

  void answer_admin(const nlohmann::json& request, std::function<void(nlohmann::json)> respond) {
    auto parsed = protocol::parse_admin_command(request);
    if (auto* error = std::get_if<std::string>(&parsed)) return respond(admin_fail(*error));
    auto& command = std::get<protocol::admin_command>(parsed);
    using verb = protocol::admin_command::verb;
    if (tunnel && (command.what == verb::tunnel || command.what == verb::ports_add ||
                   command.what == verb::ports_remove))
      return tunnel_admin(*system, tunnel, command, std::move(respond));
    run_gateway_admin(*system, ctx, std::move(command), std::move(respond));
  }

  /// Exposes this node's own port through the configured tunnel, under the tunnel supervisor.
  void start_tunnel() {
    tunnel_settings s;
    s.relay = config.tunnel_relay;
    s.tunnel_id = config.tunnel_id;
    s.token = config.tunnel_token;
    s.token_file = config.tunnel_token_file;
    s.token_command = config.tunnel_token_command;
    s.protocol =
        tunnel::io::parse_protocol_choice(config.tunnel_protocol).value_or(tunnel::io::protocol_choice::automatic);
    s.ports = {server->port()};
    std::string error;
    auto token = initial_token(s, error);
    if (!token) throw std::runtime_error("tunnelToken: " + error);
    s.token = *token;
    auto host = make_tunnel_host_config(s, ioc);
    host.metrics = metrics;
    tunnel = spawn_tunnel_supervisor(*system, host);
  }

  void start_actors() {
    caf_config.set("scheduler.max-threads", std::max(2u, std::thread::hardware_concurrency()));
    caf_config.set("logger.file-verbosity", caf::atom("quiet"));
    caf_config.set("logger.console-verbosity", caf::atom("quiet"));
    system = std::make_unique<caf::actor_system>(caf_config);
    auto base = std::make_shared<gateway_context>();
    base->config = config;
    base->node_id = node_id;
    base->metrics = metrics;
    base->server_state = state;
    base->validator = validator;
    base->handlers = handlers;
    base->cluster = make_cluster(config, node_id);
    base->registry = spawn_agent_registry(*system, base);
    supervisor = spawn_supervisor(*system, base);
    auto full = std::make_shared<gateway_context>(*base);
    full->supervisor = supervisor;
    ctx = std::move(full);
  }

  /// Once the port is known: the heartbeat tells the other nodes where this one listens.
  void start_members() {
    const auto address = std::string(config.tls_enabled() ? "wss://" : "ws://") +
                         transport::resolve_bind_address(config.bind) + ":" + std::to_string(server->port()) +
                         config.path;
    members = spawn_cluster_members(*system, ctx, address);
    auto full = std::make_shared<gateway_context>(*ctx);
    full->members = members;
    ctx = std::move(full);
  }
};

gateway_node::gateway_node(protocol::gateway_config config) : impl_(std::make_unique<impl>()) {
  impl_->config = std::move(config);
}

gateway_node::~gateway_node() { stop(); }

void gateway_node::register_handler(std::string type, message_handler handler) {
  if (impl_->started) throw std::logic_error("register_handler must be called before start()");
  impl_->handlers->add(std::move(type), std::move(handler));
}

void gateway_node::set_token_validator(std::shared_ptr<const protocol::token_validator> validator) {
  if (impl_->started) throw std::logic_error("set_token_validator must be called before start()");
  impl_->validator = std::move(validator);
}

void gateway_node::start() {
  auto& d = *impl_;
  if (d.started) return;
  d.node_id = d.config.node_id.empty() ? protocol::random_id("node-") : d.config.node_id;
  if (!d.validator) {
    if (d.config.auth == protocol::auth_mode::token && d.config.auth_tokens.empty()) {
      d.generated.push_back(protocol::random_token());
      d.config.auth_tokens = d.generated;
    }
    d.validator = std::make_shared<protocol::static_token_validator>(d.config.auth_tokens);
  }
  auto options = server_options_from(d.config);  // throws on bad TLS files before anything runs
  d.start_actors();
  d.server = std::make_unique<transport::ws_server>(d.ioc, std::move(options), d, *d.metrics, d.state);
  d.started = true;
  d.server->start();
  d.start_members();
  d.node_admin = serve_node_admin(*d.system, d.ctx, [&d](std::function<void()> job) {
    std::lock_guard lock(d.io_gate_mutex);
    if (d.io_gate_open) boost::asio::post(d.ioc, std::move(job));
  });
  if (!d.config.admin_socket.empty()) {
    d.admin = std::make_unique<transport::admin_server>(
        d.ioc, d.config.admin_socket,
        [&d](nlohmann::json request, std::function<void(nlohmann::json)> respond) {
          d.answer_admin(std::move(request), std::move(respond));
        });
    d.admin->start();
  }
  d.guard.emplace(boost::asio::make_work_guard(d.ioc));
  for (unsigned i = 0; i < io_threads; ++i) d.threads.emplace_back([&d] { d.ioc.run(); });
  if (d.config.tunnel_enabled()) d.start_tunnel();
  spdlog::info("node {} listening on {}:{}{} ({})", d.node_id, transport::resolve_bind_address(d.config.bind),
               d.server->port(), d.config.path, d.config.tls_enabled() ? "wss" : "ws");
}

void gateway_node::drain() {
  auto& d = *impl_;
  if (!d.started) return;
  d.state->draining.store(true);
  caf::anon_send(d.supervisor, drain_atom_v);
}

bool gateway_node::wait_until_idle(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (impl_->metrics->connections.load() > 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

void gateway_node::stop() {
  auto& d = *impl_;
  if (!d.started || d.stopped) return;
  d.stopped = true;
  d.state->draining.store(true);
  d.node_admin.reset();
  {
    std::lock_guard lock(d.io_gate_mutex);
    d.io_gate_open = false;
  }
  if (d.tunnel) caf::anon_send_exit(d.tunnel, caf::exit_reason::user_shutdown);
  if (d.members) caf::anon_send_exit(d.members, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(d.supervisor, caf::exit_reason::user_shutdown);
  d.system->await_all_actors_done();
  d.guard.reset();
  d.ioc.stop();
  for (auto& t : d.threads) t.join();
  d.threads.clear();
  // Only now, with no io thread left, may the listeners be closed from this thread.
  if (d.server) d.server->stop();
  if (d.admin) d.admin->stop();
  // The tunnel's relay connection was told to close just above; its close is queued but may not have run.
  // Running what is ready (no listener can accept any more) releases it: its link and owner keep each other
  // alive until then.
  transport::run_ready_handlers(d.ioc);
}

std::uint16_t gateway_node::port() const { return impl_->server ? impl_->server->port() : 0; }
const std::string& gateway_node::node_id() const { return impl_->node_id; }
const protocol::gateway_config& gateway_node::config() const { return impl_->config; }
const std::vector<std::string>& gateway_node::generated_tokens() const { return impl_->generated; }
transport::metrics_registry& gateway_node::metrics() { return *impl_->metrics; }

}  // namespace sb::actors

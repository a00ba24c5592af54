#include "actors/tunnel_host_node.hpp"

#include <caf/all.hpp>

#include "actors/admin_commands.hpp"
#include "actors/tunnel_host.hpp"

namespace sb::actors {

struct tunnel_host_node::impl {
  caf::actor_system_config caf_config;
  std::unique_ptr<caf::actor_system> system;
  tunnel_supervisor_actor supervisor;
  bool stopped = false;
};

tunnel_host_node::tunnel_host_node(tunnel_host_config config) : impl_(std::make_unique<impl>()) {
  impl_->caf_config.set("logger.file-verbosity", caf::atom("quiet"));
  impl_->caf_config.set("logger.console-verbosity", caf::atom("quiet"));
  impl_->system = std::make_unique<caf::actor_system>(impl_->caf_config);
  impl_->supervisor = spawn_tunnel_supervisor(*impl_->system, std::move(config));
}

tunnel_host_node::~tunnel_host_node() { stop(); }

void tunnel_host_node::answer_admin(const nlohmann::json& request, std::function<void(nlohmann::json)> respond) {
  auto parsed = protocol::parse_admin_command(request);
  if (auto* error = std::get_if<std::string>(&parsed)) return respond(admin_fail(*error));
  tunnel_admin(*impl_->system, impl_->supervisor, std::get<protocol::admin_command>(parsed), std::move(respond));
}

void tunnel_host_node::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  caf::anon_send_exit(impl_->supervisor, caf::exit_reason::user_shutdown);
  impl_->system->await_all_actors_done();
}

}  // namespace sb::actors

#include "actors/relay_node.hpp"

#include <caf/all.hpp>

#include "actors/admin_commands.hpp"
#include "actors/relay.hpp"

namespace sb::actors {

struct relay_node::impl {
  caf::actor_system_config caf_config;
  std::unique_ptr<caf::actor_system> system;
  std::shared_ptr<tunnel::io::relay_counters> counters = std::make_shared<tunnel::io::relay_counters>();
  relay_directory_actor directory;
  std::shared_ptr<relay_actor_control> control;
  std::shared_ptr<tunnel::io::relay_hub> hub;
  bool stopped = false;
};

relay_node::relay_node(std::shared_ptr<const tunnel::ssh::ecdsa_key> relay_key, tunnel::io::relay_limits limits)
    : impl_(std::make_unique<impl>()) {
  impl_->caf_config.set("logger.file-verbosity", caf::atom("quiet"));
  impl_->caf_config.set("logger.console-verbosity", caf::atom("quiet"));
  impl_->system = std::make_unique<caf::actor_system>(impl_->caf_config);
  impl_->directory = spawn_relay_directory(*impl_->system, impl_->counters);
  impl_->control = std::make_shared<relay_actor_control>(*impl_->system, impl_->directory);
  impl_->hub = std::make_shared<tunnel::io::relay_hub>(std::move(relay_key), limits, impl_->control, impl_->counters);
}

relay_node::~relay_node() { stop(); }

std::shared_ptr<tunnel::io::relay_hub> relay_node::hub() const { return impl_->hub; }

const tunnel::io::relay_counters& relay_node::counters() const { return *impl_->counters; }

void relay_node::answer_admin(const nlohmann::json& request, std::function<void(nlohmann::json)> respond) {
  auto parsed = protocol::parse_admin_command(request);
  if (auto* error = std::get_if<std::string>(&parsed)) return respond(admin_fail(*error));
  run_relay_admin(*impl_->system, impl_->directory, impl_->counters, std::get<protocol::admin_command>(parsed),
                  std::move(respond));
}

void relay_node::close_all() {
  if (!impl_->stopped) caf::anon_send(impl_->directory, close_all_atom_v);
}

bool relay_node::idle() const { return impl_->counters->hosts_open == 0 && impl_->counters->clients_open == 0; }

void relay_node::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->control->shut_down();
  // Every tunnel and connection actor is linked to the directory: they end with it, including connections
  // whose end the stopped io loop never reported.
  caf::anon_send_exit(impl_->directory, caf::exit_reason::user_shutdown);
  impl_->system->await_all_actors_done();
}

}  // namespace sb::actors

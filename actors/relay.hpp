#pragma once
// The relay's control plane as actors: a directory of tunnel actors, one tunnel actor per tunnel that has a
// connection (its host, its clients, the ports the host forwards), one connection actor per relay WebSocket.
// The data plane (tunnel/io/relay_hub) reaches them through the relay_control returned here and is answered
// through the connections' handles.
#include <caf/actor_system.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "actors/type_ids.hpp"
#include "protocol/admin_request.hpp"
#include "tunnel/io/relay_control.hpp"
#include "tunnel/io/relay_hub.hpp"

namespace sb::actors {

/// `counters` gets the tunnels gauge and the hosts-replaced count.
relay_directory_actor spawn_relay_directory(caf::actor_system& sys,
                                            std::shared_ptr<tunnel::io::relay_counters> counters);

/// The relay_control the hub reports to: each opened connection gets a connection actor, attached to its
/// tunnel's actor.
class relay_actor_control final : public tunnel::io::relay_control {
 public:
  relay_actor_control(caf::actor_system& sys, relay_directory_actor directory);
  std::shared_ptr<tunnel::io::relay_link_events> host_opened(relay_host_ref host) override;
  std::shared_ptr<tunnel::io::relay_link_events> client_opened(relay_client_ref client) override;
  void host_version(const std::string& tunnel_id, std::function<void(optional_version)> done) override;
  /// The actor system is going: from now on a new connection is dropped and nothing is spawned. The hub
  /// and the relay server's sessions may outlive the actors by their last handlers.
  void shut_down();

 private:
  std::mutex mtx_;  // orders spawning against shut_down
  bool down_ = false;
  caf::actor_system& sys_;
  relay_directory_actor directory_;
};

/// Answers one relay admin command (`stats`, `tunnels`, `actors`); `respond` runs once, on an actor's
/// thread.
void run_relay_admin(caf::actor_system& sys, relay_directory_actor directory,
                     std::shared_ptr<const tunnel::io::relay_counters> counters,
                     const protocol::admin_command& command, std::function<void(nlohmann::json)> respond);

}  // namespace sb::actors

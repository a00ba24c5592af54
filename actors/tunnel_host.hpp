#pragma once
// The tunnel host under supervision: a supervisor actor owns the status, the ports and the retry policy, and
// restarts the connection actor (one relay connection attempt) with exponential backoff and full jitter; the
// connection actor spawns one actor per forwarded client stream.
//
//   supervisor: connecting --(connected)--> connected --(lost)--> disconnected --(backoff)--> connecting
//                   \--(401)--> refreshingTunnelAccessToken --> connecting        \--(fatal)--> disconnected
#include <caf/actor_system.hpp>
#include <functional>
#include <nlohmann/json.hpp>

#include "actors/type_ids.hpp"
#include "protocol/admin_request.hpp"

namespace sb::actors {

tunnel_supervisor_actor spawn_tunnel_supervisor(caf::actor_system& sys, tunnel_host_config config);

/// Answers the admin socket's tunnel commands (`tunnel`, `ports.add`, `ports.remove`, `actors`) for a
/// supervisor; `respond` may run on any thread.
void tunnel_admin(caf::actor_system& sys, const tunnel_supervisor_actor& supervisor, const protocol::admin_command& command,
                  std::function<void(nlohmann::json)> respond);

}  // namespace sb::actors

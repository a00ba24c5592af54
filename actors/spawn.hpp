#pragma once
// Entry points of the gateway's actors: the only names the rest of the node needs.
#include <caf/actor_system.hpp>

#include "actors/context.hpp"
#include "actors/type_ids.hpp"

namespace sb::actors {

registry_actor spawn_agent_registry(caf::actor_system& sys, context_ptr ctx);
/// `ctx` must carry the registry; the supervisor fills in itself for the sessions it spawns, and restarts
/// the registry if it dies.
gateway_supervisor_actor spawn_supervisor(caf::actor_system& sys, context_ptr ctx);
/// `ctx` must carry both the supervisor and the registry.
client_actor spawn_client(caf::actor_system& sys, context_ptr ctx, std::string client_id,
                          transport::sink_ptr sink, transport::peer_info peer);
/// This node's part of a session (created or joined by the first request it gets); it ends itself when no
/// member is left here.
session_actor spawn_session(caf::actor_system& sys, context_ptr ctx, std::string session_id);
/// Sends this node's heartbeats and tells the supervisor of nodes that fell silent. `ctx` must carry the
/// supervisor and the cluster.
cluster_members_actor spawn_cluster_members(caf::actor_system& sys, context_ptr ctx, std::string address);

}  // namespace sb::actors

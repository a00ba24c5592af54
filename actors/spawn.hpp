#pragma once
// Entry points of the gateway's actors: the only names the rest of the node needs.
#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "actors/context.hpp"
#include "actors/messages.hpp"

namespace sb::actors {

caf::actor spawn_agent_registry(caf::actor_system& sys, context_ptr ctx);
/// `ctx` must carry the registry; the supervisor fills in itself for the sessions it spawns.
caf::actor spawn_supervisor(caf::actor_system& sys, context_ptr ctx);
/// `ctx` must carry both the supervisor and the registry.
caf::actor spawn_client(caf::actor_system& sys, context_ptr ctx, std::string client_id,
                        transport::sink_ptr sink, transport::peer_info peer);

}  // namespace sb::actors

namespace sb::actors {

/// A session with its first metadata; it ends itself when its last member leaves.
caf::actor spawn_session(caf::actor_system& sys, context_ptr ctx, std::string session_id, json metadata);

}  // namespace sb::actors

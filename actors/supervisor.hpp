#pragma once
// The gateway supervisor's state, shared by supervisor.cpp (routing, monitoring) and admin_commands.cpp.
#include <caf/stateful_actor.hpp>
#include <map>
#include <string>

#include "actors/context.hpp"
#include "actors/messages.hpp"

namespace sb::actors {

struct supervisor_state {
  static inline const char* name = "sb.supervisor";
  context_ptr ctx;                            // carries this supervisor, for the sessions it spawns
  std::map<std::string, caf::actor> clients;  // client id -> client actor
  std::map<std::string, json> presence;       // authenticated client id -> {clientId, role, deviceId, status}
  std::map<std::string, caf::actor> sessions;      // session id -> session actor
  std::map<caf::actor_addr, std::string> watched;  // monitored actor -> "c:<id>" or "s:<id>"
};

using supervisor_actor = caf::stateful_actor<supervisor_state>;

/// Marks the node draining and closes every client with 1001.
json drain_clients(supervisor_actor* self);

/// Runs one admin socket command (PROTOCOL.md "Admin socket") and answers {ok, result|error}.
caf::result<json> run_admin_command(supervisor_actor* self, const json& request);

}  // namespace sb::actors

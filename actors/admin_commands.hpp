#pragma once
// The gateway's admin commands (PROTOCOL.md "Admin socket"), answered at the edge: a short-lived actor asks
// the supervisor, the clients, the sessions and the registry through their typed interfaces, and only here
// are the typed replies rendered to JSON. Live state is asked from the actors that own it, never read from
// a separate bookkeeping copy.
#include <caf/actor_system.hpp>
#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>

#include "actors/context.hpp"
#include "protocol/admin_request.hpp"

namespace sb::actors {

using protocol::default_page_limit;
using protocol::max_page_limit;
/// A page stays well below admin_call's 4 MiB read buffer (transport/admin_socket.cpp), while one agent
/// whose metadata fills a default maxPayload (1 MiB) still fits whole.
inline constexpr std::size_t page_byte_budget = 2 * 1024 * 1024;
/// An entry larger than this is listed by its id and size alone (`truncated: true`, `bytes`).
inline constexpr std::size_t max_entry_bytes = page_byte_budget;

/// {"ok": true, "result": ...} and {"ok": false, "error": ...}: every admin answer has one of these shapes.
nlohmann::json admin_ok(nlohmann::json result);
nlohmann::json admin_fail(std::string message);

/// Answers one gateway command; `respond` runs once, on an actor's thread. `ctx` must carry the supervisor.
void run_gateway_admin(caf::actor_system& sys, context_ptr ctx, protocol::admin_command command,
                       std::function<void(nlohmann::json)> respond);

}  // namespace sb::actors

#pragma once
// The gateway's admin commands (PROTOCOL.md "Admin socket"), answered at the edge: a short-lived actor asks
// the supervisor, the clients, the sessions and the registry through their typed interfaces, and only here
// are the typed replies rendered to JSON. Live state is asked from the actors that own it, never read from
// a separate bookkeeping copy.
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "actors/context.hpp"
#include "actors/replies.hpp"
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

/// Every answer of one fan-out, in the order of the targets; a target that did not answer in time is nullopt.
template <class Reply>
using answers = std::vector<std::pair<std::string, std::optional<Reply>>>;

/// Asks every target with the same message; `done` runs once, when the last one answered or timed out, so
/// one silent actor never holds up the rest.
template <class Reply, class Handle, class... Ts>
void fan_in(caf::event_based_actor* self, const std::vector<std::pair<std::string, Handle>>& targets,
            std::function<void(answers<Reply>)> done, Ts... msg) {
  struct collector {
    answers<Reply> results;
    std::size_t remaining;
    std::function<void(answers<Reply>)> done;
  };
  auto acc = std::make_shared<collector>(collector{{}, targets.size(), std::move(done)});
  if (targets.empty()) return acc->done({});
  acc->results.resize(targets.size());
  for (std::size_t i = 0; i < targets.size(); ++i) {
    acc->results[i].first = targets[i].first;
    auto finish = [acc] {
      if (--acc->remaining == 0) acc->done(std::move(acc->results));
    };
    self->request(targets[i].second, status_ask_timeout, msg...)
        .then(
            [acc, i, finish](Reply& r) {
              acc->results[i].second = std::move(r);
              finish();
            },
            [finish](caf::error&) { finish(); });
  }
}

/// Answers one gateway command; `respond` runs once, on an actor's thread. `ctx` must carry the supervisor.
/// kick, client and session for an id not held here are passed on to the other nodes, unless
/// `this_node_only` (the command came from another node).
void run_gateway_admin(caf::actor_system& sys, context_ptr ctx, protocol::admin_command command,
                       std::function<void(nlohmann::json)> respond, bool this_node_only = false);

/// Runs a job on one of the node's own threads, or drops it once the node stops.
using hand_off_fn = std::function<void(std::function<void()>)>;

/// On a clustered node: answers the commands other nodes pass on (kick, client, session), for as long as
/// the subscription lives. Null on a single node. Each command is handed to `hand_off` before it spawns its
/// actor: a spawn leaves the spawning thread holding the actor system's logger until that thread ends, and
/// NATS delivery threads outlive every node, so a spawn on one would stall the system's shutdown forever.
cluster::subscription_ptr serve_node_admin(caf::actor_system& sys, context_ptr ctx, hand_off_fn hand_off);

}  // namespace sb::actors

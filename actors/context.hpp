#pragma once
// What every gateway actor shares: immutable settings and the handles of the node's long-lived actors.
#include <chrono>
#include <memory>
#include <string>

#include "actors/cluster_context.hpp"
#include "actors/handlers.hpp"
#include "actors/type_ids.hpp"
#include "protocol/auth.hpp"
#include "protocol/config.hpp"
#include "transport/metrics.hpp"
#include "transport/ws_server.hpp"

namespace sb::actors {

inline constexpr const char* server_version = "0.1.0";

/// How long an actor waits for another before it answers INTERNAL: a peer actor that hangs must not hang
/// the client.
inline constexpr auto internal_request_timeout = std::chrono::seconds(10);

struct gateway_context {
  protocol::gateway_config config;
  std::string node_id;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::shared_ptr<transport::metrics_registry> metrics;
  std::shared_ptr<transport::server_state> server_state;
  std::shared_ptr<const protocol::token_validator> validator;
  std::shared_ptr<const handler_registry> handlers;
  cluster_ptr cluster;  // the bus: NATS, or in-process on a single node
  gateway_supervisor_actor supervisor;
  cluster_members_actor members;  // set once the node listens (the heartbeat names its address)
  registry_actor registry;  // the first one: clients learn of a restarted registry from the supervisor
};

using context_ptr = std::shared_ptr<const gateway_context>;

/// Serializes once, counts the message, and queues it on one connection.
void send_to(const transport::sink_ptr& sink, const protocol::envelope& msg,
             transport::metrics_registry& metrics);

}  // namespace sb::actors

#pragma once
// One relay process's control plane (`switchboard relay`): its actor system, the directory of tunnel
// actors, the relay_hub that reports to them, and the answers to its admin socket, behind plain calls, as
// gateway_node does for the gateway. The io threads and the relay server stay with the caller.
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "tunnel/io/relay_hub.hpp"

namespace sb::actors {

class relay_node {
 public:
  relay_node(std::shared_ptr<const tunnel::ssh::ecdsa_key> relay_key, tunnel::io::relay_limits limits);
  ~relay_node();
  relay_node(const relay_node&) = delete;
  relay_node& operator=(const relay_node&) = delete;

  /// The data plane to serve relay WebSockets with (relay_server::serve).
  std::shared_ptr<tunnel::io::relay_hub> hub() const;
  const tunnel::io::relay_counters& counters() const;
  /// One admin socket request (`stats`, `tunnels`, `actors`); `respond` runs once, on any thread.
  void answer_admin(const nlohmann::json& request, std::function<void(nlohmann::json)> respond);
  /// Drops every relay connection; hosts and clients see a lost connection and come back, as after a crash.
  void close_all();
  /// No host or client connection is open.
  bool idle() const;
  /// Ends the actors and waits for them. Idempotent. Call once the io loop that runs the connections has
  /// stopped and their last handlers have run (io_pool::drain_and_join): CAF's actor system does not finish
  /// shutting down while other threads still run connections that report to it.
  void stop();

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace sb::actors

#pragma once
// One tunnel host process (`switchboard host`): its actor system, the tunnel supervisor and the answers to
// its admin socket, behind plain calls, as gateway_node does for the gateway. The io threads stay with the
// caller, who owns the sockets.
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "actors/tunnel_host_config.hpp"

namespace sb::actors {

class tunnel_host_node {
 public:
  /// `config.ioc` must outlive the node; the supervisor starts connecting at once.
  explicit tunnel_host_node(tunnel_host_config config);
  ~tunnel_host_node();
  tunnel_host_node(const tunnel_host_node&) = delete;
  tunnel_host_node& operator=(const tunnel_host_node&) = delete;

  /// One admin socket request (`tunnel`, `actors`, `ports.add`, `ports.remove`); `respond` runs once, on
  /// any thread.
  void answer_admin(const nlohmann::json& request, std::function<void(nlohmann::json)> respond);
  /// Stops the supervisor and waits until every actor has ended. Idempotent.
  void stop();

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace sb::actors

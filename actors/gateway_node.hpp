#pragma once
// One gateway node: the actor system, the Beast server, and the admin socket, wired together. The CLI and the
// integration tests both start gateways through this class.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "actors/handlers.hpp"
#include "protocol/auth.hpp"
#include "protocol/config.hpp"
#include "transport/metrics.hpp"

namespace sb::actors {

class gateway_node {
 public:
  explicit gateway_node(protocol::gateway_config config);
  ~gateway_node();
  gateway_node(const gateway_node&) = delete;
  gateway_node& operator=(const gateway_node&) = delete;

  /// Before start(): answer messages of `type` in code (types the protocol does not define).
  void register_handler(std::string type, message_handler handler);
  /// Before start(): replace the token check of authMode token.
  void set_token_validator(std::shared_ptr<const protocol::token_validator> validator);

  /// Binds the port and the admin socket and starts serving; throws std::runtime_error when it cannot.
  void start();
  /// /readyz turns 503, new upgrades get 503, connected clients are closed with 1001.
  void drain();
  /// Waits until every connection is closed, or `timeout` passed; true when none is left.
  bool wait_until_idle(std::chrono::milliseconds timeout);
  /// Stops everything and waits for the actors to end. Idempotent.
  void stop();

  std::uint16_t port() const;
  const std::string& node_id() const;
  const protocol::gateway_config& config() const;
  /// Tokens generated at start because token mode had none configured.
  const std::vector<std::string>& generated_tokens() const;
  transport::metrics_registry& metrics();

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace sb::actors

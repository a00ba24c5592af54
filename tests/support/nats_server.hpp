#pragma once
// A throwaway nats-server (Debian's, with JetStream) on 127.0.0.1 at a port the test picked, for the cluster
// tests. It can be killed and started again on the same port, as the fault tests need.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "support/process.hpp"

namespace sb::test {

class nats_server {
 public:
  /// Starts it and waits until it accepts connections; throws when it does not within 10 s.
  explicit nats_server(const std::filesystem::path& dir, std::string extra_config = {});
  ~nats_server();

  std::string url() const;
  std::uint16_t port() const { return port_; }
  /// SIGKILL: no goodbye to its clients, its memory-stored JetStream state is gone.
  void kill();
  /// Starts it again on the same port.
  void start();
  std::string log() const;

 private:
  std::filesystem::path dir_;
  std::string extra_config_;
  std::uint16_t port_;
  std::unique_ptr<child_process> process_;
};

}  // namespace sb::test

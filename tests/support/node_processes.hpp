#pragma once
// Gateway nodes as real `switchboard serve` processes on one throwaway NATS, with HAProxy in front of them
// (deploy/haproxy.cfg and one server line per node), for the fault tests that SIGKILL and SIGTERM a node.
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/gateway_fixture.hpp"
#include "support/nats_server.hpp"
#include "support/process.hpp"
#include "support/ws_client.hpp"

namespace sb::test {

struct node_process {
  std::string id;
  std::uint16_t port = 0;
  std::filesystem::path admin_socket;
  std::unique_ptr<child_process> process;

  nlohmann::json admin(const nlohmann::json& request) const;
  /// The members its `admin cluster` lists (empty when it does not answer).
  std::size_t members() const;
};

/// A client past connect and auth, with the ids session_info gave it.
struct attached_client {
  std::unique_ptr<ws_client> ws;
  std::string client_id, node_id;
};

class process_cluster {
 public:
  /// Starts NATS, `n` nodes (n0..), waits until each sees all, then HAProxy.
  explicit process_cluster(int n);
  ~process_cluster();

  node_process& node(std::size_t i) { return nodes_[i]; }
  std::uint16_t balancer_port() const { return balancer_port_; }
  /// Connects to `port` (a node's or the balancer's), then connect and auth with the test token.
  static attached_client attach(std::uint16_t port);
  std::string haproxy_log() const { return haproxy_ ? haproxy_->out() + haproxy_->err() : std::string(); }

  temp_dir dir;
  nats_server nats{dir.path()};

 private:
  std::vector<node_process> nodes_;
  std::uint16_t balancer_port_ = 0;
  std::unique_ptr<child_process> haproxy_;
};

}  // namespace sb::test

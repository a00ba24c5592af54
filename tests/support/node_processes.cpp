#include "support/node_processes.hpp"

#include <signal.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "support/ports.hpp"
#include "transport/admin_socket.hpp"

namespace sb::test {

nlohmann::json node_process::admin(const nlohmann::json& request) const {
  return transport::admin_call(admin_socket.string(), request);
}

std::size_t node_process::members() const {
  try {
    auto r = admin({{"cmd", "cluster"}});
    return r.value("ok", false) ? r["result"]["members"].size() : 0;
  } catch (const std::exception&) {
    return 0;  // the admin socket comes up just after the WebSocket port
  }
}

process_cluster::process_cluster(int n) {
  for (int i = 0; i < n; ++i) {
    node_process node;
    node.id = "n" + std::to_string(i);
    node.port = free_port();
    node.admin_socket = dir.path() / (node.id + ".sock");
    const auto work = dir.path() / node.id;
    std::filesystem::create_directories(work);
    // Default heartbeats and node timeout: the 2-second promise is the defaults' promise.
    node.process = std::make_unique<child_process>(
        std::vector<std::string>{SWITCHBOARD_BINARY, "serve", "--port", std::to_string(node.port), "--bind",
                                 "loopback", "--node-id", node.id, "--auth-tokens", test_token, "--admin-socket",
                                 node.admin_socket.string(), "--cluster-nats", nats.url(), "--cluster-name", "p",
                                 "--trusted-proxies", "127.0.0.1/32", "--route-timeout-ms", "20000",
                                 "--drain-timeout-ms", "5000", "--log-level", "warn"},
        work);
    nodes_.push_back(std::move(node));
  }
  for (auto& node : nodes_)
    if (!wait_accepting(node.port)) throw std::runtime_error(node.id + " did not start: " + node.process->err());
  for (auto& node : nodes_)
    if (!eventually([&] { return node.members() == nodes_.size(); }, 10s))
      throw std::runtime_error(node.id + " did not see every node within 10 s");

  balancer_port_ = free_port();
  const auto config = dir.path() / "haproxy.cfg";
  {
    std::ifstream base(std::string(SWITCHBOARD_SOURCE_DIR) + "/deploy/haproxy.cfg");
    if (!base) throw std::runtime_error("deploy/haproxy.cfg is missing");
    std::ofstream out(config);
    out << base.rdbuf();
    for (const auto& node : nodes_) out << "    server " << node.id << " 127.0.0.1:" << node.port << "\n";
  }
  haproxy_ = std::make_unique<child_process>(std::vector<std::string>{"/usr/sbin/haproxy", "-db", "-f", config.string()},
                                             dir.path(),
                                             std::map<std::string, std::string>{
                                                 {"SB_BIND", "127.0.0.1:" + std::to_string(balancer_port_)}});
  if (!wait_accepting(balancer_port_)) throw std::runtime_error("haproxy did not start: " + haproxy_log());
}

process_cluster::~process_cluster() {
  if (haproxy_) haproxy_->signal(SIGKILL);
  for (auto& node : nodes_)
    if (node.process) node.process->signal(SIGKILL);
}

attached_client process_cluster::attach(std::uint16_t port) {
  attached_client out;
  out.ws = std::make_unique<ws_client>(port);
  auto info = out.ws->event("session_info");
  if (!info) throw std::runtime_error("no session_info after upgrade");
  out.client_id = (*info)["payload"]["clientId"].get<std::string>();
  out.node_id = (*info)["payload"]["nodeId"].get<std::string>();
  auto hello = out.ws->request("connect", nlohmann::json::object());
  if (hello["type"] != "hello_ok") throw std::runtime_error("connect failed: " + hello.dump());
  auto ok = out.ws->request("auth", {{"token", test_token}});
  if (ok["type"] != "auth_success") throw std::runtime_error("auth failed: " + ok.dump());
  return out;
}

}  // namespace sb::test

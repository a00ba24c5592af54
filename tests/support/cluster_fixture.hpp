#pragma once
// N gateway nodes (in this process) on one throwaway nats-server, with short heartbeats so membership
// settles fast; each node keeps its own port and admin socket, so a test can put a client on a given node.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "support/gateway_fixture.hpp"
#include "support/nats_server.hpp"

namespace sb::test {

/// The settings every clustered test node gets: this NATS, this cluster name, fast heartbeats.
inline void join_cluster(protocol::gateway_config& c, const nats_server& nats, const std::string& cluster,
                         const std::string& node_id) {
  c.cluster_nats = {nats.url()};
  c.cluster_name = cluster;
  c.node_id = node_id;
  c.cluster_heartbeat_ms = 100;
  c.cluster_node_timeout_ms = 600;
}

/// The members `admin cluster` lists on `node` (empty when it did not answer).
inline nlohmann::json members_of(gateway_fixture& node) {
  auto r = node.admin({{"cmd", "cluster"}});
  return r.value("ok", false) ? r["result"]["members"] : nlohmann::json::array();
}

struct cluster_fixture {
  temp_dir dir;
  nats_server nats{dir.path()};
  std::vector<std::unique_ptr<gateway_fixture>> nodes;

  explicit cluster_fixture(int n, const std::string& name = "t", gateway_fixture::tweak extra = {}) {
    for (int i = 0; i < n; ++i)
      nodes.push_back(std::make_unique<gateway_fixture>([&, i](protocol::gateway_config& c) {
        join_cluster(c, nats, name, "n" + std::to_string(i));
        if (extra) extra(c);
      }));
    // Every node sees every other before a test starts.
    for (auto& node : nodes)
      if (!eventually([&] { return members_of(*node).size() == static_cast<std::size_t>(n); }, 10s))
        throw std::runtime_error("the cluster's nodes did not see each other within 10 s");
  }
};

/// Joins (or creates) a session and requires its session_info; returns the session id it names.
inline std::string joined_session(ws_client& c, const std::string& type, const std::string& sid) {
  auto r = c.request(type, {{"sessionId", sid}}, sid);
  INFO(r.dump());
  REQUIRE(r["type"] == "session_info");
  return r["payload"]["session"]["id"].get<std::string>();
}

/// Every message of `type` that `c` receives within `window`, by payload.text.
inline std::multiset<std::string> texts(ws_client& c, std::size_t expected, std::chrono::milliseconds window = 5s) {
  std::multiset<std::string> out;
  while (out.size() < expected) {
    auto m = c.wait_for([](const json& j) { return j.value("type", "") == "chat"; }, window);
    if (!m) break;
    out.insert((*m)["payload"]["text"].get<std::string>());
  }
  return out;
}

}  // namespace sb::test

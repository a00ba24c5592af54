// NATS itself failing: the nodes keep serving their own clients, say they are degraded (/readyz, /metrics,
// admin cluster), reconnect on their own and put their state back into KV, so that after a NATS restart that
// lost every bucket the cluster is one gateway again without restarting a node.
#include <catch2/catch.hpp>

#include "support/agents.hpp"
#include "support/cluster_fixture.hpp"

using namespace sb::test;
using json = nlohmann::json;

namespace {

json readiness(gateway_fixture& node) {
  auto [status, body] = http_get(node.port(), "/readyz");
  auto j = json::parse(body, nullptr, false);
  j["httpStatus"] = status;
  return j;
}

bool linked(gateway_fixture& node) {
  auto r = node.admin({{"cmd", "cluster"}});
  return r.value("ok", false) && r["result"]["link"] == "connected";
}

std::size_t members_seen(gateway_fixture& node, const std::string& sid) {
  auto r = node.admin({{"cmd", "session"}, {"id", sid}});
  return r.value("ok", false) ? r["result"]["session"]["clients"].size() : 0;
}

}  // namespace

TEST_CASE("cluster: nodes serve their own clients while NATS is down and are one gateway again after", "[cluster]") {
  cluster_fixture cl(3);
  // Two members on n0 (so n0 has local fan-out to show), one on each other node; an agent on n0.
  auto a0 = cl.nodes[0]->ready_client();
  auto b0 = cl.nodes[0]->ready_client();
  auto c1 = cl.nodes[1]->ready_client();
  auto d2 = cl.nodes[2]->ready_client();
  joined_session(*a0, "session_create", "room");
  for (auto* c : {b0.get(), c1.get(), d2.get()}) joined_session(*c, "session_join", "room");
  auto agent = cl.nodes[0]->ready_client();
  register_agent(*agent, "helper", "tool", {"help"});
  REQUIRE(routable_from(*c1, "helper", *agent));
  REQUIRE(eventually([&] { return members_seen(*cl.nodes[2], "room") == 4; }));
  CHECK(readiness(*cl.nodes[0])["degraded"] == false);

  cl.nats.kill();
  for (auto& node : cl.nodes) REQUIRE(eventually([&] { return !linked(*node); }, 5s));

  // Degraded, and said so everywhere an operator looks; still ready, because its clients are served.
  auto ready = readiness(*cl.nodes[0]);
  INFO(ready.dump());
  CHECK(ready["httpStatus"] == 200);
  CHECK(ready["status"] == "ready");
  CHECK(ready["degraded"] == true);
  CHECK(ready["cluster"] != "connected");
  auto view = cl.nodes[1]->admin({{"cmd", "cluster"}});
  CHECK(view["result"]["degraded"] == true);
  auto metrics = http_get(cl.nodes[1]->port(), "/metrics").second;
  CHECK(metrics.find("switchboard_cluster_link{state=\"connected\"} 0") != std::string::npos);
  CHECK(metrics.find("switchboard_cluster_outages_total 1") != std::string::npos);

  // Local fan-out goes on, and `delivered` counts only who got it: nothing is acknowledged for members that
  // the node cannot reach.
  auto ack = a0->request("chat", {{"text", "during"}}, std::string("room"));
  INFO(ack.dump());
  REQUIRE(ack["type"] == "ack");
  CHECK(ack["payload"]["delivered"] == 1);
  CHECK(texts(*b0, 1).count("during") == 1);
  CHECK(http_get(cl.nodes[0]->port(), "/metrics").second.find("switchboard_cluster_unsent_total 2") !=
        std::string::npos);

  // NATS comes back empty (memory storage): the nodes reconnect by themselves and write their part again.
  cl.nats.start();
  for (auto& node : cl.nodes) REQUIRE(eventually([&] { return linked(*node); }, 10s));
  CHECK(readiness(*cl.nodes[2])["degraded"] == false);
  for (auto& node : cl.nodes) {
    INFO(node->node->node_id());
    REQUIRE(eventually([&] { return members_seen(*node, "room") == 4; }, 10s));
  }

  // The record is back in KV, not only in each node's old copy: a new member joining on n1 reads it there.
  auto e1 = cl.nodes[1]->ready_client();
  auto joined = e1->request("session_join", json::object(), std::string("room"));
  INFO(joined.dump());
  REQUIRE(joined["type"] == "session_info");
  CHECK(joined["payload"]["session"]["clients"].size() == 5);
  for (auto& node : cl.nodes) REQUIRE(eventually([&] { return members_seen(*node, "room") == 5; }, 10s));
  auto stats = cl.nodes[2]->admin({{"cmd", "stats"}});
  CHECK(stats["result"]["cluster"]["sessions"] == 1);

  // A broadcast crosses nodes again, once per member (c1 and d2 never got "during": their first chat is this).
  auto after = a0->request("chat", {{"text", "after"}}, std::string("room"));
  INFO(after.dump());
  CHECK(after["payload"]["delivered"] == 4);
  for (auto* c : {b0.get(), c1.get(), d2.get(), e1.get()}) CHECK(texts(*c, 1).count("after") == 1);
  // The agent on n0 serves n2 again, and presence lists n0's clients on n2.
  REQUIRE(routable_from(*d2, "helper", *agent));
  const auto a0_id = gateway_fixture::id_of(*a0);
  REQUIRE(eventually([&] {
    auto hello = d2->request("connect", json::object());
    for (const auto& p : hello["payload"]["presence"])
      if (p["clientId"] == a0_id) return true;
    return false;
  }));
}

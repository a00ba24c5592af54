// Agents, presence and the admin socket across nodes: an agent on one node serves requests from clients on
// another (by id, capability and type), a vanished agent answers NO_AGENT at once, presence snapshots show
// every node's clients, and kick/client/session work from any node's admin socket.
#include <catch2/catch.hpp>
#include <set>

#include "support/agents.hpp"
#include "support/cluster_fixture.hpp"

using namespace sb::test;
using json = nlohmann::json;


TEST_CASE("cluster: an agent on one node serves requests from another, by id, capability and type", "[cluster]") {
  cluster_fixture cl(3);
  auto agent = cl.nodes[0]->ready_client();
  auto requester = cl.nodes[1]->ready_client();
  register_agent(*agent, "summarizer", "llm", {"summarize"});
  REQUIRE(routable_from(*requester, "summarizer", *agent));

  for (const json& selector : {json{{"agentId", "summarizer"}}, json{{"capability", "summarize"}},
                               json{{"agentType", "llm"}}}) {
    INFO(selector.dump());
    json payload = selector;
    payload["request"] = {{"text", "long"}};
    auto id = send_route(*requester, payload);
    auto got = routed(*agent);
    REQUIRE(got);
    CHECK((*got)["payload"]["from"] == gateway_fixture::id_of(*requester));
    CHECK((*got)["payload"]["request"] == json{{"text", "long"}});
    answer(*agent, *got, {{"summary", "short"}});
    auto reply = reply_to(*requester, id);
    REQUIRE(reply);
    CHECK((*reply)["type"] == "route_response");
    CHECK((*reply)["payload"]["agentId"] == "summarizer");
    CHECK((*reply)["payload"]["response"] == json{{"summary", "short"}});
  }

  // The same agent id cannot be held on two nodes at once.
  auto rival = cl.nodes[2]->ready_client();
  REQUIRE(eventually([&] {
    auto r = rival->request("agent_register", agent_payload("summarizer", "llm", {"summarize"}));
    return error_code_of(r) == "AGENT_CONFLICT";
  }));
}

TEST_CASE("cluster: an agent that vanished answers NO_AGENT at once, a silent one ROUTE_TIMEOUT", "[cluster]") {
  cluster_fixture cl(2, "t", [](sb::protocol::gateway_config& c) { c.route_timeout_ms = 800; });
  auto agent = cl.nodes[0]->ready_client();
  auto requester = cl.nodes[1]->ready_client();
  register_agent(*agent, "worker", "w", {"work"});
  REQUIRE(routable_from(*requester, "worker", *agent));

  // Silent: the agent gets the request and never answers.
  const auto asked = std::chrono::steady_clock::now();
  auto id = send_route(*requester, {{"agentId", "worker"}, {"request", 1}});
  REQUIRE(routed(*agent));
  auto late = reply_to(*requester, id, 5s);
  REQUIRE(late);
  CHECK(error_code_of(*late) == "ROUTE_TIMEOUT");
  CHECK(std::chrono::steady_clock::now() - asked >= 700ms);

  // Gone: its node stops serving its subject at once, so the request is refused without waiting.
  agent->close();
  const auto gone = std::chrono::steady_clock::now();
  auto nobody = send_route(*requester, {{"agentId", "worker"}, {"request", 2}});
  auto refused = reply_to(*requester, nobody, 5s);
  REQUIRE(refused);
  CHECK(error_code_of(*refused) == "NO_AGENT");
  CHECK(std::chrono::steady_clock::now() - gone < 700ms);
}

TEST_CASE("cluster: hello_ok's presence lists authenticated clients of every node", "[cluster]") {
  cluster_fixture cl(2);
  auto far = cl.nodes[1]->ready_client("dev-far");
  const auto far_id = gateway_fixture::id_of(*far);
  auto near = cl.nodes[0]->ready_client("dev-near");
  auto has_far = [&] {
    auto hello = near->request("connect", {{"deviceId", "dev-near"}});
    for (const auto& p : hello["payload"]["presence"])
      if (p["clientId"] == far_id) return true;
    return false;
  };
  REQUIRE(eventually(has_far));
  far->close();
  REQUIRE(eventually([&] { return !has_far(); }));
}

TEST_CASE("cluster: kick, client and session work from any node's admin socket", "[cluster]") {
  cluster_fixture cl(3);
  auto victim = cl.nodes[0]->ready_client();
  const auto victim_id = gateway_fixture::id_of(*victim);
  auto r = victim->request("session_create", {{"sessionId", "only-on-n0"}}, std::string("only-on-n0"));
  REQUIRE(r["type"] == "session_info");

  auto client = cl.nodes[2]->admin({{"cmd", "client"}, {"id", victim_id}});
  INFO(client.dump());
  REQUIRE(client.value("ok", false));
  CHECK(client["result"]["client"]["clientId"] == victim_id);
  auto session = cl.nodes[2]->admin({{"cmd", "session"}, {"id", "only-on-n0"}});
  INFO(session.dump());
  REQUIRE(session.value("ok", false));
  CHECK(session["result"]["session"]["clients"] == json::array({victim_id}));
  CHECK_FALSE(cl.nodes[2]->admin({{"cmd", "client"}, {"id", "c-nobody"}}).value("ok", true));

  auto kicked = cl.nodes[2]->admin({{"cmd", "kick"}, {"id", victim_id}, {"reason", "from n2"}});
  INFO(kicked.dump());
  REQUIRE(kicked.value("ok", false));
  CHECK(victim->wait_closed() == 4000);
  CHECK_FALSE(cl.nodes[1]->admin({{"cmd", "kick"}, {"id", "c-nobody"}}).value("ok", true));
}

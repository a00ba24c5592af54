// Agents and routed requests (PROTOCOL.md "Types", agent rows, and the rules below the table) over real
// sockets.
#include <catch2/catch.hpp>

#include "support/agents.hpp"
#include "support/gateway_fixture.hpp"

using namespace sb::test;

namespace {

/// Routes `payload` from `requester`, and returns the agent id the request reached (answering it) or the
/// error.
std::string route_and_answer(ws_client& requester, json payload,
                             const std::vector<std::pair<std::string, ws_client*>>& agents) {
  auto id = send_route(requester, std::move(payload));
  // Whoever got it answers; the requester's reply names the agent.
  for (int round = 0; round < 50; ++round) {
    for (const auto& [name, agent] : agents) {
      if (auto r = routed(*agent, 20ms)) answer(*agent, *r, {{"by", name}});
    }
    if (auto reply = reply_to(requester, id, 20ms)) {
      if ((*reply)["type"] == "route_response") return (*reply)["payload"]["agentId"].get<std::string>();
      return "error:" + error_code_of(*reply);
    }
  }
  return "no reply";
}

/// Every agent record, fetched page by page from the admin socket.
json admin_agents(gateway_fixture& gw) {
  json all = json::array();
  json request = {{"cmd", "agents"}};
  for (int pages = 0; pages < 10000; ++pages) {
    auto r = gw.admin(request);
    if (!r.value("ok", false)) throw std::runtime_error("admin agents failed: " + r.dump());
    for (auto& a : r["result"]["agents"]) all.push_back(std::move(a));
    if (!r["result"].contains("next")) return all;
    request["cursor"] = r["result"]["next"];
  }
  throw std::runtime_error("admin agents did not end");
}

json admin_agent(gateway_fixture& gw, const std::string& agent_id) {
  for (const auto& a : admin_agents(gw))
    if (a["agentId"] == agent_id) return a;
  return nullptr;
}

std::int64_t stats_agents(gateway_fixture& gw) {
  return gw.admin({{"cmd", "stats"}})["result"]["agents"].get<std::int64_t>();
}

std::uint64_t limit_count(gateway_fixture& gw, const std::string& key) {
  return gw.node->metrics().limits_exceeded.get(key);
}

/// Registers `count` agents "<prefix>N" from one client, pipelined in batches (so acks never pile up past
/// sendQueueLimit); type "type-(N % 10)", capabilities {"cap-<prefix>N", "common"}. Returns the replies.
std::vector<json> register_many(ws_client& client, const std::string& prefix, int count,
                                const json& metadata = json::object()) {
  std::vector<json> replies;
  constexpr int batch = 200;
  for (int start = 0; start < count; start += batch) {
    std::vector<std::string> ids;
    for (int i = start; i < std::min(count, start + batch); ++i) {
      auto id = client.next_id();
      ids.push_back(id);
      const auto agent = prefix + std::to_string(i);
      json payload = agent_payload(agent, "type-" + std::to_string(i % 10), {"cap-" + agent, "common"});
      payload["metadata"] = metadata;
      client.send({{"type", "agent_register"}, {"id", id}, {"payload", payload}});
    }
    for (const auto& id : ids) {
      auto r = reply_to(client, id, 10s);
      replies.push_back(r ? *r : json(nullptr));
    }
  }
  return replies;
}

}  // namespace

TEST_CASE("agent_register makes the sender that agent and acks with its agentId") {
  gateway_fixture gw;
  auto agent = gw.ready_client("agent-dev");
  auto r = agent->request("agent_register", agent_payload("summarizer-1", "llm", {"summarize", "translate"}));
  REQUIRE(r["type"] == "ack");
  CHECK(r["payload"] == json{{"agentId", "summarizer-1"}});

  auto rec = admin_agent(gw, "summarizer-1");
  REQUIRE(rec.is_object());
  CHECK(rec["status"] == "online");
  CHECK(rec["type"] == "llm");
  CHECK(rec["clientId"] == gateway_fixture::id_of(*agent));
  CHECK(rec["capabilities"] == json::array({"summarize", "translate"}));
}

TEST_CASE("another live client registering a held agentId gets AGENT_CONFLICT") {
  gateway_fixture gw;
  auto first = gw.ready_client();
  auto second = gw.ready_client();
  register_agent(*first, "agent-x", "worker", {"cap"});
  auto r = second->request("agent_register", agent_payload("agent-x", "worker", {"cap"}));
  CHECK(error_code_of(r) == "AGENT_CONFLICT");
  // The agent still belongs to the first client.
  CHECK(admin_agent(gw, "agent-x")["clientId"] == gateway_fixture::id_of(*first));
}

TEST_CASE("the holder re-registering its own agent is accepted and updates it") {
  gateway_fixture gw;
  auto agent = gw.ready_client();
  auto requester = gw.ready_client();
  register_agent(*agent, "agent-x", "worker", {"old-cap"});
  auto r = agent->request("agent_register", agent_payload("agent-x", "worker", {"new-cap"}));
  REQUIRE(r["type"] == "ack");
  CHECK(r["payload"]["agentId"] == "agent-x");

  CHECK(route_and_answer(*requester, {{"capability", "new-cap"}, {"request", 1}},
                         {{"agent-x", agent.get()}}) == "agent-x");
  CHECK(route_and_answer(*requester, {{"capability", "old-cap"}, {"request", 1}},
                         {{"agent-x", agent.get()}}) == "error:NO_AGENT");
}

TEST_CASE("a routed request reaches the agent without replyTo and its answer comes back as route_response") {
  gateway_fixture gw;
  auto agent = gw.ready_client();
  auto requester = gw.ready_client();
  register_agent(*agent, "echo-1", "echo", {"echo"});

  const json request = {{"op", "echo"}, {"args", {1, 2, 3}}};
  auto id = send_route(*requester, {{"agentId", "echo-1"}, {"request", request}});
  auto got = routed(*agent);
  REQUIRE(got);
  CHECK((*got)["type"] == "route_request");
  CHECK_FALSE(got->contains("replyTo"));
  const auto& p = (*got)["payload"];
  CHECK(p["requestId"].is_string());
  CHECK_FALSE(p["requestId"].get<std::string>().empty());
  CHECK(p["from"] == gateway_fixture::id_of(*requester));
  CHECK(p["request"] == request);
  // The requester has no answer yet: the reply waits for the agent.
  CHECK(requester->none_within([&](const json& m) { return m.value("replyTo", "") == id; }, 100ms));

  auto ack =
      agent->request("route_response", {{"requestId", p["requestId"]}, {"response", {{"echoed", request}}}});
  CHECK(ack["type"] == "ack");
  CHECK(ack["payload"] == json::object());

  auto reply = reply_to(*requester, id);
  REQUIRE(reply);
  CHECK((*reply)["type"] == "route_response");
  CHECK((*reply)["replyTo"] == id);
  CHECK((*reply)["payload"]["agentId"] == "echo-1");
  CHECK((*reply)["payload"]["response"] == json{{"echoed", request}});
  // Exactly one reply: nothing else for that id follows.
  CHECK(requester->none_within([&](const json& m) { return m.value("replyTo", "") == id; }, 100ms));
}

TEST_CASE("route_request chooses by agentId, by capability and by agentType") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  auto b = gw.ready_client();
  auto requester = gw.ready_client();
  register_agent(*a, "agent-a", "type-a", {"cap-a"});
  register_agent(*b, "agent-b", "type-b", {"cap-b"});
  const std::vector<std::pair<std::string, ws_client*>> agents = {{"agent-a", a.get()}, {"agent-b", b.get()}};

  CHECK(route_and_answer(*requester, {{"agentId", "agent-b"}, {"request", 1}}, agents) == "agent-b");
  CHECK(route_and_answer(*requester, {{"agentId", "agent-a"}, {"request", 1}}, agents) == "agent-a");
  CHECK(route_and_answer(*requester, {{"capability", "cap-b"}, {"request", 1}}, agents) == "agent-b");
  CHECK(route_and_answer(*requester, {{"capability", "cap-a"}, {"request", 1}}, agents) == "agent-a");
  CHECK(route_and_answer(*requester, {{"agentType", "type-b"}, {"request", 1}}, agents) == "agent-b");
  CHECK(route_and_answer(*requester, {{"agentType", "type-a"}, {"request", 1}}, agents) == "agent-a");
}

TEST_CASE("when several selectors are given agentId wins, then capability") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  auto b = gw.ready_client();
  auto requester = gw.ready_client();
  register_agent(*a, "agent-a", "type-a", {"cap-a"});
  register_agent(*b, "agent-b", "type-b", {"cap-b"});
  const std::vector<std::pair<std::string, ws_client*>> agents = {{"agent-a", a.get()}, {"agent-b", b.get()}};

  CHECK(route_and_answer(
            *requester,
            {{"agentType", "type-a"}, {"capability", "cap-a"}, {"agentId", "agent-b"}, {"request", 1}},
            agents) == "agent-b");
  CHECK(route_and_answer(*requester, {{"agentType", "type-a"}, {"capability", "cap-b"}, {"request", 1}},
                         agents) == "agent-b");
  // The first selector present alone chooses the candidates: no fallback to the others.
  CHECK(route_and_answer(*requester, {{"agentId", "nobody"}, {"capability", "cap-a"}, {"request", 1}},
                         agents) == "error:NO_AGENT");
}

TEST_CASE("route_request without agentId, capability or agentType is INVALID_MESSAGE") {
  gateway_fixture gw;
  auto agent = gw.ready_client();
  auto requester = gw.ready_client();
  register_agent(*agent, "agent-a", "type-a", {"cap-a"});
  auto r = requester->request("route_request", {{"request", {{"q", 1}}}});
  CHECK(error_code_of(r) == "INVALID_MESSAGE");
  CHECK_FALSE(route_arrives_within(*agent, 100ms));
}

TEST_CASE("with no requests in flight the earliest registered candidate wins") {
  gateway_fixture gw;
  auto z = gw.ready_client();
  auto a = gw.ready_client();
  auto requester = gw.ready_client();
  // Registered first, but last in name order, so a choice by name would pick the other one.
  register_agent(*z, "agent-z", "worker", {"work"});
  register_agent(*a, "agent-a", "worker", {"work"});
  const std::vector<std::pair<std::string, ws_client*>> agents = {{"agent-z", z.get()}, {"agent-a", a.get()}};
  for (int i = 0; i < 3; ++i) {
    CHECK(route_and_answer(*requester, {{"capability", "work"}, {"request", i}}, agents) == "agent-z");
    CHECK(route_and_answer(*requester, {{"agentType", "worker"}, {"request", i}}, agents) == "agent-z");
  }
}

TEST_CASE("the candidate with the fewest requests in flight wins") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  auto b = gw.ready_client();
  auto requester = gw.ready_client();
  register_agent(*a, "agent-a", "worker", {"work"});
  register_agent(*b, "agent-b", "worker", {"work"});

  // A (earliest registered) gets the first request and holds it unanswered.
  auto first = send_route(*requester, {{"capability", "work"}, {"request", 1}});
  auto held = routed(*a);
  REQUIRE(held);
  // A has one in flight, B none: the next one goes to B.
  auto second = send_route(*requester, {{"capability", "work"}, {"request", 2}});
  auto to_b = routed(*b);
  REQUIRE(to_b);
  CHECK((*to_b)["payload"]["request"] == 2);
  CHECK_FALSE(route_arrives_within(*a, 100ms));

  // Both hold one now: the tie goes back to A.
  auto third = send_route(*requester, {{"capability", "work"}, {"request", 3}});
  auto to_a = routed(*a);
  REQUIRE(to_a);
  CHECK((*to_a)["payload"]["request"] == 3);

  // A answers both of its requests: A has none in flight, B one, so A wins again.
  answer(*a, *held, "r1");
  answer(*a, *to_a, "r3");
  auto fourth = send_route(*requester, {{"capability", "work"}, {"request", 4}});
  auto again = routed(*a);
  REQUIRE(again);
  CHECK((*again)["payload"]["request"] == 4);
  CHECK_FALSE(route_arrives_within(*b, 100ms));

  answer(*b, *to_b, "r2");
  answer(*a, *again, "r4");
  for (const auto& [id, expected] : std::vector<std::pair<std::string, std::string>>{
           {first, "r1"}, {second, "r2"}, {third, "r3"}, {fourth, "r4"}}) {
    auto reply = reply_to(*requester, id);
    REQUIRE(reply);
    CHECK((*reply)["type"] == "route_response");
    CHECK((*reply)["payload"]["response"] == expected);
  }
}

TEST_CASE("a busy agent is not chosen and is chosen again once back online") {
  gateway_fixture gw;
  auto agent = gw.ready_client();
  auto requester = gw.ready_client();
  register_agent(*agent, "agent-a", "worker", {"work"});
  const std::vector<std::pair<std::string, ws_client*>> agents = {{"agent-a", agent.get()}};

  CHECK(agent->request("agent_status", {{"agentId", "agent-a"}, {"status", "busy"}})["type"] == "ack");
  CHECK(admin_agent(gw, "agent-a")["status"] == "busy");
  CHECK(route_and_answer(*requester, {{"agentId", "agent-a"}, {"request", 1}}, agents) == "error:NO_AGENT");
  CHECK(route_and_answer(*requester, {{"capability", "work"}, {"request", 1}}, agents) == "error:NO_AGENT");
  CHECK_FALSE(route_arrives_within(*agent, 50ms));

  CHECK(agent->request("agent_status", {{"agentId", "agent-a"}, {"status", "online"}})["type"] == "ack");
  CHECK(route_and_answer(*requester, {{"agentId", "agent-a"}, {"request", 1}}, agents) == "agent-a");
}

TEST_CASE("busy and offline agents are passed over for an online one") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  auto b = gw.ready_client();
  auto c = gw.ready_client();
  auto requester = gw.ready_client();
  register_agent(*a, "agent-a", "worker", {"work"});
  register_agent(*b, "agent-b", "worker", {"work"});
  register_agent(*c, "agent-c", "worker", {"work"});
  const std::vector<std::pair<std::string, ws_client*>> agents = {
      {"agent-a", a.get()}, {"agent-b", b.get()}, {"agent-c", c.get()}};

  CHECK(a->request("agent_status", {{"agentId", "agent-a"}, {"status", "busy"}})["type"] == "ack");
  CHECK(b->request("agent_status", {{"agentId", "agent-b"}, {"status", "offline"}})["type"] == "ack");
  CHECK(route_and_answer(*requester, {{"capability", "work"}, {"request", 1}}, agents) == "agent-c");
  CHECK(route_and_answer(*requester, {{"agentType", "worker"}, {"request", 1}}, agents) == "agent-c");
  CHECK(route_and_answer(*requester, {{"agentId", "agent-b"}, {"request", 1}}, agents) == "error:NO_AGENT");

  CHECK(b->request("agent_status", {{"agentId", "agent-b"}, {"status", "online"}})["type"] == "ack");
  CHECK(route_and_answer(*requester, {{"capability", "work"}, {"request", 1}}, agents) == "agent-b");
}

TEST_CASE("route_request that matches no agent is NO_AGENT") {
  gateway_fixture gw;
  auto agent = gw.ready_client();
  auto requester = gw.ready_client();
  CHECK(error_code_of(requester->request("route_request", {{"agentId", "ghost"}, {"request", 1}})) ==
        "NO_AGENT");
  register_agent(*agent, "agent-a", "worker", {"work"});
  CHECK(error_code_of(requester->request("route_request", {{"agentId", "ghost"}, {"request", 1}})) ==
        "NO_AGENT");
  CHECK(error_code_of(requester->request("route_request", {{"capability", "fly"}, {"request", 1}})) ==
        "NO_AGENT");
  CHECK(error_code_of(requester->request("route_request", {{"agentType", "robot"}, {"request", 1}})) ==
        "NO_AGENT");
  CHECK_FALSE(route_arrives_within(*agent, 50ms));
}

TEST_CASE("an unanswered request fails with ROUTE_TIMEOUT and a late answer is ROUTE_NOT_FOUND") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.route_timeout_ms = 300; });
  auto agent = gw.ready_client();
  auto requester = gw.ready_client();
  register_agent(*agent, "slow", "worker", {"work"});

  const auto sent = std::chrono::steady_clock::now();
  auto id = send_route(*requester, {{"agentId", "slow"}, {"request", 1}});
  auto got = routed(*agent);
  REQUIRE(got);
  auto reply = reply_to(*requester, id, 3s);
  const auto elapsed = std::chrono::steady_clock::now() - sent;
  REQUIRE(reply);
  CHECK(error_code_of(*reply) == "ROUTE_TIMEOUT");
  CHECK(elapsed >= 300ms);

  auto late =
      agent->request("route_response", {{"requestId", (*got)["payload"]["requestId"]}, {"response", "late"}});
  CHECK(error_code_of(late) == "ROUTE_NOT_FOUND");
  // Nothing more reaches the requester for that request.
  CHECK(requester->none_within([&](const json& m) { return m.value("replyTo", "") == id; }, 100ms));
  // The timed-out request no longer counts as in flight.
  CHECK(admin_agent(gw, "slow")["inFlight"] == 0);
}

TEST_CASE("route_response with an unknown requestId is ROUTE_NOT_FOUND") {
  gateway_fixture gw;
  auto agent = gw.ready_client();
  register_agent(*agent, "agent-a", "worker", {"work"});
  auto r = agent->request("route_response", {{"requestId", "r-does-not-exist"}, {"response", 1}});
  CHECK(error_code_of(r) == "ROUTE_NOT_FOUND");
}

TEST_CASE("route_response from a client other than the chosen agent is ROUTE_NOT_FOUND") {
  gateway_fixture gw;
  auto agent = gw.ready_client();
  auto other_agent = gw.ready_client();
  auto bystander = gw.ready_client();
  auto requester = gw.ready_client();
  register_agent(*agent, "agent-a", "worker", {"work"});
  register_agent(*other_agent, "agent-b", "other", {"other"});

  auto id = send_route(*requester, {{"agentId", "agent-a"}, {"request", 1}});
  auto got = routed(*agent);
  REQUIRE(got);
  const auto request_id = (*got)["payload"]["requestId"];
  CHECK(error_code_of(other_agent->request(
            "route_response", {{"requestId", request_id}, {"response", "forged"}})) == "ROUTE_NOT_FOUND");
  CHECK(error_code_of(bystander->request(
            "route_response", {{"requestId", request_id}, {"response", "forged"}})) == "ROUTE_NOT_FOUND");
  CHECK(requester->none_within([&](const json& m) { return m.value("replyTo", "") == id; }, 100ms));

  // The real agent can still answer.
  answer(*agent, *got, "genuine");
  auto reply = reply_to(*requester, id);
  REQUIRE(reply);
  CHECK((*reply)["type"] == "route_response");
  CHECK((*reply)["payload"]["response"] == "genuine");
}

TEST_CASE(
    "agent_unregister removes the agent, and unknown or foreign agents are NO_AGENT or AGENT_CONFLICT") {
  gateway_fixture gw;
  auto holder = gw.ready_client();
  auto other = gw.ready_client();
  register_agent(*holder, "agent-a", "worker", {"work"});

  CHECK(error_code_of(other->request("agent_unregister", {{"agentId", "ghost"}})) == "NO_AGENT");
  CHECK(error_code_of(other->request("agent_unregister", {{"agentId", "agent-a"}})) == "AGENT_CONFLICT");
  CHECK(admin_agent(gw, "agent-a").is_object());

  auto r = holder->request("agent_unregister", {{"agentId", "agent-a"}});
  CHECK(r["type"] == "ack");
  CHECK(r["payload"] == json::object());
  CHECK(admin_agent(gw, "agent-a").is_null());
  CHECK(error_code_of(other->request("route_request", {{"agentId", "agent-a"}, {"request", 1}})) ==
        "NO_AGENT");
  CHECK(error_code_of(holder->request("agent_unregister", {{"agentId", "agent-a"}})) == "NO_AGENT");
  // Once removed, anybody may take the id.
  register_agent(*other, "agent-a", "worker", {"work"});
}

TEST_CASE("agent_status for an unknown agent is NO_AGENT and for a foreign one AGENT_CONFLICT") {
  gateway_fixture gw;
  auto holder = gw.ready_client();
  auto other = gw.ready_client();
  register_agent(*holder, "agent-a", "worker", {"work"});

  CHECK(error_code_of(other->request("agent_status", {{"agentId", "ghost"}, {"status", "busy"}})) ==
        "NO_AGENT");
  CHECK(error_code_of(other->request("agent_status", {{"agentId", "agent-a"}, {"status", "busy"}})) ==
        "AGENT_CONFLICT");
  CHECK(admin_agent(gw, "agent-a")["status"] == "online");
  auto r = holder->request("agent_status", {{"agentId", "agent-a"}, {"status", "busy"}});
  CHECK(r["type"] == "ack");
  CHECK(r["payload"] == json::object());
  CHECK(admin_agent(gw, "agent-a")["status"] == "busy");
}

TEST_CASE("agent_status with a status other than online, busy or offline is INVALID_MESSAGE") {
  gateway_fixture gw;
  auto holder = gw.ready_client();
  register_agent(*holder, "agent-a", "worker", {"work"});
  CHECK(error_code_of(holder->request("agent_status", {{"agentId", "agent-a"}, {"status", "sleeping"}})) ==
        "INVALID_MESSAGE");
  CHECK(error_code_of(holder->request("agent_status", {{"agentId", "agent-a"}, {"status", 1}})) ==
        "INVALID_MESSAGE");
  CHECK(error_code_of(holder->request("agent_status", {{"agentId", "agent-a"}})) == "INVALID_MESSAGE");
  CHECK(admin_agent(gw, "agent-a")["status"] == "online");
}

TEST_CASE(
    "when an agent disconnects its request in flight fails at once with NO_AGENT and the agent goes "
    "offline") {
  gateway_fixture gw;  // routeTimeoutMs stays 30000: a NO_AGENT within seconds is not a timeout
  auto agent = gw.ready_client();
  auto requester = gw.ready_client();
  register_agent(*agent, "agent-a", "worker", {"work"});

  auto id = send_route(*requester, {{"agentId", "agent-a"}, {"request", 1}});
  REQUIRE(routed(*agent));
  agent.reset();  // the connection drops without a goodbye

  auto reply = reply_to(*requester, id, 3s);
  REQUIRE(reply);
  CHECK(error_code_of(*reply) == "NO_AGENT");

  // The record stays, offline and held by nobody.
  auto rec = admin_agent(gw, "agent-a");
  REQUIRE(rec.is_object());
  CHECK(rec["status"] == "offline");
  CHECK(rec["clientId"].is_null());
  CHECK(rec["inFlight"] == 0);
  CHECK(error_code_of(requester->request("route_request", {{"agentId", "agent-a"}, {"request", 2}})) ==
        "NO_AGENT");

  // Another client can take the agent over and receives its routes.
  auto successor = gw.ready_client();
  register_agent(*successor, "agent-a", "worker", {"work"});
  CHECK(admin_agent(gw, "agent-a")["status"] == "online");
  CHECK(admin_agent(gw, "agent-a")["clientId"] == gateway_fixture::id_of(*successor));
  CHECK(route_and_answer(*requester, {{"agentId", "agent-a"}, {"request", 3}},
                         {{"agent-a", successor.get()}}) == "agent-a");
}

// -- bounds (hostile input: one client must not grow the registry without limit) ----------------------------

TEST_CASE("an agent_register past maxAgentsPerClient is refused with INVALID_MESSAGE and counted") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.max_agents_per_client = 3; });
  auto holder = gw.ready_client();
  auto other = gw.ready_client();
  for (const char* id : {"a-1", "a-2", "a-3"}) register_agent(*holder, id, "worker", {"work"});

  auto refused = holder->request("agent_register", agent_payload("a-4", "worker", {"work"}));
  INFO(refused.dump());
  CHECK(error_code_of(refused) == "INVALID_MESSAGE");
  CHECK(refused["payload"]["message"].get<std::string>().find("maxAgentsPerClient") != std::string::npos);
  CHECK(limit_count(gw, "maxAgentsPerClient") == 1);
  CHECK(admin_agent(gw, "a-4").is_null());
  CHECK(stats_agents(gw) == 3);
  auto metrics = http_get(gw.port(), "/metrics");
  CHECK(metrics.second.find("switchboard_limit_exceeded_total{limit=\"maxAgentsPerClient\"} 1") !=
        std::string::npos);

  // Re-registering an agent it holds is an update, not one more.
  register_agent(*holder, "a-2", "worker", {"work", "more"});
  // The bound is per connection: another client still registers.
  register_agent(*other, "b-1", "worker", {"work"});
  // Giving one up makes room again.
  REQUIRE(holder->request("agent_unregister", {{"agentId", "a-1"}})["type"] == "ack");
  register_agent(*holder, "a-4", "worker", {"work"});
  CHECK(limit_count(gw, "maxAgentsPerClient") == 1);

  // Taking over an offline record counts towards the taker's bound too.
  auto third = gw.ready_client();
  for (const char* id : {"c-1", "c-2", "c-3"}) register_agent(*third, id, "worker", {"work"});
  other.reset();
  REQUIRE(eventually([&] { return admin_agent(gw, "b-1")["status"] == "offline"; }));
  CHECK(error_code_of(third->request("agent_register", agent_payload("b-1", "worker", {"work"}))) ==
        "INVALID_MESSAGE");
  CHECK(limit_count(gw, "maxAgentsPerClient") == 2);
}

TEST_CASE("maxAgents bounds the records on a node and an offline record gives way to a new agent") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.max_agents = 4; });
  auto a = gw.ready_client();
  auto b = gw.ready_client();
  auto c = gw.ready_client();
  register_agent(*a, "a-1", "worker", {"work"});
  register_agent(*a, "a-2", "worker", {"work"});
  register_agent(*b, "b-1", "worker", {"work"});
  register_agent(*b, "b-2", "worker", {"work"});

  auto refused = c->request("agent_register", agent_payload("c-1", "worker", {"work"}));
  INFO(refused.dump());
  CHECK(error_code_of(refused) == "INVALID_MESSAGE");
  CHECK(refused["payload"]["message"].get<std::string>().find("maxAgents") != std::string::npos);
  CHECK(limit_count(gw, "maxAgents") == 1);
  CHECK(stats_agents(gw) == 4);
  // Updating a record that exists needs no room.
  register_agent(*a, "a-1", "worker", {"work", "more"});

  // B goes away: its records are offline, and the one offline longest makes room for a new agent.
  b.reset();
  REQUIRE(eventually([&] { return gw.admin({{"cmd", "stats"}})["result"]["agentsOnline"] == 2; }));
  register_agent(*c, "c-1", "worker", {"work"});
  CHECK(stats_agents(gw) == 4);
  const auto all = admin_agents(gw);
  CHECK(all.size() == 4);
  CHECK(admin_agent(gw, "c-1")["status"] == "online");
  // Online agents are never dropped: with every record online the next one is refused again.
  register_agent(*c, "c-2", "worker", {"work"});
  CHECK(error_code_of(c->request("agent_register", agent_payload("c-3", "worker", {"work"}))) ==
        "INVALID_MESSAGE");
  CHECK(limit_count(gw, "maxAgents") == 2);
  for (const char* id : {"a-1", "a-2", "c-1", "c-2"}) CHECK(admin_agent(gw, id)["status"] == "online");
}

TEST_CASE("an offline agent's record and its metadata are forgotten after agentOfflineTtlMs") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.agent_offline_ttl_ms = 300; });
  auto agent = gw.ready_client();
  auto requester = gw.ready_client();
  const json big = {{"blob", std::string(10 * 1024, 'm')}};
  auto payload = agent_payload("agent-a", "worker", {"work"});
  payload["metadata"] = big;
  REQUIRE(agent->request("agent_register", payload)["type"] == "ack");
  CHECK(admin_agent(gw, "agent-a")["metadata"] == big);

  const auto dropped = std::chrono::steady_clock::now();
  agent.reset();
  REQUIRE(eventually([&] { return admin_agent(gw, "agent-a")["status"] == "offline"; }));
  // Polled until gone: the record, its metadata with it, and the count.
  REQUIRE(eventually([&] { return admin_agent(gw, "agent-a").is_null(); }, 5s));
  CHECK(std::chrono::steady_clock::now() - dropped >= 300ms);
  CHECK(stats_agents(gw) == 0);
  CHECK(admin_agents(gw).empty());
  CHECK(error_code_of(requester->request("route_request", {{"agentId", "agent-a"}, {"request", 1}})) ==
        "NO_AGENT");
  // The id is free again, for anybody.
  register_agent(*requester, "agent-a", "worker", {"work"});
}

TEST_CASE("an agent that comes back before agentOfflineTtlMs keeps its record") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.agent_offline_ttl_ms = 1000; });
  auto first = gw.ready_client();
  auto witness = gw.ready_client();
  register_agent(*first, "returning", "worker", {"work"});
  register_agent(*witness, "leaving", "worker", {"work"});
  const auto registered_at = admin_agent(gw, "returning")["registeredAt"];

  first.reset();
  REQUIRE(eventually([&] { return admin_agent(gw, "returning")["status"] == "offline"; }));
  witness.reset();  // goes offline after "returning" did, so it expires after "returning" would have
  REQUIRE(eventually([&] { return admin_agent(gw, "leaving")["status"] == "offline"; }));
  auto successor = gw.ready_client();
  register_agent(*successor, "returning", "worker", {"work"});

  // Once the later record has expired, the earlier deadline has passed too.
  REQUIRE(eventually([&] { return admin_agent(gw, "leaving").is_null(); }, 5s));
  auto rec = admin_agent(gw, "returning");
  REQUIRE(rec.is_object());
  CHECK(rec["status"] == "online");
  CHECK(rec["clientId"] == gateway_fixture::id_of(*successor));
  CHECK(rec["registeredAt"] == registered_at);

  // Offline again later, it gets a fresh TTL and then goes.
  successor.reset();
  REQUIRE(eventually([&] { return admin_agent(gw, "returning").is_null(); }, 5s));
  CHECK(stats_agents(gw) == 0);
}

TEST_CASE("thousands of agents on one client are found by id, capability and type and routed in order") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) {
    c.rate_limit = 0;
    c.max_agents_per_client = 5000;
  });
  auto agents = gw.ready_client();
  auto requester = gw.ready_client();
  constexpr int count = 3000;
  auto replies = register_many(*agents, "agent-", count);
  int acked = 0;
  for (const auto& r : replies) acked += r.is_object() && r["type"] == "ack";
  CHECK(acked == count);
  CHECK(stats_agents(gw) == count);
  CHECK(gw.admin({{"cmd", "stats"}})["result"]["agentsOnline"] == count);

  const std::vector<std::pair<std::string, ws_client*>> holder = {{"holder", agents.get()}};
  CHECK(route_and_answer(*requester, {{"agentId", "agent-2345"}, {"request", 1}}, holder) == "agent-2345");
  CHECK(route_and_answer(*requester, {{"capability", "cap-agent-1234"}, {"request", 1}}, holder) ==
        "agent-1234");
  CHECK(route_and_answer(*requester, {{"agentType", "type-7"}, {"request", 1}}, holder) == "agent-7");
  CHECK(route_and_answer(*requester, {{"capability", "common"}, {"request", 1}}, holder) == "agent-0");
  CHECK(route_and_answer(*requester, {{"capability", "cap-agent-3000"}, {"request", 1}}, holder) ==
        "error:NO_AGENT");

  // Held requests move the choice along the earliest-registered order of the type.
  auto first = send_route(*requester, {{"agentType", "type-3"}, {"request", "x"}});
  auto held_first = routed(*agents);
  REQUIRE(held_first);
  auto second = send_route(*requester, {{"agentType", "type-3"}, {"request", "y"}});
  auto held_second = routed(*agents);
  REQUIRE(held_second);
  answer(*agents, *held_first, "x");
  answer(*agents, *held_second, "y");
  auto r1 = reply_to(*requester, first);
  auto r2 = reply_to(*requester, second);
  REQUIRE(r1);
  REQUIRE(r2);
  CHECK((*r1)["payload"]["agentId"] == "agent-3");
  CHECK((*r2)["payload"]["agentId"] == "agent-13");

  // An agent set busy leaves every index it was in; back online it is chosen again.
  REQUIRE(agents->request("agent_status", {{"agentId", "agent-7"}, {"status", "busy"}})["type"] == "ack");
  CHECK(route_and_answer(*requester, {{"agentType", "type-7"}, {"request", 1}}, holder) == "agent-17");
  CHECK(route_and_answer(*requester, {{"capability", "cap-agent-7"}, {"request", 1}}, holder) ==
        "error:NO_AGENT");
  REQUIRE(agents->request("agent_status", {{"agentId", "agent-7"}, {"status", "online"}})["type"] == "ack");
  CHECK(route_and_answer(*requester, {{"capability", "cap-agent-7"}, {"request", 1}}, holder) == "agent-7");

  // A re-registration with new capabilities replaces the old ones in the index.
  auto update = agents->request("agent_register", agent_payload("agent-42", "other", {"fresh"}));
  REQUIRE(update["type"] == "ack");
  CHECK(route_and_answer(*requester, {{"capability", "cap-agent-42"}, {"request", 1}}, holder) ==
        "error:NO_AGENT");
  CHECK(route_and_answer(*requester, {{"capability", "fresh"}, {"request", 1}}, holder) == "agent-42");
  CHECK(route_and_answer(*requester, {{"agentType", "other"}, {"request", 1}}, holder) == "agent-42");

  // The holder goes: every agent is offline at once and none is routable.
  agents.reset();
  REQUIRE(eventually([&] { return gw.admin({{"cmd", "stats"}})["result"]["agentsOnline"] == 0; }));
  CHECK(stats_agents(gw) == count);
  CHECK(error_code_of(requester->request("route_request", {{"capability", "common"}, {"request", 1}})) ==
        "NO_AGENT");
  CHECK(error_code_of(requester->request("route_request", {{"agentType", "type-1"}, {"request", 1}})) ==
        "NO_AGENT");
}

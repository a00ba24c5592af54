// Gateway nodes on one NATS act as one gateway: sessions whose members sit on different nodes, broadcasts
// that reach every member once with the right `delivered`, join/leave/patch/info across nodes, membership
// and `admin cluster`, and a node that dies (its members leave every session).
#include <catch2/catch.hpp>
#include <set>

#include "support/cluster_fixture.hpp"

using namespace sb::test;
using json = nlohmann::json;


TEST_CASE("cluster: admin cluster lists every node with its state and load", "[cluster]") {
  cluster_fixture cl(3);
  auto members = members_of(*cl.nodes[2]);
  INFO(members.dump());
  std::set<std::string> ids;
  for (const auto& m : members) {
    ids.insert(m["nodeId"].get<std::string>());
    CHECK(m["state"] == "alive");
    CHECK(m["address"].get<std::string>().rfind("ws://127.0.0.1:", 0) == 0);
    CHECK(m["lastHeartbeat"].get<std::int64_t>() > 0);
  }
  CHECK(ids == std::set<std::string>{"n0", "n1", "n2"});
  auto r = cl.nodes[0]->admin({{"cmd", "cluster"}});
  CHECK(r["result"]["link"] == "connected");
  CHECK(r["result"]["cluster"] == "t");
}

TEST_CASE("cluster: a session with members on three nodes gets every broadcast once", "[cluster]") {
  cluster_fixture cl(3);
  std::vector<std::unique_ptr<ws_client>> clients;
  for (int i = 0; i < 6; ++i) clients.push_back(cl.nodes[i % 3]->ready_client());
  REQUIRE(joined_session(*clients[0], "session_create", "room") == "room");
  for (int i = 1; i < 6; ++i) joined_session(*clients[i], "session_join", "room");

  // Everyone is in the record, on every node.
  for (auto& node : cl.nodes) {
    json r;
    INFO(r.dump());
    REQUIRE(eventually([&] {
      r = node->admin({{"cmd", "session"}, {"id", "room"}});
      return r.value("ok", false) && r["result"]["session"]["clients"].size() == 6;
    }));
  }

  for (int sender = 0; sender < 6; ++sender) {
    auto ack = clients[sender]->request("chat", {{"text", "from " + std::to_string(sender)}}, std::string("room"));
    INFO(ack.dump());
    REQUIRE(ack["type"] == "ack");
    CHECK(ack["payload"]["delivered"] == 5);
  }
  for (int i = 0; i < 6; ++i) {
    auto got = texts(*clients[i], 5);
    INFO("client " << i);
    CHECK(got.size() == 5);
    CHECK(got.count("from " + std::to_string(i)) == 0);
    for (int s = 0; s < 6; ++s)
      if (s != i) CHECK(got.count("from " + std::to_string(s)) == 1);
  }
  // No duplicates trail behind.
  for (auto& c : clients)
    CHECK(c->none_within([](const json& j) { return j.value("type", "") == "chat"; }, 300ms));

  // `stats` adds the cluster's total: every node's connections, the one session counted once.
  json stats;
  INFO(stats.dump());
  REQUIRE(eventually([&] {
    stats = cl.nodes[1]->admin({{"cmd", "stats"}});
    return stats["result"]["cluster"].is_object() && stats["result"]["cluster"]["connections"] == 6;
  }));
  CHECK(stats["result"]["clients"] == 2);
  CHECK(stats["result"]["cluster"]["nodes"] == 3);
  CHECK(stats["result"]["cluster"]["sessions"] == 1);
  CHECK(stats["result"]["cluster"]["link"] == "connected");
}

TEST_CASE("cluster: join, leave, patch and presence cross nodes", "[cluster]") {
  cluster_fixture cl(2);
  auto a = cl.nodes[0]->ready_client();
  auto b = cl.nodes[1]->ready_client();
  const auto a_id = gateway_fixture::id_of(*a);
  const auto b_id = gateway_fixture::id_of(*b);
  joined_session(*a, "session_create", "s1");

  // A session that exists only on another node: joining it here works, creating it again does not.
  auto again = b->request("session_create", {{"sessionId", "s1"}}, std::string("s1"));
  CHECK(again["payload"]["code"] == "SESSION_EXISTS");
  auto info = b->request("session_join", json::object(), std::string("s1"));
  REQUIRE(info["type"] == "session_info");
  CHECK(info["payload"]["session"]["clients"] == json::array({a_id, b_id}));
  auto join = a->wait_for([](const json& j) { return j.value("type", "") == "presence" && j["payload"]["event"] == "join"; });
  REQUIRE(join);
  CHECK((*join)["payload"]["clientId"] == b_id);

  // A patch on one node reaches the member on the other.
  auto patched = b->request("session_patch", {{"metadata", {{"topic", "clusters"}}}}, std::string("s1"));
  REQUIRE(patched["type"] == "session_info");
  auto seen = a->event("session_info");
  REQUIRE(seen);
  CHECK((*seen)["payload"]["session"]["metadata"]["topic"] == "clusters");

  // Not a member here, but the session exists elsewhere: NOT_IN_SESSION, not SESSION_NOT_FOUND.
  auto c = cl.nodes[1]->ready_client();
  REQUIRE(eventually([&] {
    auto r = c->request("chat", {{"text", "x"}}, std::string("s1"));
    return r["payload"].value("code", "") == "NOT_IN_SESSION";
  }));
  CHECK(c->request("chat", {{"text", "x"}}, std::string("nowhere"))["payload"]["code"] == "SESSION_NOT_FOUND");

  // Leaving on one node is announced on the other.
  CHECK(b->request("session_leave", json::object(), std::string("s1"))["type"] == "ack");
  auto left = a->wait_for([](const json& j) { return j.value("type", "") == "presence" && j["payload"]["event"] == "leave"; });
  REQUIRE(left);
  CHECK((*left)["payload"]["clientId"] == b_id);
  auto ack = a->request("chat", {{"text", "alone"}}, std::string("s1"));
  CHECK(ack["payload"]["delivered"] == 0);

  // The last member leaves: the session is gone cluster-wide.
  CHECK(a->request("session_leave", json::object(), std::string("s1"))["type"] == "ack");
  REQUIRE(eventually([&] {
    return b->request("session_join", json::object(), std::string("s1"))["payload"].value("code", "") ==
           "SESSION_NOT_FOUND";
  }));
}

TEST_CASE("cluster: concurrent joins on different nodes never lose a member", "[cluster]") {
  cluster_fixture cl(3);
  auto owner = cl.nodes[0]->ready_client();
  joined_session(*owner, "session_create", "busy");
  std::vector<std::unique_ptr<ws_client>> joiners;
  for (int i = 0; i < 15; ++i) joiners.push_back(cl.nodes[i % 3]->ready_client());
  // Every join is sent before any answer is read: the nodes race on the record.
  std::vector<std::string> ids;
  for (auto& j : joiners) {
    ids.push_back(gateway_fixture::id_of(*j));
    j->send({{"type", "session_join"}, {"id", "j"}, {"sessionId", "busy"}});
  }
  for (auto& j : joiners) {
    auto r = j->wait_for([](const json& m) { return m.value("replyTo", "") == "j"; }, 10s);
    REQUIRE(r);
    CHECK((*r)["type"] == "session_info");
  }
  json r;
  INFO(r.dump());
  REQUIRE(eventually([&] {
    r = cl.nodes[2]->admin({{"cmd", "session"}, {"id", "busy"}});
    return r.value("ok", false) && r["result"]["session"]["clients"].size() == 16;
  }));
  auto ack = owner->request("chat", {{"text", "all here?"}}, std::string("busy"));
  CHECK(ack["payload"]["delivered"] == 15);
  for (auto& j : joiners) CHECK(texts(*j, 1).count("all here?") == 1);
}

TEST_CASE("cluster: a node that stops heartbeating is dropped and its members leave", "[cluster]") {
  cluster_fixture cl(3);
  auto a = cl.nodes[0]->ready_client();
  auto doomed = cl.nodes[2]->ready_client();
  const auto doomed_id = gateway_fixture::id_of(*doomed);
  joined_session(*a, "session_create", "s");
  joined_session(*doomed, "session_join", "s");
  REQUIRE(a->wait_for([](const json& j) { return j.value("type", "") == "presence" && j["payload"]["event"] == "join"; }));

  // Stopping the node's actors and sockets without its goodbye would need SIGKILL (tests/cluster/faults_test);
  // here it leaves politely: its last heartbeat says so, its clients are closed, and the others drop it.
  const auto started = std::chrono::steady_clock::now();
  cl.nodes[2]->node->stop();
  auto left = a->wait_for([](const json& j) { return j.value("type", "") == "presence" && j["payload"]["event"] == "leave"; }, 5s);
  REQUIRE(left);
  CHECK((*left)["payload"]["clientId"] == doomed_id);
  CHECK(std::chrono::steady_clock::now() - started < 2s);
  REQUIRE(eventually([&] { return members_of(*cl.nodes[0]).size() == 2; }, 3s));
  CHECK(a->request("chat", {{"text", "still here"}}, std::string("s"))["payload"]["delivered"] == 0);
}

TEST_CASE("cluster: two clusters on one NATS do not see each other", "[cluster]") {
  temp_dir dir;
  nats_server nats(dir.path());
  auto node_in = [&](const std::string& cluster, const std::string& id) {
    return std::make_unique<gateway_fixture>([&](sb::protocol::gateway_config& c) { join_cluster(c, nats, cluster, id); });
  };
  auto red = node_in("red", "r0");
  auto blue = node_in("blue", "b0");
  auto red2 = node_in("red", "r1");
  REQUIRE(eventually([&] { return members_of(*red).size() == 2; }, 5s));
  std::this_thread::sleep_for(500ms);  // five heartbeats: a leak across clusters would show by now
  CHECK(members_of(*blue).size() == 1);
  CHECK(members_of(*red).size() == 2);
  auto x = red->ready_client();
  joined_session(*x, "session_create", "same-id");
  auto y = blue->ready_client();
  CHECK(joined_session(*y, "session_create", "same-id") == "same-id");  // another cluster's namespace
}

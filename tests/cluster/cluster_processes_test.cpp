// Faults with real processes behind HAProxy: a node killed with SIGKILL under a steady broadcast (noticed
// within 2 s, its clients leave sessions and presence, routes to its agents fail at once, the others miss
// nothing, its clients come back through HAProxy), and a node stopped with SIGTERM (its clients closed with
// 1001, no new client sent to it).
#include <signal.h>

#include <catch2/catch.hpp>
#include <set>

#include "support/agents.hpp"
#include "support/node_processes.hpp"

using namespace sb::test;
using json = nlohmann::json;

namespace {

void join(ws_client& c, const std::string& type, const std::string& sid) {
  auto r = c.request(type, {{"sessionId", sid}}, sid);
  INFO(r.dump());
  REQUIRE(r["type"] == "session_info");
}

/// What one member received: chat texts (counted, so a duplicate shows) and presence leaves, by client.
struct inbox {
  std::multiset<std::string> chats;
  std::set<std::string> left;
};

/// Reads `c` until it holds every text of `expected` and a leave of every client in `leaves`, or `window`
/// passes without a message.
inbox read_until(ws_client& c, const std::set<std::string>& expected, const std::set<std::string>& leaves = {},
                 std::chrono::milliseconds window = 5s) {
  inbox got;
  auto missing = [&] {
    for (const auto& t : expected)
      if (!got.chats.count(t)) return true;
    for (const auto& id : leaves)
      if (!got.left.count(id)) return true;
    return false;
  };
  while (missing()) {
    auto m = c.next(window);
    if (!m) break;
    const auto type = m->value("type", "");
    if (type == "chat") got.chats.insert((*m)["payload"]["text"].get<std::string>());
    if (type == "presence" && (*m)["payload"]["event"] == "leave")
      got.left.insert((*m)["payload"]["clientId"].get<std::string>());
  }
  return got;
}

std::size_t members_of_session(const node_process& node, const std::string& sid) {
  auto r = node.admin({{"cmd", "session"}, {"id", sid}});
  return r.value("ok", false) ? r["result"]["session"]["clients"].size() : 0;
}

}  // namespace

TEST_CASE("cluster: a node killed under a steady broadcast is noticed and loses nothing for the others",
          "[cluster][faults]") {
  process_cluster cl(3);
  auto sender = process_cluster::attach(cl.node(0).port);
  auto r0 = process_cluster::attach(cl.node(0).port);
  auto r1 = process_cluster::attach(cl.node(1).port);
  auto v1 = process_cluster::attach(cl.node(2).port);
  auto v2 = process_cluster::attach(cl.node(2).port);
  join(*sender.ws, "session_create", "room");
  for (auto* c : {&r0, &r1, &v1, &v2}) join(*c->ws, "session_join", "room");
  for (int n : {0, 1, 2}) REQUIRE(eventually([&] { return members_of_session(cl.node(n), "room") == 5; }));

  // An agent on the doomed node, with a request from n1 in flight that it will never answer.
  auto agent = process_cluster::attach(cl.node(2).port);
  auto requester = process_cluster::attach(cl.node(1).port);
  register_agent(*agent.ws, "doomed-agent", "tool", {"doom"});
  REQUIRE(routable_from(*requester.ws, "doomed-agent", *agent.ws));
  const auto pending = send_route(*requester.ws, {{"agentId", "doomed-agent"}, {"request", "never answered"}});
  REQUIRE(routed(*agent.ws));

  std::set<std::string> sent;
  auto send_chat = [&](const std::string& text) {
    auto ack = sender.ws->request("chat", {{"text", text}}, std::string("room"));
    INFO(ack.dump());
    REQUIRE(ack["type"] == "ack");
    sent.insert(text);
    return ack["payload"]["delivered"].get<int>();
  };
  for (int i = 0; i < 10; ++i) CHECK(send_chat("before " + std::to_string(i)) == 4);

  cl.node(2).process->signal(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  std::optional<std::chrono::milliseconds> noticed;
  std::set<std::string> after_kill;
  for (int i = 0; std::chrono::steady_clock::now() - killed < 3s; ++i) {
    const auto text = "after " + std::to_string(i);
    send_chat(text);
    after_kill.insert(text);
    if (!noticed && cl.node(0).members() == 2 && cl.node(1).members() == 2)
      noticed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed);
    std::this_thread::sleep_for(20ms);
  }
  REQUIRE(noticed);
  CHECK(noticed->count() < 2000);
  // After the verdict its members are out of the session: the acks count the survivors only.
  CHECK(send_chat("last") == 2);
  after_kill.insert("last");

  // The survivors got every message, once, and saw both of the dead node's members leave.
  for (auto* c : {&r0, &r1}) {
    INFO(c->node_id);
    auto got = read_until(*c->ws, sent, {v1.client_id, v2.client_id});
    for (const auto& t : sent) CHECK(got.chats.count(t) == 1);
    CHECK(got.left == std::set<std::string>{v1.client_id, v2.client_id});
  }
  REQUIRE(eventually([&] { return members_of_session(cl.node(0), "room") == 3; }));

  // Its agent's pending route failed with the protocol's error long before its 20 s timeout, and a new one
  // is refused at once.
  auto failed = reply_to(*requester.ws, pending, 1s);
  REQUIRE(failed);
  CHECK(error_code_of(*failed) == "NO_AGENT");
  auto again = send_route(*requester.ws, {{"agentId", "doomed-agent"}, {"request", "anyone?"}});
  auto refused = reply_to(*requester.ws, again, 2s);
  REQUIRE(refused);
  CHECK(error_code_of(*refused) == "NO_AGENT");

  // Presence: nobody lists the dead node's clients any more.
  auto hello = r1.ws->request("connect", json::object());
  for (const auto& p : hello["payload"]["presence"]) {
    CHECK(p["clientId"] != v1.client_id);
    CHECK(p["clientId"] != v2.client_id);
  }

  // Its clients were cut; they come back through HAProxy, land on a live node and rejoin.
  CHECK(v1.ws->wait_closed(5s));
  std::vector<attached_client> back;
  for (int i = 0; i < 2; ++i) {
    back.push_back(process_cluster::attach(cl.balancer_port()));
    CHECK(back.back().node_id != "n2");
    join(*back.back().ws, "session_join", "room");
  }
  for (int n : {0, 1}) REQUIRE(eventually([&] { return members_of_session(cl.node(n), "room") == 5; }));
  CHECK(send_chat("welcome back") == 4);
  for (auto& c : back) CHECK(read_until(*c.ws, {"welcome back"}).chats.count("welcome back") == 1);
}

TEST_CASE("cluster: a node stopped with SIGTERM closes its clients with 1001 and HAProxy sends it none",
          "[cluster][faults]") {
  process_cluster cl(3);
  auto leaving = process_cluster::attach(cl.node(2).port);
  auto staying = process_cluster::attach(cl.node(0).port);
  join(*staying.ws, "session_create", "s");
  join(*leaving.ws, "session_join", "s");

  cl.node(2).process->signal(SIGTERM);
  CHECK(leaving.ws->wait_closed(5s) == 1001);
  // While it drains and once it is gone, every new client is sent to another node, and none fails.
  std::set<std::string> landed;
  for (int i = 0; i < 9; ++i) {
    auto c = process_cluster::attach(cl.balancer_port());
    landed.insert(c.node_id);
  }
  CHECK_FALSE(landed.count("n2"));
  CHECK_FALSE(landed.empty());
  CHECK(cl.node(2).process->wait_exit(10s) == 0);
  auto left = staying.ws->wait_for(
      [](const json& m) { return m.value("type", "") == "presence" && m["payload"]["event"] == "leave"; }, 5s);
  REQUIRE(left);
  CHECK((*left)["payload"]["clientId"] == leaving.client_id);
}

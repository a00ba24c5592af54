// Sessions: creation, membership, presence, broadcast, merge patch and cleanup, over real sockets.
#include <catch2/catch.hpp>

#include "support/gateway_fixture.hpp"

using namespace sb::test;

namespace {

std::string error_code_of(const json& msg) {
  return msg["type"] == "error" ? msg["payload"].value("code", "") : "";
}

bool is_presence(const json& m, const std::string& event, const std::string& client_id) {
  return m.value("type", "") == "presence" && m["payload"].value("event", "") == event &&
         m["payload"].value("clientId", "") == client_id;
}

}  // namespace

TEST_CASE("session_create takes the id from the payload, else sessionId, else generates one") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  auto r = a->request("session_create", {{"sessionId", "from-payload"}, {"metadata", {{"topic", "x"}}}},
                      std::string("ignored"));
  REQUIRE(r["type"] == "session_info");
  const auto& s = r["payload"]["session"];
  CHECK(s["id"] == "from-payload");
  CHECK(s["clients"] == json::array({gateway_fixture::id_of(*a)}));
  CHECK(s["metadata"] == json{{"topic", "x"}});
  CHECK(s["createdAt"].is_number());

  CHECK(a->request("session_create", json::object(),
                   std::string("from-envelope"))["payload"]["session"]["id"] == "from-envelope");
  auto generated = a->request("session_create");
  CHECK(generated["payload"]["session"]["id"].get<std::string>().size() > 5);
}

TEST_CASE("creating a session that exists is SESSION_EXISTS") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  auto b = gw.ready_client();
  REQUIRE(a->request("session_create", {{"sessionId", "dup"}})["type"] == "session_info");
  CHECK(error_code_of(b->request("session_create", {{"sessionId", "dup"}})) == "SESSION_EXISTS");
}

TEST_CASE("joining tells the other members and returns the session") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  auto b = gw.ready_client();
  a->request("session_create", {{"sessionId", "room"}});
  auto joined = b->request("session_join", json::object(), std::string("room"));
  REQUIRE(joined["type"] == "session_info");
  CHECK(joined["payload"]["session"]["clients"] ==
        json::array({gateway_fixture::id_of(*a), gateway_fixture::id_of(*b)}));
  auto note = a->event("presence");
  REQUIRE(note);
  CHECK(is_presence(*note, "join", gateway_fixture::id_of(*b)));
  CHECK((*note)["payload"]["sessionId"] == "room");
  CHECK(b->none_within([](const json& m) { return m.value("type", "") == "presence"; }, 150ms));
}

TEST_CASE("session operations on a missing session are SESSION_NOT_FOUND") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  CHECK(error_code_of(a->request("session_join", json::object(), std::string("nope"))) ==
        "SESSION_NOT_FOUND");
  CHECK(error_code_of(a->request("session_leave", json::object(), std::string("nope"))) ==
        "SESSION_NOT_FOUND");
  CHECK(error_code_of(a->request("session_patch", {{"metadata", {{"a", 1}}}}, std::string("nope"))) ==
        "SESSION_NOT_FOUND");
  CHECK(error_code_of(a->request("chat", {{"text", "x"}}, std::string("nope"))) == "SESSION_NOT_FOUND");
  CHECK(error_code_of(a->request("tool_start", json::object(), std::string("nope"))) == "SESSION_NOT_FOUND");
}

TEST_CASE("non-members get NOT_IN_SESSION for patch, chat, relay and leave") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  auto outsider = gw.ready_client();
  a->request("session_create", {{"sessionId", "private"}});
  const std::optional<std::string> sid("private");
  CHECK(error_code_of(outsider->request("chat", {{"text", "x"}}, sid)) == "NOT_IN_SESSION");
  CHECK(error_code_of(outsider->request("tool_update", {{"step", 1}}, sid)) == "NOT_IN_SESSION");
  CHECK(error_code_of(outsider->request("session_patch", {{"metadata", {{"a", 1}}}}, sid)) ==
        "NOT_IN_SESSION");
  CHECK(error_code_of(outsider->request("session_leave", json::object(), sid)) == "NOT_IN_SESSION");
  CHECK(a->none_within([](const json& m) { return m.value("type", "") != "presence"; }, 150ms));
}

TEST_CASE("chat goes to every other member with from, and the sender gets delivered") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  auto b = gw.ready_client();
  auto c = gw.ready_client();
  a->request("session_create", {{"sessionId", "chat"}});
  b->request("session_join", json::object(), std::string("chat"));
  c->request("session_join", json::object(), std::string("chat"));
  auto ack = a->request("chat", {{"text", "hello"}, {"extra", 1}}, std::string("chat"));
  REQUIRE(ack["type"] == "ack");
  CHECK(ack["payload"]["delivered"] == 2);
  for (auto* member : {b.get(), c.get()}) {
    auto msg = member->event("chat");
    REQUIRE(msg);
    CHECK((*msg)["payload"]["text"] == "hello");
    CHECK((*msg)["payload"]["extra"] == 1);
    CHECK((*msg)["payload"]["from"] == gateway_fixture::id_of(*a));
    CHECK((*msg)["sessionId"] == "chat");
    CHECK_FALSE(msg->contains("replyTo"));
  }
  CHECK(a->none_within([](const json& m) { return m.value("type", "") == "chat"; }, 150ms));
}

TEST_CASE("chat without sessionId or text is INVALID_MESSAGE") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  a->request("session_create", {{"sessionId", "s"}});
  CHECK(error_code_of(a->request("chat", {{"text", "x"}})) == "INVALID_MESSAGE");
  CHECK(error_code_of(a->request("chat", {{"text", 5}}, std::string("s"))) == "INVALID_MESSAGE");
}

TEST_CASE("other types with a sessionId are relayed like chat") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  auto b = gw.ready_client();
  a->request("session_create", {{"sessionId", "tools"}});
  b->request("session_join", json::object(), std::string("tools"));
  auto ack = a->request("tool_start", {{"tool", "grep"}}, std::string("tools"));
  CHECK(ack["type"] == "ack");
  CHECK(ack["payload"]["delivered"] == 1);
  auto relayed = b->event("tool_start");
  REQUIRE(relayed);
  CHECK((*relayed)["payload"]["tool"] == "grep");
  CHECK((*relayed)["payload"]["from"] == gateway_fixture::id_of(*a));
}

TEST_CASE("session_patch merges metadata and tells the other members") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  auto b = gw.ready_client();
  a->request("session_create",
             {{"sessionId", "meta"}, {"metadata", {{"keep", 1}, {"drop", 2}, {"nested", {{"x", 1}}}}}});
  b->request("session_join", json::object(), std::string("meta"));
  auto r =
      a->request("session_patch", {{"metadata", {{"drop", nullptr}, {"nested", {{"y", 2}}}, {"new", "v"}}}},
                 std::string("meta"));
  REQUIRE(r["type"] == "session_info");
  json expected = {{"keep", 1}, {"nested", {{"x", 1}, {"y", 2}}}, {"new", "v"}};
  CHECK(r["payload"]["session"]["metadata"] == expected);
  auto seen = b->event("session_info");
  REQUIRE(seen);
  CHECK((*seen)["payload"]["session"]["metadata"] == expected);
  CHECK(error_code_of(a->request("session_patch", {{"metadata", "flat"}}, std::string("meta"))) ==
        "INVALID_MESSAGE");
}

TEST_CASE("presence updates reach the members of the sender's sessions") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  auto b = gw.ready_client();
  auto stranger = gw.ready_client();
  a->request("session_create", {{"sessionId", "p"}});
  b->request("session_join", json::object(), std::string("p"));
  a->event("presence");  // b's join
  auto ack = b->request("presence", {{"status", "away"}, {"note", "lunch"}});
  CHECK(ack["type"] == "ack");
  auto update = a->event("presence");
  REQUIRE(update);
  CHECK(is_presence(*update, "update", gateway_fixture::id_of(*b)));
  CHECK((*update)["payload"]["status"] == "away");
  CHECK((*update)["payload"]["note"] == "lunch");
  CHECK(stranger->none_within([](const json& m) { return m.value("type", "") == "presence"; }, 150ms));
  CHECK(error_code_of(b->request("presence", {{"note", "no status"}})) == "INVALID_MESSAGE");

  auto hello = stranger->request("connect");
  bool away = false;
  for (const auto& e : hello["payload"]["presence"])
    if (e["clientId"] == gateway_fixture::id_of(*b)) away = e["status"] == "away";
  CHECK(away);
}

TEST_CASE("leaving tells the members, and the last one out removes the session") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  auto b = gw.ready_client();
  a->request("session_create", {{"sessionId", "bye"}});
  b->request("session_join", json::object(), std::string("bye"));
  CHECK(b->request("session_leave", json::object(), std::string("bye"))["type"] == "ack");
  auto left = a->wait_for([&](const json& m) { return is_presence(m, "leave", gateway_fixture::id_of(*b)); });
  CHECK(left);
  CHECK(error_code_of(b->request("chat", {{"text", "x"}}, std::string("bye"))) == "NOT_IN_SESSION");
  CHECK(a->request("session_leave", json::object(), std::string("bye"))["type"] == "ack");
  CHECK(eventually([&] {
    return error_code_of(b->request("session_join", json::object(), std::string("bye"))) ==
           "SESSION_NOT_FOUND";
  }));
  // The id is free again.
  CHECK(b->request("session_create", {{"sessionId", "bye"}})["type"] == "session_info");
}

TEST_CASE("a client that disconnects leaves all its sessions") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  auto b = gw.ready_client();
  a->request("session_create", {{"sessionId", "one"}});
  a->request("session_create", {{"sessionId", "two"}});
  b->request("session_join", json::object(), std::string("one"));
  b->request("session_join", json::object(), std::string("two"));
  const auto b_id = gateway_fixture::id_of(*b);
  b.reset();
  for (const char* sid : {"one", "two"}) {
    auto left = a->wait_for(
        [&](const json& m) { return is_presence(m, "leave", b_id) && m["payload"]["sessionId"] == sid; });
    CHECK(left);
  }
  auto info = gw.admin({{"cmd", "session"}, {"id", "one"}});
  REQUIRE(info["ok"] == true);
  CHECK(info["result"]["session"]["clients"] == json::array({gateway_fixture::id_of(*a)}));
}

TEST_CASE("a broadcast to many members serializes once and reaches all of them") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.rate_limit = 0; });
  auto sender = gw.ready_client();
  sender->request("session_create", {{"sessionId", "fan"}});
  std::vector<std::unique_ptr<ws_client>> members;
  for (int i = 0; i < 20; ++i) {
    members.push_back(gw.ready_client());
    members.back()->request("session_join", json::object(), std::string("fan"));
  }
  for (int i = 0; i < 10; ++i)
    CHECK(sender->request("chat", {{"text", std::to_string(i)}},
                          std::string("fan"))["payload"]["delivered"] == 20);
  for (auto& m : members)
    for (int i = 0; i < 10; ++i) {
      auto msg = m->event("chat");
      REQUIRE(msg);
      CHECK((*msg)["payload"]["text"] == std::to_string(i));
    }
  CHECK(gw.node->metrics().broadcast_latency.count() >= 10);
}

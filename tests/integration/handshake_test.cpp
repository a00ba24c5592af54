// Handshake, authentication and per-message rules of PROTOCOL.md over real sockets.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "support/gateway_fixture.hpp"

using namespace sb::test;
using sb::protocol::auth_mode;

namespace {

std::string error_code_of(const json& msg) {
  return msg["type"] == "error" ? msg["payload"].value("code", "") : "";
}

}  // namespace

TEST_CASE("the server greets a new connection with session_info") {
  gateway_fixture gw;
  ws_client client(gw.port());
  auto info = client.next();
  REQUIRE(info);
  CHECK((*info)["type"] == "session_info");
  CHECK_FALSE(info->contains("replyTo"));
  const auto& p = (*info)["payload"];
  CHECK(p["clientId"].is_string());
  CHECK(p["nodeId"] == gw.node->node_id());
  CHECK(p["authRequired"] == true);
  CHECK(p["serverVersion"].is_string());
  CHECK(p["heartbeatIntervalMs"] == 30000);
  CHECK(p["maxPayload"] == 1048576);
}

TEST_CASE("connect answers hello_ok with an empty presence list until authenticated") {
  gateway_fixture gw;
  auto other = gw.ready_client("dev-other");
  auto client = gw.connect();
  auto hello = client->request("connect", {{"deviceId", "dev-1"}, {"role", "ui"}, {"clientName", "t"}});
  REQUIRE(hello["type"] == "hello_ok");
  CHECK(hello["payload"]["clientId"] == gateway_fixture::id_of(*client));
  CHECK(hello["payload"]["authRequired"] == true);
  CHECK(hello["payload"]["authenticated"] == false);
  CHECK(hello["payload"]["presence"] == json::array());
  CHECK(hello["payload"]["uptimeMs"].is_number());

  REQUIRE(client->request("auth", {{"token", test_token}})["type"] == "auth_success");
  auto again = client->request("connect", {{"deviceId", "dev-1"}});
  REQUIRE(again["payload"]["authenticated"] == true);
  auto presence = again["payload"]["presence"];
  REQUIRE(presence.size() == 2);
  bool saw_other = false;
  for (const auto& e : presence)
    if (e["clientId"] == gateway_fixture::id_of(*other)) {
      saw_other = true;
      CHECK(e["deviceId"] == "dev-other");
      CHECK(e["status"] == "online");
    }
  CHECK(saw_other);
}

TEST_CASE("hello_ok shows the earliest presenceLimit clients with presenceTotal, and presence_list pages the rest") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.presence_limit = 3; });
  std::vector<std::unique_ptr<ws_client>> present;
  std::vector<std::string> arrival;  // client ids in the order they authenticated
  for (int i = 0; i < 7; ++i) {
    present.push_back(gw.ready_client("dev-" + std::to_string(i)));
    arrival.push_back(gateway_fixture::id_of(*present.back()));
  }
  auto& me = *present.back();
  auto hello = me.request("connect", {{"deviceId", "dev-6"}});
  REQUIRE(hello["type"] == "hello_ok");
  CHECK(hello["payload"]["presenceTotal"] == 7);
  const auto& snapshot = hello["payload"]["presence"];
  REQUIRE(snapshot.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(snapshot[i]["clientId"] == arrival[i]);

  // Pages of 3 follow arrival order; a client that leaves between two pages does not shift the others.
  auto page1 = me.request("presence_list", {{"limit", 3}});
  REQUIRE(page1["type"] == "presence_list");
  REQUIRE(page1["payload"]["clients"].size() == 3);
  REQUIRE(page1["payload"]["next"].is_string());
  present[1]->close();  // on page 1, already read
  present[1].reset();
  std::vector<std::string> seen;
  for (const auto& c : page1["payload"]["clients"]) seen.push_back(c["clientId"]);
  auto cursor = page1["payload"]["next"];
  while (true) {
    auto page = me.request("presence_list", {{"cursor", cursor}, {"limit", 3}});
    REQUIRE(page["type"] == "presence_list");
    for (const auto& c : page["payload"]["clients"]) seen.push_back(c["clientId"]);
    if (!page["payload"].contains("next")) break;
    cursor = page["payload"]["next"];
    REQUIRE(seen.size() <= arrival.size());
  }
  CHECK(seen == arrival);

  json all;
  for (int tries = 0; tries < 100; ++tries) {  // dev-1's close reaches the supervisor soon after
    all = me.request("presence_list");
    if (all["payload"]["clients"].size() == 6) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(all["payload"]["clients"].size() == 6);
  CHECK_FALSE(all["payload"].contains("next"));
}

TEST_CASE("presence_list rejects a malformed cursor or limit and waits for authentication") {
  gateway_fixture gw;
  auto stranger = gw.connect();
  CHECK(error_code_of(stranger->request("presence_list")) == "AUTH_REQUIRED");
  auto client = gw.ready_client("dev-1");
  CHECK(error_code_of(client->request("presence_list", {{"cursor", "not-a-cursor"}})) == "INVALID_MESSAGE");
  CHECK(error_code_of(client->request("presence_list", {{"limit", 0}})) == "INVALID_MESSAGE");
  CHECK(error_code_of(client->request("presence_list", {{"limit", 1001}})) == "INVALID_MESSAGE");
  auto one = client->request("presence_list", {{"cursor", "999999"}});
  REQUIRE(one["type"] == "presence_list");
  CHECK(one["payload"]["clients"] == json::array());
}

TEST_CASE("a valid token authenticates and the user id falls back to the device id") {
  gateway_fixture gw;
  auto client = gw.connect();
  client->request("connect", {{"deviceId", "laptop-7"}});
  auto ok = client->request("auth", {{"token", test_token}});
  REQUIRE(ok["type"] == "auth_success");
  CHECK(ok["payload"]["clientId"] == gateway_fixture::id_of(*client));
  CHECK(ok["payload"]["userId"] == "laptop-7");
}

TEST_CASE("without a device id the user id is the client id") {
  gateway_fixture gw;
  auto client = gw.connect();
  auto ok = client->request("auth", {{"token", test_token}});
  CHECK(ok["payload"]["userId"] == gateway_fixture::id_of(*client));
}

TEST_CASE("a wrong token is AUTH_FAILED and five failures close the connection with 4003") {
  gateway_fixture gw;
  auto client = gw.connect();
  for (int i = 0; i < 4; ++i) {
    auto r = client->request("auth", {{"token", "wrong"}});
    CHECK(error_code_of(r) == "AUTH_FAILED");
    CHECK_FALSE(client->closed());
  }
  auto last = client->request("auth", {{"token", "wrong"}});
  CHECK(error_code_of(last) == "AUTH_FAILED");
  CHECK(client->wait_closed() == std::optional<std::uint16_t>(4003));
}

TEST_CASE("before authentication only connect, auth and ping are accepted") {
  gateway_fixture gw;
  auto client = gw.connect();
  CHECK(client->request("ping")["type"] == "pong");
  for (const char* type : {"session_create", "chat", "agent_register", "presence", "tool_start"}) {
    auto r = client->request(type, {{"text", "x"}}, std::string("room"));
    CHECK(error_code_of(r) == "AUTH_REQUIRED");
  }
}

TEST_CASE("a custom token validator decides and names the user") {
  struct jwt_like : sb::protocol::token_validator {
    std::optional<std::string> validate(const std::string& token) const override {
      if (token.rfind("user:", 0) == 0) return token.substr(5);
      return std::nullopt;
    }
  };
  gateway_fixture gw(
      {}, [](sb::actors::gateway_node& n) { n.set_token_validator(std::make_shared<jwt_like>()); });
  auto client = gw.connect();
  CHECK(error_code_of(client->request("auth", {{"token", test_token}})) == "AUTH_FAILED");
  auto ok = client->request("auth", {{"token", "user:alice"}});
  REQUIRE(ok["type"] == "auth_success");
  CHECK(ok["payload"]["userId"] == "alice");
}

TEST_CASE("password mode checks the password") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) {
    c.auth = auth_mode::password;
    c.auth_password = "hunter2";
  });
  auto client = gw.connect();
  CHECK(error_code_of(client->request("auth", {{"password", "nope"}})) == "AUTH_FAILED");
  CHECK(error_code_of(client->request("auth", {{"token", "hunter2"}})) == "AUTH_FAILED");
  CHECK(client->request("auth", {{"password", "hunter2"}})["type"] == "auth_success");
}

TEST_CASE("mode none authenticates every client at once") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.auth = auth_mode::none; });
  ws_client client(gw.port());
  auto info = client.next();
  REQUIRE(info);
  CHECK((*info)["payload"]["authRequired"] == false);
  auto hello = client.request("connect");
  CHECK(hello["payload"]["authenticated"] == true);
  CHECK(hello["payload"]["presence"].size() == 1);
  CHECK(client.request("session_create", {{"sessionId", "open"}})["type"] == "session_info");
  CHECK(client.request("auth", json::object())["type"] == "auth_success");
}

TEST_CASE("invalid JSON is BAD_JSON without replyTo and keeps the connection") {
  gateway_fixture gw;
  auto client = gw.connect();
  client->send_text("{not json");
  auto err = client->next();
  REQUIRE(err);
  CHECK(error_code_of(*err) == "BAD_JSON");
  CHECK_FALSE(err->contains("replyTo"));
  CHECK(client->request("ping")["type"] == "pong");
}

TEST_CASE("a wrong field is INVALID_MESSAGE with replyTo when the id was read") {
  gateway_fixture gw;
  auto client = gw.connect();
  auto r = client->request_raw({{"type", "Bad Type"}, {"id", "x-1"}});
  CHECK(error_code_of(r) == "INVALID_MESSAGE");
  r = client->request_raw({{"type", "ping"}, {"id", "x-2"}, {"payload", json::array()}});
  CHECK(error_code_of(r) == "INVALID_MESSAGE");
  r = client->request_raw({{"type", "ping"}, {"id", "x-3"}, {"sessionId", ""}});
  CHECK(error_code_of(r) == "INVALID_MESSAGE");
  r = client->request_raw({{"type", "ping"}, {"id", "x-4"}, {"timestamp", "now"}});
  CHECK(error_code_of(r) == "INVALID_MESSAGE");

  client->send({{"type", "ping"}, {"id", 5}});
  auto no_id = client->next();
  REQUIRE(no_id);
  CHECK(error_code_of(*no_id) == "INVALID_MESSAGE");
  CHECK_FALSE(no_id->contains("replyTo"));
  client->send(json::array({1, 2}));
  auto not_object = client->next();
  REQUIRE(not_object);
  CHECK(error_code_of(*not_object) == "INVALID_MESSAGE");
  CHECK(client->request("ping")["type"] == "pong");
}

TEST_CASE("binary frames are answered with INVALID_MESSAGE") {
  gateway_fixture gw;
  auto client = gw.connect();
  client->send_binary(std::string("\x01\x02\x03", 3));
  auto err = client->next();
  REQUIRE(err);
  CHECK(error_code_of(*err) == "INVALID_MESSAGE");
  CHECK(client->request("ping")["type"] == "pong");
}

TEST_CASE("server-only types are refused and unknown types without a session are UNKNOWN_TYPE") {
  gateway_fixture gw;
  auto client = gw.ready_client();
  for (const char* type : {"session_info", "hello_ok", "auth_success", "ack", "pong", "error"})
    CHECK(error_code_of(client->request(type)) == "INVALID_MESSAGE");
  CHECK(error_code_of(client->request("made_up")) == "UNKNOWN_TYPE");
}

TEST_CASE("a handler registered in code answers its type") {
  gateway_fixture gw({}, [](sb::actors::gateway_node& n) {
    n.register_handler("math.add", [](sb::actors::handler_context& ctx) {
      const auto& p = ctx.message().payload;
      if (!p.contains("a") || !p.contains("b"))
        return ctx.fail(sb::protocol::error_code::invalid_message, "a, b");
      ctx.reply("math.sum", {{"sum", p["a"].get<int>() + p["b"].get<int>()}, {"by", ctx.client_id()}});
    });
    n.register_handler("fire.forget", [](sb::actors::handler_context&) {});
  });
  auto client = gw.ready_client();
  auto r = client->request("math.add", {{"a", 2}, {"b", 3}});
  CHECK(r["type"] == "math.sum");
  CHECK(r["payload"]["sum"] == 5);
  CHECK(r["payload"]["by"] == gateway_fixture::id_of(*client));
  CHECK(error_code_of(client->request("math.add", {{"a", 2}})) == "INVALID_MESSAGE");
  // A handler that does not answer still yields the one reply the protocol promises.
  CHECK(client->request("fire.forget")["type"] == "ack");
}

TEST_CASE("a client over the rate limit gets RATE_LIMITED") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.rate_limit = 5; });
  auto client = gw.ready_client();  // the handshake spends two of the burst of ten
  int limited = 0;
  std::vector<std::string> ids;
  for (int i = 0; i < 30; ++i) {
    auto id = client->next_id();
    ids.push_back(id);
    client->send({{"type", "ping"}, {"id", id}});
  }
  for (const auto& id : ids) {
    auto r = client->wait_for([&](const json& m) { return m.value("replyTo", "") == id; });
    REQUIRE(r);
    if (error_code_of(*r) == "RATE_LIMITED") ++limited;
  }
  CHECK(limited >= 15);
  CHECK(limited <= 23);
}

TEST_CASE("a handler that throws answers INTERNAL and the connection stays usable") {
  gateway_fixture gw({}, [](sb::actors::gateway_node& n) {
    n.register_handler("boom", [](sb::actors::handler_context&) { throw std::runtime_error("kaput"); });
  });
  auto client = gw.ready_client();
  auto r = client->request("boom");
  CHECK(error_code_of(r) == "INTERNAL");
  CHECK(r["payload"]["message"].get<std::string>().find("kaput") == std::string::npos);  // no internals leak
  CHECK(client->request("ping")["type"] == "pong");
}

TEST_CASE("a client that stays over the rate limit for 10 s is closed with 4008") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.rate_limit = 1; });
  auto client = gw.ready_client();
  // Two messages a second against a limit of one: always over it, never idle long enough to recover.
  const auto start = std::chrono::steady_clock::now();
  std::optional<std::uint16_t> code;
  while (!code && std::chrono::steady_clock::now() - start < 15s) {
    client->send({{"type", "ping"}, {"id", client->next_id()}});
    code = client->wait_closed(500ms);
  }
  CHECK(code == std::optional<std::uint16_t>(4008));
  CHECK(std::chrono::steady_clock::now() - start >= 9s);
  CHECK(gw.node->metrics().rate_limit_closes.load() == 1);
}

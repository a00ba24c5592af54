// Hostile input over real sockets: each case here crashed, poisoned or starved a node before its fix.
#include <catch2/catch.hpp>

#include "support/gateway_fixture.hpp"
#include "support/raw_tcp.hpp"

using namespace sb::test;

namespace {

std::string nested_arrays(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string code_of(const json& msg) {
  return msg["type"] == "error" ? msg["payload"].value("code", "") : "";
}

std::optional<json> error_reply(ws_client& client) {
  return client.wait_for([](const json& m) { return m["type"] == "error"; });
}

std::uint64_t limit_count(gateway_fixture& gw, const std::string& key) {
  return gw.node->metrics().limits_exceeded.get(key);
}

/// The node still answers HTTP and a fresh client: an attack must leave it serving.
void node_still_serves(gateway_fixture& gw) {
  CHECK(http_get(gw.port(), "/healthz").first == 200);
  auto probe = gw.ready_client();
  CHECK(probe->request("ping")["type"] == "pong");
  CHECK(gw.admin({{"cmd", "stats"}})["ok"] == true);
}

}  // namespace

TEST_CASE("a connect whose metadata nests 150,000 arrays is INVALID_MESSAGE before authentication") {
  gateway_fixture gw;
  auto client = gw.connect();
  client->send_text(R"({"type":"connect","id":"c1","payload":{"metadata":{"x":)" + nested_arrays(150000) +
                    "}}}");
  auto err = error_reply(*client);
  REQUIRE(err);
  CHECK(code_of(*err) == "INVALID_MESSAGE");
  CHECK((*err)["payload"]["message"].get<std::string>().find("maxJsonDepth") != std::string::npos);
  CHECK(limit_count(gw, "maxJsonDepth") == 1);
  CHECK(client->request("ping")["type"] == "pong");  // the connection itself stays usable
  node_still_serves(gw);
}

TEST_CASE("deeply nested payloads from a member are refused for every message type") {
  gateway_fixture gw;
  auto member = gw.ready_client();
  REQUIRE(member->request("session_create", {{"sessionId", "room"}})["type"] == "session_info");
  const auto deep = nested_arrays(100000);
  for (const char* type :
       {"chat", "tool_start", "presence", "route_request", "session_create", "session_patch"}) {
    INFO(type);
    member->send_text(std::string(R"({"type":")") + type +
                      R"(","id":"d1","sessionId":"room","payload":{"x":)" + deep + "}}");
    auto err = error_reply(*member);
    REQUIRE(err);
    CHECK(code_of(*err) == "INVALID_MESSAGE");
  }
  CHECK(limit_count(gw, "maxJsonDepth") == 6);
  node_still_serves(gw);
}

TEST_CASE("maxJsonDepth is configurable") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.max_json_depth = 4; });
  auto client = gw.ready_client();
  // Envelope, payload, a and b: four levels, at the bound.
  CHECK(client->request("ping", {{"a", {{"b", json::object()}}}})["type"] == "pong");
  client->send_text(R"({"type":"ping","id":"p","payload":{"a":{"b":{"c":{}}}}})");
  auto err = error_reply(*client);
  REQUIRE(err);
  CHECK(code_of(*err) == "INVALID_MESSAGE");
}

TEST_CASE("session_patch cannot grow metadata past maxSessionMetadataBytes") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.max_session_metadata_bytes = 4096; });
  auto a = gw.ready_client("a");
  auto b = gw.ready_client("b");
  REQUIRE(a->request("session_create", {{"sessionId", "room"}})["type"] == "session_info");
  auto joined = b->request("session_join", json::object(), std::string("room"));
  INFO(joined.dump());
  REQUIRE(joined["type"] == "session_info");
  const std::string chunk(1000, 'x');
  int accepted = 0;
  for (int i = 0; i < 10; ++i) {
    auto r = a->request("session_patch", {{"metadata", {{"k" + std::to_string(i), chunk}}}}, "room");
    if (r["type"] == "session_info") {
      ++accepted;
      continue;
    }
    CHECK(code_of(r) == "INVALID_MESSAGE");
    CHECK(r["payload"]["message"].get<std::string>().find("maxSessionMetadataBytes") != std::string::npos);
  }
  CHECK(accepted == 4);  // 4 x ~1 KB fit in 4 KiB, the fifth and later would cross it
  CHECK(limit_count(gw, "maxSessionMetadataBytes") == 6);
  // Nobody was closed, and the refused patches changed nothing.
  CHECK(a->request("ping")["type"] == "pong");
  CHECK(b->request("ping")["type"] == "pong");
  auto info = gw.admin({{"cmd", "session"}, {"id", "room"}});
  CHECK(info["result"]["session"]["metadata"].size() == 4);
  // A patch that shrinks it is still accepted.
  CHECK(a->request("session_patch", {{"metadata", {{"k0", nullptr}}}}, "room")["type"] == "session_info");
}

TEST_CASE("session_create with metadata over maxSessionMetadataBytes is refused") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.max_session_metadata_bytes = 1024; });
  auto a = gw.ready_client();
  auto r =
      a->request("session_create", {{"sessionId", "big"}, {"metadata", {{"x", std::string(2000, 'y')}}}});
  CHECK(code_of(r) == "INVALID_MESSAGE");
  CHECK(gw.admin({{"cmd", "session"}, {"id", "big"}})["ok"] == false);
}

TEST_CASE("a client that does not authenticate within authTimeoutMs is closed with 4003") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.auth_timeout_ms = 300; });
  auto idle = gw.connect();
  REQUIRE(idle->request("connect")["type"] ==
          "hello_ok");  // speaking, answering pings, but never authenticating
  auto authed = gw.ready_client();
  CHECK(idle->wait_closed(3s) == 4003);
  CHECK(limit_count(gw, "authTimeoutMs") == 1);
  // The authenticated one outlives the deadline.
  CHECK(authed->none_within([](const json&) { return false; }, 500ms));
  CHECK_FALSE(authed->closed());
  CHECK(authed->request("ping")["type"] == "pong");
  CHECK(http_get(gw.port(), "/metrics")
            .second.find("switchboard_limit_exceeded_total{limit=\"authTimeoutMs\"} 1") != std::string::npos);
}

TEST_CASE("connections are capped per client address and in total") {
  SECTION("maxConnectionsPerIp answers 429 and frees the place when one closes") {
    gateway_fixture gw([](sb::protocol::gateway_config& c) { c.max_connections_per_ip = 2; });
    auto one = gw.connect();
    auto two = gw.connect();
    try {
      gw.connect();
      FAIL("third connection from one address was accepted");
    } catch (const upgrade_refused& e) {
      CHECK(e.status == 429);
    }
    CHECK(limit_count(gw, "maxConnectionsPerIp") >= 1);
    one->close();
    CHECK(one->wait_closed());
    CHECK(eventually([&] {
      try {
        gw.connect();
        return true;
      } catch (const upgrade_refused&) {
        return false;
      }
    }));
  }
  SECTION("maxConnections answers 503") {
    gateway_fixture gw([](sb::protocol::gateway_config& c) { c.max_connections = 1; });
    auto one = gw.connect();
    try {
      gw.connect();
      FAIL("second connection over maxConnections was accepted");
    } catch (const upgrade_refused& e) {
      CHECK(e.status == 503);
    }
    CHECK(limit_count(gw, "maxConnections") >= 1);
    CHECK(http_get(gw.port(), "/healthz").first == 200);
  }
}

TEST_CASE("a Sec-WebSocket-Key that is not 16 base64 bytes is answered 400") {
  gateway_fixture gw;
  for (const char* key : {"short", "dGhlIHNhbXBsZSBub25jZQ", "!!!!!!!!!!!!!!!!!!!!!!=="}) {
    INFO(key);
    raw_tcp raw(gw.port());
    raw.write(upgrade_request("/ws", key));
    REQUIRE(raw.read_until("\r\n\r\n"));
    CHECK(raw.http_status() == 400);
  }
}

TEST_CASE("a frame sent in the same write as the upgrade request is read") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.auth = sb::protocol::auth_mode::none; });
  raw_tcp raw(gw.port());
  raw.write(upgrade_request() + client_frame(0x1, R"({"type":"ping","id":"glued"})"));
  REQUIRE(raw.read_until("\"replyTo\":\"glued\""));
  CHECK(raw.http_status() == 101);
}

TEST_CASE("a close frame with code 5000 is answered with 1002, not echoed") {
  gateway_fixture gw;
  raw_tcp raw(gw.port());
  raw.write(upgrade_request());
  REQUIRE(raw.read_until("session_info"));
  raw.write(client_close(5000));
  raw.read_to_eof();
  CHECK(close_code_in(parse_server_frames(raw.after_header())) == 1002);
}

TEST_CASE("a valid close code is still echoed") {
  gateway_fixture gw;
  raw_tcp raw(gw.port());
  raw.write(upgrade_request());
  REQUIRE(raw.read_until("session_info"));
  raw.write(client_close(4321));
  raw.read_to_eof();
  CHECK(close_code_in(parse_server_frames(raw.after_header())) == 4321);
}

TEST_CASE("a corrupt permessage-deflate stream gets a close frame with 1007 before the socket closes") {
  gateway_fixture gw;
  raw_tcp raw(gw.port());
  raw.write(
      upgrade_request("/ws", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Extensions: permessage-deflate\r\n"));
  REQUIRE(raw.read_frames(1));  // session_info, compressed
  REQUIRE(raw.bytes().find("permessage-deflate") != std::string::npos);
  // 0xff... is not a valid deflate block header sequence.
  raw.write(client_frame(0x1, std::string("\xff\xff\xff\xff\xff\xff\xff\xff", 8), true));
  CHECK(raw.read_to_eof());
  CHECK(close_code_in(parse_server_frames(raw.after_header())) == 1007);
  CHECK(http_get(gw.port(), "/healthz").first == 200);
}

TEST_CASE("the admin socket refuses a deeply nested request line and keeps serving") {
  gateway_fixture gw;
  auto r = gw.admin({{"cmd", "stats"}, {"x", json::parse(nested_arrays(60))}});
  CHECK(r["ok"] == false);
  CHECK(r["error"].get<std::string>().find("nesting") != std::string::npos);
  CHECK(gw.admin({{"cmd", "stats"}})["ok"] == true);
}

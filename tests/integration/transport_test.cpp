// Transport rules over real sockets: HTTP endpoints, origins, trusted proxies, size limits, heartbeat,
// slow consumers, permessage-deflate and TLS.
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>

#include "support/gateway_fixture.hpp"

using namespace sb::test;

namespace {

std::string error_code_of(const json& msg) {
  return msg["type"] == "error" ? msg["payload"].value("code", "") : "";
}

std::string address_of(gateway_fixture& gw, ws_client& client) {
  auto info = gw.admin({{"cmd", "client"}, {"id", gateway_fixture::id_of(client)}});
  return info["result"]["client"].value("address", "");
}

}  // namespace

TEST_CASE("healthz, readyz and metrics answer on the WebSocket port and anything else is 404") {
  gateway_fixture gw;
  auto health = http_get(gw.port(), "/healthz");
  CHECK(health.first == 200);
  CHECK(json::parse(health.second) == json{{"status", "ok"}});
  CHECK(http_get(gw.port(), "/readyz").first == 200);
  CHECK(http_get(gw.port(), "/nope").first == 404);
  CHECK(http_get(gw.port(), "/ws").first == 404);

  auto client = gw.ready_client();
  client->request("session_create", {{"sessionId", "m"}});
  client->request("made_up");
  auto metrics = http_get(gw.port(), "/metrics");
  CHECK(metrics.first == 200);
  const auto& text = metrics.second;
  CHECK(text.find("switchboard_connections 1") != std::string::npos);
  CHECK(text.find("switchboard_sessions 1") != std::string::npos);
  CHECK(text.find("switchboard_messages_in_total{type=\"session_create\"} 1") != std::string::npos);
  CHECK(text.find("switchboard_messages_out_total{type=\"session_info\"}") != std::string::npos);
  CHECK(text.find("switchboard_errors_total{code=\"UNKNOWN_TYPE\"} 1") != std::string::npos);
  CHECK(text.find("switchboard_slow_consumers_dropped_total 0") != std::string::npos);
  CHECK(text.find("switchboard_broadcast_latency_seconds_bucket{le=\"+Inf\"}") != std::string::npos);
}

TEST_CASE("an upgrade on another path is refused") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.path = "/gateway"; });
  client_options wrong;
  wrong.path = "/ws";
  CHECK_THROWS_AS(ws_client(gw.port(), wrong), upgrade_refused);
  client_options right;
  right.path = "/gateway?v=1";
  ws_client ok(gw.port(), right);
  CHECK(ok.event("session_info"));
}

TEST_CASE("origins outside the allow-list are refused with 403 before the upgrade") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) {
    c.cors_origins = {"https://app.example.com", "https://*.tools.example.com"};
  });
  auto refused_with = [&](const std::string& origin) -> int {
    client_options o;
    o.headers["Origin"] = origin;
    try {
      ws_client c(gw.port(), o);
      return 101;
    } catch (const upgrade_refused& e) {
      return e.status;
    }
  };
  CHECK(refused_with("https://app.example.com") == 101);
  CHECK(refused_with("HTTPS://APP.EXAMPLE.COM") == 101);
  CHECK(refused_with("https://a.b.tools.example.com") == 101);
  CHECK(refused_with("https://evil.example.com") == 403);
  CHECK(refused_with("http://app.example.com") == 403);
  CHECK(refused_with("https://app.example.com:8443") == 403);
  CHECK(refused_with("https://tools.example.com") == 403);
  CHECK(refused_with("null") == 403);
  ws_client no_origin(gw.port());  // non-browser clients send none
  CHECK(no_origin.event("session_info"));
}

TEST_CASE("X-Forwarded-For is honoured from trusted proxies only") {
  SECTION("from a trusted proxy the forwarded address is the client's") {
    gateway_fixture gw([](sb::protocol::gateway_config& c) {
      c.trusted_proxies = {*sb::protocol::parse_cidr("127.0.0.0/8"), *sb::protocol::parse_cidr("10.0.0.0/8")};
    });
    client_options o;
    o.headers["X-Forwarded-For"] = "203.0.113.9, 10.0.0.1";
    auto client = gw.connect(o);
    CHECK(address_of(gw, *client) == "203.0.113.9");
  }
  SECTION("the rightmost untrusted hop wins over what the client wrote on the left") {
    gateway_fixture gw([](sb::protocol::gateway_config& c) {
      c.trusted_proxies = {*sb::protocol::parse_cidr("127.0.0.0/8")};
    });
    client_options o;
    o.headers["X-Forwarded-For"] = "198.51.100.1, 203.0.113.9";  // the first entry is the client's own claim
    auto client = gw.connect(o);
    CHECK(address_of(gw, *client) == "203.0.113.9");
  }
  SECTION("a forwarded entry that is not an address is not taken") {
    gateway_fixture gw([](sb::protocol::gateway_config& c) {
      c.trusted_proxies = {*sb::protocol::parse_cidr("127.0.0.0/8")};
    });
    client_options o;
    o.headers["X-Forwarded-For"] = "<script>";
    auto client = gw.connect(o);
    CHECK(address_of(gw, *client) == "127.0.0.1");
  }
  SECTION("from anyone else the header is ignored") {
    gateway_fixture gw([](sb::protocol::gateway_config& c) {
      c.trusted_proxies = {*sb::protocol::parse_cidr("10.0.0.0/8")};
    });
    client_options o;
    o.headers["X-Forwarded-For"] = "203.0.113.9";
    auto client = gw.connect(o);
    CHECK(address_of(gw, *client) == "127.0.0.1");
  }
}

TEST_CASE("a message over maxPayload gets MESSAGE_TOO_LARGE and close 1009") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.max_payload = 4096; });
  auto client = gw.ready_client();
  CHECK(client->request("ping", {{"pad", std::string(3000, 'x')}})["type"] == "pong");
  client->send({{"type", "ping"}, {"id", "big"}, {"payload", {{"pad", std::string(5000, 'x')}}}});
  auto err = client->next();
  REQUIRE(err);
  CHECK(error_code_of(*err) == "MESSAGE_TOO_LARGE");
  CHECK(client->wait_closed() == std::optional<std::uint16_t>(1009));
}

TEST_CASE("the inflated size counts, so a compressed message cannot slip past maxPayload") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.max_payload = 4096; });
  client_options o;
  o.deflate = true;
  auto client = gw.connect(o);
  REQUIRE(client->deflate_negotiated());
  // 200 KB of one letter compresses to a few hundred bytes on the wire.
  client->send({{"type", "ping"}, {"id", "bomb"}, {"payload", {{"pad", std::string(200000, 'a')}}}});
  auto err = client->next();
  REQUIRE(err);
  CHECK(error_code_of(*err) == "MESSAGE_TOO_LARGE");
  CHECK(client->wait_closed() == std::optional<std::uint16_t>(1009));
}

TEST_CASE("permessage-deflate is negotiated when offered and enabled, and not when disabled") {
  client_options o;
  o.deflate = true;
  {
    gateway_fixture gw;
    auto client = gw.connect(o);
    CHECK(client->deflate_negotiated());
    CHECK(client->request("ping", {{"pad", std::string(50000, 'z')}})["type"] == "pong");
  }
  {
    gateway_fixture gw([](sb::protocol::gateway_config& c) { c.per_message_deflate = false; });
    auto client = gw.connect(o);
    CHECK_FALSE(client->deflate_negotiated());
  }
}

TEST_CASE("a client that answers no pings is closed after clientTimeoutMs") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) {
    c.heartbeat_interval_ms = 100;
    c.client_timeout_ms = 300;
  });
  client_options silent;
  silent.read = false;
  ws_client mute(gw.port(), silent);
  auto lively = gw.connect();
  REQUIRE(eventually([&] { return gw.node->metrics().heartbeat_timeouts.load() == 1; }, 5s));
  // The reading client answered every ping and is still there.
  CHECK(lively->request("ping")["type"] == "pong");
  CHECK(gw.node->metrics().connections.load() == 1);
}

TEST_CASE("a consumer that falls behind is closed with 4008 and counted") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) {
    c.rate_limit = 0;
    c.send_queue_limit = 64;
  });
  auto sender = gw.ready_client();
  sender->request("session_create", {{"sessionId", "flood"}});
  auto slow = gw.ready_client();
  slow->request("session_join", json::object(), std::string("flood"));
  sender->event("presence");
  // Readers that stop reading: the kernel buffers fill, then the server-side queue passes its bound.
  client_options paused;
  paused.read = false;
  auto stalled = std::make_unique<ws_client>(gw.port(), paused);
  auto& metrics = gw.node->metrics();
  // Make the stalled client a member through the admin-visible path: it cannot read replies, so join blind.
  stalled->send({{"type", "auth"}, {"id", "a"}, {"payload", {{"token", test_token}}}});
  stalled->send({{"type", "session_join"}, {"id", "j"}, {"sessionId", "flood"}});
  REQUIRE(eventually([&] {
    auto s = gw.admin({{"cmd", "session"}, {"id", "flood"}});
    return s["result"]["session"]["clients"].size() == 3;
  }));
  const std::string chunk(16 * 1024, 'q');
  for (int i = 0; i < 2000 && metrics.slow_consumers_dropped.load() == 0; ++i) {
    sender->send({{"type", "chat"},
                  {"id", "c" + std::to_string(i)},
                  {"sessionId", "flood"},
                  {"payload", {{"text", chunk}}}});
    if (i % 50 == 49)
      sender->wait_for([&](const json& m) { return m.value("replyTo", "") == "c" + std::to_string(i); });
  }
  REQUIRE(eventually([&] { return metrics.slow_consumers_dropped.load() >= 1; }, 10s));
  stalled->resume_reading();
  CHECK(stalled->wait_closed(10s) == std::optional<std::uint16_t>(4008));
  // Members that keep reading are unaffected.
  CHECK(sender->request("ping")["type"] == "pong");
  CHECK_FALSE(slow->closed());
}

TEST_CASE("TLS serves wss and https when a certificate and key are configured") {
  temp_dir dir;
  const auto cert = (dir.path() / "cert.pem").string();
  const auto key = (dir.path() / "key.pem").string();
  const auto cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 "
      "-keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  gateway_fixture gw([&](sb::protocol::gateway_config& c) {
    c.tls_cert = cert;
    c.tls_key = key;
  });
  namespace net = boost::asio;
  namespace beast = boost::beast;
  net::io_context ioc;
  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.set_verify_mode(net::ssl::verify_none);  // self-signed for the test
  beast::websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(ioc, ctx);
  beast::get_lowest_layer(ws).expires_after(5s);
  beast::get_lowest_layer(ws).connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), gw.port()));
  ws.next_layer().handshake(net::ssl::stream_base::client);
  beast::get_lowest_layer(ws).expires_never();
  ws.handshake("127.0.0.1", "/ws");
  beast::flat_buffer buffer;
  ws.read(buffer);
  auto info = json::parse(beast::buffers_to_string(buffer.data()));
  CHECK(info["type"] == "session_info");
  ws.close(beast::websocket::close_code::normal);

  // Plain HTTP on a TLS port gets nowhere.
  CHECK_THROWS(http_get(gw.port(), "/healthz"));
}

TEST_CASE("a bad TLS key file fails at start with the key named") {
  gateway_fixture* none = nullptr;
  (void)none;
  sb::protocol::gateway_config c;
  c.port = 0;
  c.tls_cert = "/nonexistent/cert.pem";
  c.tls_key = "/nonexistent/key.pem";
  c.admin_socket.clear();
  sb::actors::gateway_node node(c);
  try {
    node.start();
    FAIL("start should have thrown");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("tlsCert") != std::string::npos);
  }
}

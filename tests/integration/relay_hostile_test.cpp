// The relay under hostile input and faults, over real sockets on 127.0.0.1: what a token holder can send
// must be refused with a clear status while the relay keeps serving everyone else.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/tunnel_fixture.hpp"
#include "tunnel/io/http_client.hpp"
#include "tunnel/io/ws_stream.hpp"
#include "tunnel/relay_messages.hpp"

using namespace sb::test;
using json = nlohmann::json;
namespace ssh = sb::tunnel::ssh;

namespace {

sb::tunnel::io::http_reply call(const std::string& method, const std::string& url,
                               const std::string& authorization, const std::string& body = "") {
  sb::tunnel::io::http_call c;
  c.method = method;
  c.url = url;
  c.headers["Authorization"] = authorization;
  if (!body.empty()) c.headers["Content-Type"] = "application/json";
  c.body = body;
  auto r = sb::tunnel::io::http_request(c);
  if (auto* error = std::get_if<std::string>(&r)) FAIL("request failed: " << *error);
  return std::get<sb::tunnel::io::http_reply>(r);
}

/// One sample of the relay's /metrics, read over HTTP as Prometheus would; -1 when the line is missing.
double relay_metric(relay_fixture& relay, const std::string& sample) {
  const auto reply = call("GET", relay.base_url() + "/metrics", "");
  REQUIRE(reply.status == 200);
  std::istringstream lines(reply.body);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind(sample + ' ', 0) == 0) return std::stod(line.substr(sample.size() + 1));
  return -1;
}

std::string limit_sample(const std::string& flag) {
  return "switchboard_relay_limit_exceeded_total{limit=\"" + flag + "\"}";
}

/// A relay WebSocket with a valid token that never speaks SSH: connected, then only read from.
std::shared_ptr<sb::tunnel::io::byte_stream> silent_websocket(relay_fixture& relay, const std::string& role,
                                                             const char* subprotocol,
                                                             const std::string& token) {
  std::promise<sb::tunnel::io::websocket_connect_result> done;
  sb::tunnel::io::websocket_connect_options w;
  w.url =
      "ws://127.0.0.1:" + std::to_string(relay.port()) + "/tunnels/" + relay_fixture::tunnel_id + "/" + role;
  w.subprotocols = {subprotocol};
  w.authorization = "tunnel " + token;
  sb::tunnel::io::connect_websocket(
      relay.io.ioc, w, [&](sb::tunnel::io::websocket_connect_result r) { done.set_value(std::move(r)); });
  auto f = done.get_future();
  REQUIRE(ready_within(f, 10s));
  auto r = f.get();
  INFO(r.error);
  REQUIRE(r.stream);
  return r.stream;
}

/// Reads until the stream ends; the future is ready when the relay closed it.
std::future<void> until_closed(const std::shared_ptr<sb::tunnel::io::byte_stream>& stream) {
  auto closed = std::make_shared<std::promise<void>>();
  auto f = closed->get_future();
  auto next = std::make_shared<std::function<void()>>();
  *next = [stream, closed, next] {
    stream->read([closed, next](boost::system::error_code ec, ssh::bytes) {
      if (ec) {
        closed->set_value();
        *next = nullptr;  // breaks the cycle
        return;
      }
      (*next)();
    });
  };
  boost::asio::post(stream->executor(), [next] { (*next)(); });
  return f;
}

struct connected_host {
  std::shared_ptr<sb::tunnel::io::host_peer> peer;
  std::shared_ptr<ssh::ecdsa_key> key = std::make_shared<ssh::ecdsa_key>(ssh::ecdsa_key::generate());
  std::atomic<bool> ended{false};

  explicit connected_host(relay_fixture& relay) {
    std::promise<void> connected;
    sb::tunnel::io::host_options h;
    h.relay_uri = relay.api->host_relay_uri(relay_fixture::tunnel_id);
    h.token = relay.token("host");
    h.host_key = key;
    sb::tunnel::io::relay_peer_callbacks cb;
    cb.connected = [&connected](sb::tunnel::protocol_version) { connected.set_value(); };
    cb.ended = [this](const sb::tunnel::io::relay_outcome&) { ended = true; };
    peer = std::make_shared<sb::tunnel::io::host_peer>(relay.io.ioc, h, cb);
    peer->start();
    auto f = connected.get_future();
    REQUIRE(ready_within(f, 10s));
  }
  ~connected_host() { peer->stop(); }
};

}  // namespace

TEST_CASE("a 200,000-deep JSON body posted with a connect token is answered 400 and the relay keeps serving",
          "[relay]") {
  relay_fixture relay;
  const auto connect = "tunnel " + relay.token("connect");
  const std::string deep = std::string(200'000, '[') + std::string(200'000, ']');
  const auto events = relay.base_url() + "/tunnels/" + relay_fixture::tunnel_id + "/events";

  auto refused = call("POST", events, connect, deep);
  INFO(refused.body);
  CHECK(refused.status == 400);
  CHECK(refused.header("content-type") == "application/problem+json");
  const auto problem = json::parse(refused.body, nullptr, false);
  REQUIRE(problem.is_object());
  CHECK(problem["status"] == 400);
  CHECK(problem["detail"].get<std::string>().find("nesting exceeds") != std::string::npos);

  // The same relay still answers, on a new connection.
  CHECK(call("POST", events, connect, R"([{"name":"after"}])").status == 200);
  CHECK(call("GET", relay.base_url() + "/tunnels/" + relay_fixture::tunnel_id, connect).status == 200);
  CHECK(relay.api->counters().json_too_deep == 1);
  CHECK(relay_metric(relay, limit_sample("max-json-depth")) == 1);
  const auto health = call("GET", relay.base_url() + "/healthz", "");
  CHECK(health.status == 200);
  CHECK(health.body == "ok\n");
}

TEST_CASE("relay WebSockets that never speak SSH are closed at the handshake deadline and counted",
          "[relay]") {
  sb::tunnel::io::relay_limits limits;
  limits.ssh_handshake_timeout = 300ms;
  limits.idle_timeout = 0ms;
  relay_fixture relay(limits);
  // A client (V2: the relay terminates its session) and a host, each with a valid token and not one byte.
  auto client = silent_websocket(relay, "client", sb::tunnel::subprotocol::client_v2, relay.token("connect"));
  auto client_closed = until_closed(client);
  CHECK(ready_within(client_closed, 10s));
  auto host = silent_websocket(relay, "host", sb::tunnel::subprotocol::host_v2, relay.token("host"));
  auto host_closed = until_closed(host);
  CHECK(ready_within(host_closed, 10s));
  CHECK(eventually([&] { return relay.node->counters().ssh_handshake_timeouts == 2; }));
  CHECK(relay.node->counters().idle_timeouts == 0);
  CHECK(relay_metric(relay, limit_sample("ssh-handshake-timeout-ms")) == 2);
  CHECK(relay_metric(relay, limit_sample("idle-timeout-ms")) == 0);
  CHECK(relay_metric(relay, "switchboard_relay_hosts_accepted_total") == 1);
  CHECK(relay_metric(relay, "switchboard_relay_clients_accepted_total") == 1);
}

TEST_CASE("a V1 client spliced to a V1 host is closed when it sends nothing by the handshake deadline",
          "[relay]") {
  sb::tunnel::io::relay_limits limits;
  limits.ssh_handshake_timeout = 300ms;
  limits.idle_timeout = 0ms;
  relay_fixture relay(limits);
  // A V1 host, so a V1 client is piped end to end and the relay cannot see an SSH session of its own.
  std::promise<void> connected;
  sb::tunnel::io::host_options h;
  h.relay_uri = relay.api->host_relay_uri(relay_fixture::tunnel_id);
  h.token = relay.token("host");
  h.protocol = sb::tunnel::io::protocol_choice::v1;
  h.host_key = std::make_shared<ssh::ecdsa_key>(ssh::ecdsa_key::generate());
  sb::tunnel::io::relay_peer_callbacks cb;
  cb.connected = [&connected](sb::tunnel::protocol_version) { connected.set_value(); };
  auto host = std::make_shared<sb::tunnel::io::host_peer>(relay.io.ioc, h, cb);
  host->start();
  auto is_connected = connected.get_future();
  REQUIRE(ready_within(is_connected, 10s));

  auto client = silent_websocket(relay, "client", sb::tunnel::subprotocol::client_v1, relay.token("connect"));
  auto client_closed = until_closed(client);
  CHECK(ready_within(client_closed, 10s));
  CHECK(eventually([&] { return relay.node->counters().ssh_handshake_timeouts == 1; }));
  host->stop();
}

TEST_CASE(
    "a client idle past the idle timeout is closed and counted, and a host that finished its handshake stays",
    "[relay]") {
  sb::tunnel::io::relay_limits limits;
  limits.ssh_handshake_timeout = 2000ms;
  limits.idle_timeout = 400ms;
  relay_fixture relay(limits);
  connected_host host(relay);

  // Our client: a real SSH session that then goes quiet (no ports, no streams).
  std::promise<void> connected;
  std::promise<sb::tunnel::io::relay_outcome> ended;
  sb::tunnel::io::client_options c;
  c.relay_uri = relay.api->client_relay_uri(relay_fixture::tunnel_id);
  c.token = relay.token("connect");
  c.host_public_keys = {ssh::base64_encode(relay.relay_key->public_blob())};
  sb::tunnel::io::relay_peer_callbacks cb;
  cb.connected = [&connected](sb::tunnel::protocol_version) { connected.set_value(); };
  std::atomic<bool> ended_once{false};
  cb.ended = [&](const sb::tunnel::io::relay_outcome& o) {
    if (!ended_once.exchange(true)) ended.set_value(o);
  };
  auto client = std::make_shared<sb::tunnel::io::client_peer>(relay.io.ioc, c, cb);
  client->start();
  auto is_connected = connected.get_future();
  REQUIRE(ready_within(is_connected, 10s));
  auto is_ended = ended.get_future();
  REQUIRE(ready_within(is_ended, 10s));
  // Lost, not refused: the client treats it like any dropped connection and may reconnect.
  CHECK(is_ended.get().network);
  CHECK(eventually([&] { return relay.node->counters().idle_timeouts == 1; }));
  // Well past both the handshake deadline and the idle timeout, the host is still connected.
  CHECK_FALSE(eventually([&] { return host.ended.load(); }, 2500ms));
  CHECK(relay.node->counters().ssh_handshake_timeouts == 0);
  CHECK(relay.node->counters().idle_timeouts == 1);
  CHECK(relay_metric(relay, limit_sample("idle-timeout-ms")) == 1);
  CHECK(relay_metric(relay, "switchboard_relay_hosts") == 1);
  CHECK(relay_metric(relay, "switchboard_relay_clients") == 0);
  CHECK(relay_metric(relay, "switchboard_relay_stored_tunnels") == 1);
  client->stop();
}

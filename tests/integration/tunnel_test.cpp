// Our host, relay and client together over real sockets: data on many concurrent streams in V2 and V1,
// ports added and removed live, typed refusals.
#include <catch2/catch.hpp>

#include "support/tunnel_fixture.hpp"

using namespace sb::test;
using sb::tunnel::io::protocol_choice;
namespace ssh = sb::tunnel::ssh;


TEST_CASE("host, relay and client move data byte-exact on many concurrent streams") {
  struct variant {
    protocol_choice host, client;
    const char* name;
  };
  for (const auto& v :
       {variant{protocol_choice::v2, protocol_choice::v2, "V2 host, V2 client"},
        variant{protocol_choice::v1, protocol_choice::v1, "V1 host, V1 client"},
        variant{protocol_choice::v2, protocol_choice::v1, "V2 host, V1 client (relay terminates)"},
        variant{protocol_choice::automatic, protocol_choice::automatic, "both automatic"}}) {
    INFO(v.name);
    relay_fixture relay;
    echo_service echo(relay.io.ioc);
    auto p = start_peers(relay, {echo.port()}, v.host, v.client, {{echo.port(), 0}});
    const auto local = local_port_for(*p, echo.port());
    REQUIRE(local != 0);
    CHECK(concurrent_echo_check(local, 24, 256 * 1024) == 24);
    CHECK(concurrent_echo_check(local, 2, 4 * 1024 * 1024) == 2);
    p->client->stop();
    p->host->stop();
  }
}

TEST_CASE("a client that connects before its host gets the host's ports once the host is there") {
  // A host registers its endpoint before it opens its relay WebSocket; a client reading that endpoint can
  // reach the relay first (the official SDK client did so, now and then, against our V1 host). The relay then
  // terminates the client's session itself and must still serve it the ports of whichever host comes.
  struct variant {
    protocol_choice host, client;
    const char* name;
  };
  for (const auto& v : {variant{protocol_choice::v1, protocol_choice::v1, "V1 host, V1 client"},
                        variant{protocol_choice::v1, protocol_choice::v2, "V1 host, V2 client"},
                        variant{protocol_choice::v2, protocol_choice::v1, "V2 host, V1 client"},
                        variant{protocol_choice::v2, protocol_choice::v2, "V2 host, V2 client"}}) {
    INFO(v.name);
    relay_fixture relay;
    echo_service echo(relay.io.ioc);
    peers p;
    start_client(relay, p, v.client, {{echo.port(), 0}});
    CHECK(p.client->listening().empty());
    start_host(relay, p, {echo.port()}, v.host);
    const auto local = local_port_for(p, echo.port());
    REQUIRE(local != 0);
    CHECK(concurrent_echo_check(local, 8, 256 * 1024) == 8);
    p.client->stop();
    p.host->stop();
  }
}

TEST_CASE("a V2 client of a V1 host that was there first is served through the relay") {
  relay_fixture relay;
  echo_service echo(relay.io.ioc);
  auto p = start_peers(relay, {echo.port()}, protocol_choice::v1, protocol_choice::v2, {{echo.port(), 0}});
  const auto local = local_port_for(*p, echo.port());
  REQUIRE(local != 0);
  CHECK(concurrent_echo_check(local, 8, 256 * 1024) == 8);
}

TEST_CASE("ports added and removed while connected reach the client") {
  relay_fixture relay;
  echo_service first(relay.io.ioc);
  echo_service second(relay.io.ioc);
  auto p = start_peers(relay, {first.port()}, protocol_choice::v2, protocol_choice::v2,
                       {{first.port(), 0}, {second.port(), 0}});
  REQUIRE(local_port_for(*p, first.port()) != 0);
  p->host->add_port(second.port());
  const auto added = local_port_for(*p, second.port());
  REQUIRE(added != 0);
  CHECK(concurrent_echo_check(added, 4, 10000) == 4);
  p->host->remove_port(first.port());
  CHECK(eventually([&] { return p->client->listening().count(first.port()) == 0; }, 10s));
  CHECK(p->client->listening().count(second.port()) == 1);
}

TEST_CASE("the relay refuses a bad token with 401, a wrong scope with 403 and an unknown tunnel with 404") {
  relay_fixture relay;
  auto outcome_of = [&](const std::string& uri, const std::string& token) {
    sb::tunnel::io::host_options h;
    h.relay_uri = uri;
    h.token = token;
    h.host_key = std::make_shared<ssh::ecdsa_key>(ssh::ecdsa_key::generate());
    std::promise<sb::tunnel::io::relay_outcome> ended;
    sb::tunnel::io::relay_peer_callbacks cb;
    cb.ended = [&](const sb::tunnel::io::relay_outcome& o) { ended.set_value(o); };
    auto host = std::make_shared<sb::tunnel::io::host_peer>(relay.io.ioc, h, cb);
    host->start();
    auto f = ended.get_future();
    REQUIRE(ready_within(f, 10s));
    return f.get();
  };
  CHECK(outcome_of(relay.api->host_relay_uri(relay_fixture::tunnel_id), "not-a-token").http_status == 401);
  CHECK(outcome_of(relay.api->host_relay_uri(relay_fixture::tunnel_id), relay.token("connect")).http_status ==
        403);
  CHECK(outcome_of(relay.api->host_relay_uri("no-such-tunnel"), relay.token("host")).http_status == 403);
  CHECK(
      outcome_of(relay.api->host_relay_uri("no-such-tunnel"), relay_fixture::management_token).http_status ==
      404);
}

TEST_CASE("a second host replaces the first, which is told tooManyConnections") {
  relay_fixture relay;
  echo_service echo(relay.io.ioc);
  auto first =
      start_peers(relay, {echo.port()}, protocol_choice::v2, protocol_choice::v2, {{echo.port(), 0}});
  auto second =
      start_peers(relay, {echo.port()}, protocol_choice::v2, protocol_choice::v2, {{echo.port(), 0}});
  REQUIRE(eventually([&] { return first->events->host_ended.load(); }, 10s));
  CHECK(first->events->host_outcome.ssh_reason == ssh::disconnect_reason::too_many_connections);
  const auto local = local_port_for(*second, echo.port());
  CHECK(concurrent_echo_check(local, 3, 50000) == 3);
}

TEST_CASE("serve with a tunnel exposes the gateway itself through the relay") {
  relay_fixture relay;
  gateway_fixture gw([&](sb::protocol::gateway_config& c) {
    c.auth = sb::protocol::auth_mode::none;
    c.tunnel_relay = relay.base_url();
    c.tunnel_id = relay_fixture::tunnel_id;
    c.tunnel_token = relay.token("host");
  });
  REQUIRE(eventually(
      [&] {
        return gw.admin({{"cmd", "tunnel"}})["result"].value("status", "") == "connected";
      },
      10s));
  CHECK(http_get(gw.port(), "/metrics").second.find("switchboard_tunnel_status{status=\"connected\"} 1") !=
        std::string::npos);

  sb::tunnel::io::client_options c;
  c.relay_uri = relay.api->client_relay_uri(relay_fixture::tunnel_id);
  c.token = relay.token("connect");
  c.port_map = {{gw.port(), 0}};
  auto client =
      std::make_shared<sb::tunnel::io::client_peer>(relay.io.ioc, c, sb::tunnel::io::relay_peer_callbacks{});
  client->start();
  std::uint16_t local = 0;
  REQUIRE(eventually(
      [&] {
        auto l = client->listening();
        if (!l.count(gw.port())) return false;
        local = l[gw.port()];
        return true;
      },
      10s));
  // A WebSocket client reaches the gateway through host, relay and client.
  ws_client through(local);
  auto info = through.event("session_info");
  REQUIRE(info);
  CHECK((*info)["payload"]["nodeId"] == gw.node->node_id());
  CHECK(through.request("ping")["type"] == "pong");

  auto added = gw.admin({{"cmd", "ports.add"}, {"port", 9}});
  CHECK(added["ok"] == true);
  CHECK(eventually([&] { return gw.admin({{"cmd", "tunnel"}})["result"]["ports"].size() == 2; }));
  client->stop();
}

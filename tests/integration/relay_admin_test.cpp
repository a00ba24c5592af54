// The relay's control plane seen from outside: its admin socket (stats, tunnels, actors, asked live from the
// tunnel and connection actors) and its /metrics (connections, bytes, auth failures, handshakes), with a real
// host and client connected over 127.0.0.1.
#include <catch2/catch.hpp>

#include "support/process.hpp"
#include "support/tunnel_fixture.hpp"
#include "support/ws_client.hpp"
#include "transport/admin_socket.hpp"

using namespace sb::test;
using json = nlohmann::json;
using sb::tunnel::io::protocol_choice;

namespace {

/// The fixture's relay node behind an admin socket in `dir`.
struct relay_admin {
  relay_fixture& relay;
  std::string path;
  sb::transport::admin_server server;

  relay_admin(relay_fixture& r, const temp_dir& dir)
      : relay(r),
        path((dir.path() / "relay.sock").string()),
        server(r.io.ioc, path, [&r](json req, auto respond) { r.node->answer_admin(req, std::move(respond)); }) {
    server.start();
  }
  ~relay_admin() { server.stop_accepting(); }

  json call(const json& request) {
    auto answer = sb::transport::admin_call(path, request);
    INFO(answer.dump());
    REQUIRE(answer.value("ok", false));
    return answer["result"];
  }
};

std::size_t count_kind(const json& actors, const std::string& kind) {
  std::size_t n = 0;
  for (const auto& a : actors) n += a.value("kind", "") == kind ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("the relay admin socket lists its tunnels and actors live, and stats count what moved",
          "[relay][admin]") {
  relay_fixture relay;
  temp_dir dir;
  relay_admin admin(relay, dir);
  echo_service echo(relay.io.ioc);

  auto idle = admin.call({{"cmd", "stats"}});
  CHECK(idle["tunnels"] == 0);
  CHECK(idle["hosts"] == 0);
  CHECK(admin.call({{"cmd", "tunnels"}})["total"] == 0);

  auto p = start_peers(relay, {echo.port()}, protocol_choice::v2, protocol_choice::v2, {{echo.port(), 0}});
  const auto local = local_port_for(*p, echo.port());
  REQUIRE(local != 0);
  REQUIRE(concurrent_echo_check(local, 2, 64 * 1024) == 2);

  const auto stats = admin.call({{"cmd", "stats"}});
  CHECK(stats["tunnels"] == 1);
  CHECK(stats["hosts"] == 1);
  CHECK(stats["clients"] == 1);
  CHECK(stats["sshHandshakes"] == 2);
  // Both echoes went client -> relay -> host and back: well over 4 x 64 KiB through the relay's WebSockets.
  CHECK(stats["bytesIn"].get<std::uint64_t>() > 4 * 64 * 1024);
  CHECK(stats["bytesOut"].get<std::uint64_t>() > 4 * 64 * 1024);

  const auto tunnels = admin.call({{"cmd", "tunnels"}});
  REQUIRE(tunnels["total"] == 1);
  const auto& t = tunnels["tunnels"][0];
  CHECK(t["tunnelId"] == relay_fixture::tunnel_id);
  CHECK(t["protocol"] == "v2");
  CHECK(t["ports"] == json::array({echo.port()}));
  CHECK(t["clients"] == 1);

  const auto actors = admin.call({{"cmd", "actors"}})["actors"];
  INFO(actors.dump());
  CHECK(count_kind(actors, "relay_directory") == 1);
  CHECK(count_kind(actors, "relay_tunnel") == 1);
  REQUIRE(count_kind(actors, "relay_connection") == 2);
  std::set<std::string> roles;
  for (const auto& a : actors)
    if (a["kind"] == "relay_connection") {
      roles.insert(a["state"]["role"].get<std::string>());
      CHECK(a["state"]["ready"] == true);
      CHECK(a["state"]["bytesIn"].get<std::uint64_t>() > 0);
    }
  CHECK(roles == std::set<std::string>{"host", "client"});

  // The client leaves: the tunnel stays with its host, one connection actor fewer.
  p->client->stop();
  CHECK(eventually([&] { return admin.call({{"cmd", "stats"}})["clients"] == 0; }, 10s));
  CHECK(count_kind(admin.call({{"cmd", "actors"}})["actors"], "relay_connection") == 1);
  // The host leaves too: the tunnel actor ends.
  p->host->stop();
  CHECK(eventually([&] { return admin.call({{"cmd", "tunnels"}})["total"] == 0; }, 10s));
  CHECK(count_kind(admin.call({{"cmd", "actors"}})["actors"], "relay_tunnel") == 0);

  // Gateway commands are not the relay's.
  auto refused = sb::transport::admin_call(admin.path, {{"cmd", "kick"}, {"id", "x"}});
  CHECK_FALSE(refused.value("ok", true));
  CHECK(refused.value("error", "").find("a relay answers stats, tunnels, actors") != std::string::npos);
}

TEST_CASE("the relay's /metrics counts refused upgrades by status, handshakes and bytes", "[relay][metrics]") {
  relay_fixture relay;
  echo_service echo(relay.io.ioc);
  // A host with a bad token: 401, counted, no connection.
  {
    sb::tunnel::io::host_options h;
    h.relay_uri = relay.api->host_relay_uri(relay_fixture::tunnel_id);
    h.token = "not-a-token";
    h.host_key = std::make_shared<sb::tunnel::ssh::ecdsa_key>(sb::tunnel::ssh::ecdsa_key::generate());
    std::promise<sb::tunnel::io::relay_outcome> ended;
    sb::tunnel::io::relay_peer_callbacks cb;
    cb.ended = [&](const sb::tunnel::io::relay_outcome& o) { ended.set_value(o); };
    auto refused = std::make_shared<sb::tunnel::io::host_peer>(relay.io.ioc, h, cb);
    refused->start();
    auto f = ended.get_future();
    REQUIRE(ready_within(f, 10s));
    CHECK(f.get().http_status == 401);
  }
  auto p = start_peers(relay, {echo.port()}, protocol_choice::v2, protocol_choice::v2, {{echo.port(), 0}});
  REQUIRE(concurrent_echo_check(local_port_for(*p, echo.port()), 1, 32 * 1024) == 1);
  const auto [status, body] = http_get(relay.port(), "/metrics");
  REQUIRE(status == 200);
  INFO(body);
  CHECK(body.find("switchboard_relay_auth_failures_total{status=\"401\"} 1\n") != std::string::npos);
  CHECK(body.find("switchboard_relay_auth_failures_total{status=\"403\"} 0\n") != std::string::npos);
  CHECK(body.find("switchboard_relay_ssh_handshakes_total 2\n") != std::string::npos);
  CHECK(body.find("switchboard_relay_hosts 1\n") != std::string::npos);
  CHECK(body.find("switchboard_relay_clients 1\n") != std::string::npos);
  CHECK(body.find("switchboard_relay_tunnels_connected 1\n") != std::string::npos);
  CHECK(body.find("switchboard_relay_received_bytes_total ") != std::string::npos);
  CHECK(body.find("switchboard_relay_received_bytes_total 0\n") == std::string::npos);
}

TEST_CASE("switchboard relay --admin-socket answers stats and tunnels", "[relay][admin][cli]") {
  temp_dir dir;
  const auto socket = (dir.path() / "admin.sock").string();
  child_process relay({SWITCHBOARD_BINARY, "relay", "--port", "0", "--data-dir", (dir.path() / "data").string(),
                       "--admin-socket", socket},
                      dir.path());
  REQUIRE(relay.wait_for_output("management token", 10s));
  auto stats = sb::transport::admin_call(socket, {{"cmd", "stats"}});
  INFO(stats.dump() << relay.err());
  REQUIRE(stats.value("ok", false));
  CHECK(stats["result"]["hosts"] == 0);
  CHECK(stats["result"]["authFailures"]["401"] == 0);
  auto tunnels = sb::transport::admin_call(socket, {{"cmd", "tunnels"}});
  REQUIRE(tunnels.value("ok", false));
  CHECK(tunnels["result"]["total"] == 0);
  relay.signal(SIGTERM);
  CHECK(relay.wait_exit(10s) == std::optional<int>(0));
  CHECK_FALSE(std::filesystem::exists(socket));
}

// The supervised tunnel host against our relay: reconnect with backoff after a relay restart, exactly one
// token refresh on 401, and no retry loop on 403/404.
#include <caf/all.hpp>
#include <catch2/catch.hpp>
#include <list>

#include "actors/admin_commands.hpp"
#include "actors/tunnel_host.hpp"
#include "actors/type_ids.hpp"
#include "support/tunnel_fixture.hpp"

using namespace sb::test;
namespace ssh = sb::tunnel::ssh;
using sb::tunnel::connection_status;

namespace {

struct status_log {
  std::mutex mtx;
  std::vector<connection_status> seen;
  void add(connection_status s) {
    std::lock_guard<std::mutex> g(mtx);
    seen.push_back(s);
  }
  std::size_t count(connection_status s) {
    std::lock_guard<std::mutex> g(mtx);
    return static_cast<std::size_t>(std::count(seen.begin(), seen.end(), s));
  }
};

sb::actors::tunnel_host_config host_config(relay_fixture& relay, std::set<std::uint16_t> ports,
                                           std::string token, std::string tunnel_id, status_log& log) {
  sb::actors::tunnel_host_config c;
  c.tunnel_id = tunnel_id;
  c.token = std::move(token);
  c.ports = std::move(ports);
  c.host_key = std::make_shared<ssh::ecdsa_key>(ssh::ecdsa_key::generate());
  c.ioc = &relay.io.ioc;
  c.backoff.initial = std::chrono::milliseconds(100);
  c.backoff.cap = std::chrono::milliseconds(800);
  const auto uri = relay.api->host_relay_uri(tunnel_id);
  c.resolve = [uri](const std::string&) { return sb::actors::relay_endpoint_result{uri, 0, {}}; };
  c.on_status = [&log](connection_status s, const std::string&) { log.add(s); };
  return c;
}

nlohmann::json info_of(caf::actor_system& sys, const sb::actors::tunnel_supervisor_actor& sup) {
  caf::scoped_actor self{sys};
  nlohmann::json out;
  self->request(sup, std::chrono::seconds(3), sb::info_atom_v)
      .receive([&](sb::actors::tunnel_info& info) { out = info; }, [&](caf::error&) {});
  return out;
}

bool status_is(caf::actor_system& sys, const sb::actors::tunnel_supervisor_actor& sup, const char* status) {
  return info_of(sys, sup).value("status", "") == status;
}

std::shared_ptr<sb::tunnel::io::client_peer> start_client(relay_fixture& relay, std::uint16_t remote) {
  sb::tunnel::io::client_options o;
  o.relay_uri = relay.api->client_relay_uri(relay_fixture::tunnel_id);
  o.token = relay.token("connect");
  o.port_map = {{remote, 0}};
  auto client =
      std::make_shared<sb::tunnel::io::client_peer>(relay.io.ioc, o, sb::tunnel::io::relay_peer_callbacks{});
  client->start();
  return client;
}

}  // namespace

TEST_CASE("the supervised host reconnects within its backoff bound after the relay restarts") {
  status_log log;
  relay_fixture relay;
  echo_service echo(relay.io.ioc);
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto sup = sb::actors::spawn_tunnel_supervisor(
      sys, host_config(relay, {echo.port()}, relay.token("host"), relay_fixture::tunnel_id, log));
  REQUIRE(eventually([&] { return status_is(sys, sup, "connected"); }, 10s));
  {
    auto client = start_client(relay, echo.port());
    const auto local = listening_port(*client, echo.port());
    REQUIRE(local != 0);
    CHECK(concurrent_echo_check(local, 4, 20000) == 4);
    client->stop();
  }

  relay.restart();
  REQUIRE(eventually([&] { return log.count(connection_status::disconnected) >= 1; }, 10s));
  const auto lost_at = std::chrono::steady_clock::now();
  REQUIRE(eventually([&] { return status_is(sys, sup, "connected"); }, 10s));
  // Full jitter never waits longer than the cap; allow for the connection itself.
  CHECK(std::chrono::steady_clock::now() - lost_at < std::chrono::milliseconds(800) + 3s);
  const auto info = info_of(sys, sup);
  CHECK(info["reconnects"] == 1);
  CHECK(info["protocol"] == "v2");

  auto client = start_client(relay, echo.port());
  const auto local = listening_port(*client, echo.port());
  REQUIRE(local != 0);
  CHECK(concurrent_echo_check(local, 4, 20000) == 4);
  client->stop();
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
}

TEST_CASE("a 401 triggers exactly one token refresh, and a refreshed token that works connects") {
  status_log log;
  std::atomic<int> refreshes{0};
  relay_fixture relay;
  echo_service echo(relay.io.ioc);
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto c = host_config(relay, {echo.port()}, "expired-or-bogus", relay_fixture::tunnel_id, log);
  const auto good = relay.token("host");
  c.refresh_token = [&refreshes, good]() -> std::optional<std::string> {
    ++refreshes;
    return good;
  };
  auto sup = sb::actors::spawn_tunnel_supervisor(sys, c);
  REQUIRE(eventually([&] { return status_is(sys, sup, "connected"); }, 10s));
  CHECK(refreshes == 1);
  CHECK(log.count(connection_status::refreshing_token) == 1);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
}

TEST_CASE("a second 401 after the refresh stops without retrying") {
  status_log log;
  std::atomic<int> refreshes{0};
  relay_fixture relay;
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto c = host_config(relay, {9}, "bogus", relay_fixture::tunnel_id, log);
  c.refresh_token = [&refreshes]() -> std::optional<std::string> {
    ++refreshes;
    return std::string("still-bogus");
  };
  auto sup = sb::actors::spawn_tunnel_supervisor(sys, c);
  REQUIRE(eventually([&] { return log.count(connection_status::disconnected) >= 2; }, 10s));
  std::this_thread::sleep_for(1500ms);  // long enough for several retries, were any scheduled
  const auto info = info_of(sys, sup);
  CHECK(refreshes == 1);
  CHECK(info["attempts"] == 2);
  CHECK(info["status"] == "disconnected");
  CHECK(info["lastError"].get<std::string>().find("HTTP 401") != std::string::npos);
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
}

TEST_CASE("403 and 404 stop with a typed error and no retry loop") {
  relay_fixture relay;
  std::list<status_log> logs;
  std::list<std::atomic<int>> counters;
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  struct refusal {
    std::string token, tunnel, expected;
  };
  for (const auto& r : {refusal{relay.token("connect"), relay_fixture::tunnel_id, "forbidden (HTTP 403)"},
                        refusal{relay_fixture::management_token, "no-such-tunnel", "notFound (HTTP 404)"}}) {
    auto& log = logs.emplace_back();
    auto& refreshes = counters.emplace_back(0);
    auto c = host_config(relay, {9}, r.token, r.tunnel, log);
    c.refresh_token = [&refreshes]() -> std::optional<std::string> {
      ++refreshes;
      return std::string("x");
    };
    auto sup = sb::actors::spawn_tunnel_supervisor(sys, c);
    REQUIRE(eventually([&] { return log.count(connection_status::disconnected) >= 1; }, 10s));
    std::this_thread::sleep_for(1000ms);
    const auto info = info_of(sys, sup);
    INFO(info.dump());
    CHECK(info["attempts"] == 1);
    CHECK(refreshes == 0);
    CHECK(info["lastError"].get<std::string>().find(r.expected) != std::string::npos);
    caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  }
}

TEST_CASE("the tunnel admin commands show live state and change ports") {
  status_log log;
  relay_fixture relay;
  echo_service echo(relay.io.ioc);
  echo_service second(relay.io.ioc);
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto sup = sb::actors::spawn_tunnel_supervisor(
      sys, host_config(relay, {echo.port()}, relay.token("host"), relay_fixture::tunnel_id, log));
  REQUIRE(eventually([&] { return status_is(sys, sup, "connected"); }, 10s));
  auto ask = [&](nlohmann::json req) {
    std::promise<nlohmann::json> p;
    // As the admin socket does: a line that is not a valid command is answered at once.
    auto command = sb::protocol::parse_admin_command(req);
    if (auto* error = std::get_if<std::string>(&command)) return sb::actors::admin_fail(*error);
    sb::actors::tunnel_admin(sys, sup, std::get<sb::protocol::admin_command>(command),
                             [&p](nlohmann::json j) { p.set_value(std::move(j)); });
    return p.get_future().get();
  };
  auto t = ask({{"cmd", "tunnel"}});
  REQUIRE(t["ok"] == true);
  CHECK(t["result"]["status"] == "connected");
  CHECK(t["result"]["ports"] == nlohmann::json::array({echo.port()}));
  CHECK(t["result"]["clients"] == 0);
  CHECK(t["result"].contains("bytesIn"));
  CHECK(t["result"]["relay"].get<std::string>().rfind("ws://127.0.0.1:", 0) == 0);

  auto client = start_client(relay, second.port());
  CHECK(ask({{"cmd", "ports.add"}, {"port", second.port()}})["ok"] == true);
  const auto local = listening_port(*client, second.port());
  REQUIRE(local != 0);
  // A stream held open shows up as a live actor.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket held(ioc);
  held.connect({boost::asio::ip::make_address("127.0.0.1"), local});
  REQUIRE(eventually(
      [&] {
        auto a = ask({{"cmd", "actors"}});
        for (const auto& actor : a["result"]["actors"])
          if (actor["kind"] == "tunnel_stream") return true;
        return false;
      },
      10s));
  CHECK(ask({{"cmd", "tunnel"}})["result"]["clients"] == 1);
  CHECK(ask({{"cmd", "ports.remove"}, {"port", second.port()}})["ok"] == true);
  CHECK(eventually([&] { return ask({{"cmd", "tunnel"}})["result"]["ports"].size() == 1; }));
  CHECK(ask({{"cmd", "ports.add"}, {"port", 0}})["ok"] == false);
  client->stop();
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
}

TEST_CASE("stopping the host while its endpoint registration is in flight waits for it, bounded") {
  // The registration runs on a thread the connection actor owns: once every actor is done, that thread is
  // over too, so nothing it holds can outlive the actor system.
  status_log log;
  relay_fixture relay;
  std::atomic<bool> entered{false}, returned{false};
  auto c = host_config(relay, {9}, relay.token("host"), relay_fixture::tunnel_id, log);
  const auto uri = relay.api->host_relay_uri(relay_fixture::tunnel_id);
  c.resolve = [&entered, &returned, uri](const std::string&) {
    entered = true;
    std::this_thread::sleep_for(800ms);  // a slow management API
    returned = true;
    return sb::actors::relay_endpoint_result{uri, 0, {}};
  };
  const auto started = std::chrono::steady_clock::now();
  {
    caf::actor_system_config cfg;
    caf::actor_system sys{cfg};
    auto sup = sb::actors::spawn_tunnel_supervisor(sys, c);
    REQUIRE(eventually([&] { return entered.load(); }, 5s));
    caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
    CHECK(returned);
  }
  CHECK(std::chrono::steady_clock::now() - started < 5s);
  CHECK(log.count(connection_status::connected) == 0);
}

TEST_CASE("stopping the host while the relay WebSocket upgrade hangs exits cleanly") {
  // A relay that accepts the TCP connection and then says nothing, as a stopped one does.
  status_log log;
  relay_fixture relay;
  boost::asio::ip::tcp::acceptor silent(relay.io.ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  std::vector<std::shared_ptr<boost::asio::ip::tcp::socket>> held;
  std::mutex held_mtx;
  std::function<void()> accept = [&] {
    auto s = std::make_shared<boost::asio::ip::tcp::socket>(relay.io.ioc);
    silent.async_accept(*s, [&, s](boost::system::error_code ec) {
      if (ec) return;
      std::lock_guard<std::mutex> g(held_mtx);
      held.push_back(s);
      accept();
    });
  };
  accept();
  auto c = host_config(relay, {9}, relay.token("host"), relay_fixture::tunnel_id, log);
  const auto uri = "ws://127.0.0.1:" + std::to_string(silent.local_endpoint().port()) + "/host";
  c.resolve = [uri](const std::string&) { return sb::actors::relay_endpoint_result{uri, 0, {}}; };
  const auto started = std::chrono::steady_clock::now();
  {
    caf::actor_system_config cfg;
    caf::actor_system sys{cfg};
    auto sup = sb::actors::spawn_tunnel_supervisor(sys, c);
    REQUIRE(eventually(
        [&] {
          std::lock_guard<std::mutex> g(held_mtx);
          return !held.empty();
        },
        5s));
    caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
  }
  // The upgrade is still pending on the io_context; it must not reach the actor system that is gone.
  CHECK(std::chrono::steady_clock::now() - started < 5s);
  // The acceptor belongs to the io thread: close it there, and wait, before it goes out of scope.
  std::promise<void> closed;
  boost::asio::post(relay.io.ioc, [&] {
    boost::system::error_code ignored;
    silent.close(ignored);
    closed.set_value();
  });
  closed.get_future().wait();
}

TEST_CASE("a token refresh that fails stops the host with the refresher's own reason") {
  status_log log;
  relay_fixture relay;
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto c = host_config(relay, {9}, "expired", relay_fixture::tunnel_id, log);
  std::promise<std::string> gave_up;
  c.on_gave_up = [&gave_up](const std::string& why) { gave_up.set_value(why); };
  c.refresh_token = []() -> std::optional<std::string> {
    throw std::runtime_error("the token command did not finish within 500 ms (killed)");
  };
  auto sup = sb::actors::spawn_tunnel_supervisor(sys, c);
  auto why = gave_up.get_future();
  REQUIRE(ready_within(why, 10s));
  CHECK(why.get() == "token refresh failed: the token command did not finish within 500 ms (killed)");
  CHECK(info_of(sys, sup)["status"] == "disconnected");
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
}

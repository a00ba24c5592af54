// The real binaries end to end: `relay`, `tunnel create`, `host` and `connect`; the relay killed (SIGKILL)
// and restarted; a token command refreshed once on 401; a forbidden token ends the host with exit 1.
#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <regex>

#include "support/process.hpp"
#include "support/tunnel_fixture.hpp"

using namespace sb::test;

namespace {

const std::string binary = SWITCHBOARD_BINARY;

struct created_tunnel {
  std::string id, host_token, connect_token;
};

std::unique_ptr<child_process> start_relay(const temp_dir& dir, std::uint16_t port) {
  auto relay = std::make_unique<child_process>(
      std::vector<std::string>{binary, "relay", "--port", std::to_string(port), "--data-dir",
                               (dir.path() / "relay-data").string()},
      dir.path());
  REQUIRE(relay->wait_for_output("switchboard relay http://127.0.0.1:", 10s));
  return relay;
}

created_tunnel create_tunnel(const temp_dir& dir, const std::string& url) {
  auto r = run_to_end({binary, "tunnel", "create", "--relay", url, "--management-token-file",
                       (dir.path() / "relay-data" / "management-token").string(), "--json"},
                      dir.path());
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  return {j["tunnelId"], j["accessTokens"]["host"], j["accessTokens"]["connect"]};
}

nlohmann::json host_status(const temp_dir& dir) {
  try {
    return sb::transport::admin_call((dir.path() / "host.sock").string(), {{"cmd", "tunnel"}})["result"];
  } catch (...) {
    return {};
  }
}

bool echo_through(std::uint16_t port) { return concurrent_echo_check(port, 3, 64 * 1024) == 3; }

}  // namespace

TEST_CASE("host and connect survive a relay that is killed and restarted") {
  temp_dir dir;
  io_threads io;
  echo_service echo(io.ioc);
  const auto relay_port = free_port();
  const auto url = "http://127.0.0.1:" + std::to_string(relay_port);
  auto relay = start_relay(dir, relay_port);
  const auto t = create_tunnel(dir, url);
  child_process host({binary, "host", "--relay", url, "--tunnel", t.id, "--token", t.host_token, "--port",
                      std::to_string(echo.port()), "--admin-socket", (dir.path() / "host.sock").string(),
                      "--backoff-initial-ms", "100", "--backoff-max-ms", "1000"},
                     dir.path());
  REQUIRE(host.wait_for_output("status connected", 10s));
  const auto local = free_port();
  child_process connect({binary, "connect", "--relay", url, "--tunnel", t.id, "--token", t.connect_token,
                         "--map", std::to_string(echo.port()) + ":" + std::to_string(local)},
                        dir.path());
  REQUIRE(connect.wait_for_output("forwarding remote port", 10s));
  CHECK(echo_through(local));

  relay->signal(SIGKILL);
  relay->wait_exit(5s);
  REQUIRE(eventually([&] { return host_status(dir).value("status", "") == "disconnected"; }, 10s));
  relay = start_relay(dir, relay_port);
  // Backoff is capped at 1 s: the host is back well within a few seconds, and so is the client.
  REQUIRE(eventually([&] { return host_status(dir).value("status", "") == "connected"; }, 5s));
  CHECK(host_status(dir)["reconnects"] == 1);
  CHECK(eventually([&] { return echo_through(local); }, 10s));
  host.signal(SIGTERM);
  connect.signal(SIGTERM);
  CHECK(host.wait_exit(10s) == std::optional<int>(0));
  CHECK(connect.wait_exit(10s) == std::optional<int>(0));
}

TEST_CASE("a 401 makes the host run its token command exactly once more, then connect") {
  temp_dir dir;
  const auto relay_port = free_port();
  const auto url = "http://127.0.0.1:" + std::to_string(relay_port);
  auto relay = start_relay(dir, relay_port);
  const auto t = create_tunnel(dir, url);
  {
    std::ofstream good(dir.path() / "good-token");
    good << t.host_token;
  }
  // The first run prints a stale token, every later run the good one; each run is counted.
  const auto command =
      "echo run >> runs; if [ -f used ]; then cat good-token; else touch used; echo stale; fi";
  child_process host({binary, "host", "--relay", url, "--tunnel", t.id, "--token-command", command, "--port",
                      "9", "--admin-socket", (dir.path() / "host.sock").string()},
                     dir.path());
  REQUIRE(host.wait_for_output("status connected", 15s));
  std::this_thread::sleep_for(500ms);
  std::ifstream runs(dir.path() / "runs");
  const auto count = std::count(std::istreambuf_iterator<char>(runs), std::istreambuf_iterator<char>(), '\n');
  CHECK(count == 2);
  CHECK(host.err().find("refreshingTunnelAccessToken") != std::string::npos);
  CHECK(host_status(dir)["attempts"] == 2);
  host.signal(SIGTERM);
  CHECK(host.wait_exit(10s) == std::optional<int>(0));
}

TEST_CASE("a token without the host scope ends the host with a typed error and no retry loop") {
  temp_dir dir;
  const auto relay_port = free_port();
  const auto url = "http://127.0.0.1:" + std::to_string(relay_port);
  auto relay = start_relay(dir, relay_port);
  const auto t = create_tunnel(dir, url);
  child_process host(
      {binary, "host", "--relay", url, "--tunnel", t.id, "--token", t.connect_token, "--port", "9"},
      dir.path());
  CHECK(host.wait_exit(10s) == std::optional<int>(1));
  CHECK(host.err().find("forbidden (HTTP 403)") != std::string::npos);
  // One endpoint registration attempt, not a loop of them.
  const auto err = host.err();
  CHECK(std::count(err.begin(), err.end(), '\n') < 10);
}

TEST_CASE("connect to an unknown tunnel fails at once with 404") {
  temp_dir dir;
  const auto relay_port = free_port();
  const auto url = "http://127.0.0.1:" + std::to_string(relay_port);
  auto relay = start_relay(dir, relay_port);
  const auto token =
      sb::test::run_to_end({binary, "tunnel", "create", "--relay", url, "--management-token-file",
                            (dir.path() / "relay-data" / "management-token").string(), "--json"},
                           dir.path());
  REQUIRE(token.code == 0);
  auto mgmt = std::string();
  std::ifstream(dir.path() / "relay-data" / "management-token") >> mgmt;
  auto r = run_to_end({binary, "connect", "--relay", url, "--tunnel", "no-such-tunnel", "--token", mgmt},
                      dir.path());
  CHECK(r.code == 1);
  CHECK(r.err.find("HTTP 404") != std::string::npos);
}

TEST_CASE("the three-command walk-through: relay, host with the management token, connect") {
  temp_dir dir;
  io_threads io;
  echo_service echo(io.ioc);
  const auto relay_port = free_port();
  const auto url = "http://127.0.0.1:" + std::to_string(relay_port);
  auto relay = start_relay(dir, relay_port);
  child_process host(
      {binary, "host", "--relay", url, "--token-file",
       (dir.path() / "relay-data" / "management-token").string(), "--port", std::to_string(echo.port())},
      dir.path());
  REQUIRE(host.wait_for_output("status connected", 10s));
  std::smatch m;
  const auto out = host.out();
  REQUIRE(std::regex_search(
      out, m, std::regex(R"(connect with: switchboard connect --relay (\S+) --tunnel (\S+) --token (\S+))")));
  const auto local = free_port();
  child_process connect({binary, "connect", "--relay", m[1], "--tunnel", m[2], "--token", m[3], "--map",
                         std::to_string(echo.port()) + ":" + std::to_string(local)},
                        dir.path());
  REQUIRE(connect.wait_for_output("forwarding remote port", 10s));
  CHECK(echo_through(local));
}

TEST_CASE("a token command that hangs or floods ends the host with a clear error within its bounds") {
  temp_dir dir;
  const auto relay_port = free_port();
  const auto url = "http://127.0.0.1:" + std::to_string(relay_port);
  auto relay = start_relay(dir, relay_port);
  const auto t = create_tunnel(dir, url);
  struct bad_refresh {
    std::string second_run, expected;
  };
  for (const auto& c :
       {bad_refresh{"sleep 60",
                    "token refresh failed: the token command did not finish within 500 ms (killed)"},
        bad_refresh{"yes",
                    "token refresh failed: the token command printed more than 65536 bytes (killed)"}}) {
    INFO(c.second_run);
    std::filesystem::remove(dir.path() / "used");
    // The first run prints a stale token (so the relay answers 401), the refresh misbehaves.
    const auto command = "if [ -f used ]; then " + c.second_run + "; else touch used; echo stale; fi";
    const auto started = std::chrono::steady_clock::now();
    child_process host({binary, "host", "--relay", url, "--tunnel", t.id, "--token-command", command,
                        "--port", "9", "--token-command-timeout-ms", "500"},
                       dir.path());
    CHECK(host.wait_exit(10s) == std::optional<int>(1));
    CHECK(std::chrono::steady_clock::now() - started < 8s);
    CHECK(host.err().find(c.expected) != std::string::npos);
  }
  // The first run is bounded the same way: a usage-level failure before anything connects.
  auto r = run_to_end({binary, "host", "--relay", url, "--tunnel", t.id, "--token-command", "sleep 60",
                       "--port", "9", "--token-command-timeout-ms", "300"},
                      dir.path(), {}, 10s);
  CHECK(r.code == 2);
  CHECK(r.err.find("the token command did not finish within 300 ms (killed)") != std::string::npos);
}

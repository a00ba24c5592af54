// The real `switchboard serve` binary: configuration sources, start-up errors, generated token, and the
// SIGTERM drain.
#include <boost/asio/local/stream_protocol.hpp>
#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <regex>
#include <thread>

#include "support/gateway_fixture.hpp"
#include "support/process.hpp"

using namespace sb::test;

namespace {

const std::string binary = SWITCHBOARD_BINARY;

std::uint16_t port_from_banner(const std::string& out) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(ws://127\.0\.0\.1:(\d+)(/\S*))"))) return 0;
  return static_cast<std::uint16_t>(std::stoi(m[1]));
}

std::string path_from_banner(const std::string& out) {
  std::smatch m;
  return std::regex_search(out, m, std::regex(R"(ws://127\.0\.0\.1:\d+(/\S*))")) ? std::string(m[1]) : "";
}

}  // namespace

TEST_CASE("serve starts with token auth, prints a generated token once, and SIGTERM drains to exit 0") {
  temp_dir dir;
  child_process server({binary, "serve", "--port", "0"}, dir.path());
  REQUIRE(server.wait_for_output("generated auth token", 10s));
  const auto out = server.out();
  const auto port = port_from_banner(out);
  REQUIRE(port != 0);
  std::smatch m;
  REQUIRE(std::regex_search(out, m, std::regex(R"(generated auth token \(shown once\): (\S+))")));
  const std::string token = m[1];

  ws_client client(port);
  REQUIRE(client.event("session_info"));
  CHECK(client.request("auth", {{"token", "wrong"}})["type"] == "error");
  CHECK(client.request("auth", {{"token", token}})["type"] == "auth_success");
  CHECK(std::filesystem::exists(dir.path() / "switchboard.sock"));

  server.signal(SIGTERM);
  CHECK(client.wait_closed(10s) == std::optional<std::uint16_t>(1001));
  CHECK(server.wait_exit(15s) == std::optional<int>(0));
  CHECK_FALSE(std::filesystem::exists(dir.path() / "switchboard.sock"));
}

TEST_CASE("a flag beats the environment, which beats the config file") {
  temp_dir dir;
  {
    std::ofstream cfg(dir.path() / "cfg.json");
    cfg << R"({"port": 0, "path": "/from-file", "authMode": "none", "adminSocket": "a.sock"})";
  }
  const auto cfg = (dir.path() / "cfg.json").string();
  {
    child_process s({binary, "serve", "--config", cfg}, dir.path());
    REQUIRE(s.wait_for_output("switchboard ws://", 10s));
    CHECK(path_from_banner(s.out()) == "/from-file");
    CHECK(s.out().find("auth none") != std::string::npos);
  }
  {
    child_process s({binary, "serve", "--config", cfg}, dir.path(), {{"SWITCHBOARD_PATH", "/from-env"}});
    REQUIRE(s.wait_for_output("switchboard ws://", 10s));
    CHECK(path_from_banner(s.out()) == "/from-env");
  }
  {
    child_process s({binary, "serve", "--config", cfg, "--path", "/from-flag"}, dir.path(),
                    {{"SWITCHBOARD_PATH", "/from-env"}});
    REQUIRE(s.wait_for_output("switchboard ws://", 10s));
    const auto path = path_from_banner(s.out());
    CHECK(path == "/from-flag");
    ws_client ok(port_from_banner(s.out()), client_options{"/from-flag"});
    CHECK(ok.event("session_info"));
  }
}

TEST_CASE("bad configuration fails at start with the key named") {
  temp_dir dir;
  auto fails_naming = [&](std::vector<std::string> args, std::map<std::string, std::string> env,
                          const std::string& key) {
    args.insert(args.begin(), {binary, "serve"});
    auto r = run_to_end(args, dir.path(), env);
    INFO(r.err);
    CHECK(r.code == 2);
    CHECK(r.err.find(key) != std::string::npos);
  };
  fails_naming({"--port", "70000"}, {}, "port");
  fails_naming({"--max-payload", "lots"}, {}, "maxPayload");
  fails_naming({"--auth-mode", "magic"}, {}, "authMode");
  fails_naming({"--auth-mode", "password"}, {}, "authPassword");
  fails_naming({"--trusted-proxies", "10.0.0.0/99"}, {}, "trustedProxies");
  fails_naming({"--cors-origins", "https://*bad*.com"}, {}, "corsOrigins");
  fails_naming({"--per-message-deflate", "maybe"}, {}, "perMessageDeflate");
  fails_naming({}, {{"SWITCHBOARD_HEARTBEAT_INTERVAL_MS", "-5"}}, "heartbeatIntervalMs");
  fails_naming({}, {{"SWITCHBOARD_NO_SUCH_THING", "1"}}, "SWITCHBOARD_NO_SUCH_THING");
  {
    std::ofstream bad(dir.path() / "bad.json");
    bad << R"({"port": 0, "colour": "blue"})";
  }
  fails_naming({"--config", (dir.path() / "bad.json").string()}, {}, "colour");
  fails_naming({"--config", (dir.path() / "missing.json").string()}, {}, "missing.json");
}

TEST_CASE("a port in use is a clear start-up error, not a crash") {
  temp_dir dir;
  gateway_fixture gw;
  auto r = run_to_end({binary, "serve", "--port", std::to_string(gw.port()), "--admin-socket", "x.sock"},
                      dir.path());
  CHECK(r.code == 1);
  CHECK(r.err.find("cannot listen") != std::string::npos);
}

TEST_CASE("serve --help documents every configuration key") {
  temp_dir dir;
  auto r = run_to_end({binary, "serve", "--help"}, dir.path());
  CHECK(r.code == 0);
  for (const auto& key : sb::protocol::gateway_config_keys()) {
    CHECK(r.out.find("--" + sb::protocol::flag_name(key.name)) != std::string::npos);
    CHECK(r.out.find(sb::protocol::env_name(key.name)) != std::string::npos);
  }
}

namespace {

/// Opens more connections than a server under `ulimit -n 48` has descriptors for; they are held until the
/// returned sockets go.
std::vector<boost::asio::ip::tcp::socket> exhaust_descriptors(boost::asio::io_context& ioc, std::uint16_t port) {
  std::vector<boost::asio::ip::tcp::socket> held;
  for (int i = 0; i < 80; ++i) {
    boost::asio::ip::tcp::socket s(ioc);
    boost::system::error_code ec;
    s.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
    if (!ec) held.push_back(std::move(s));
  }
  return held;
}

}  // namespace

TEST_CASE("running out of file descriptors pauses accepting and recovers, without a crash") {
  temp_dir dir;
  child_process server({"/bin/sh", "-c", "ulimit -n 48; exec " + binary + " serve --port 0 --auth-mode none"},
                       dir.path());
  REQUIRE(server.wait_for_output("switchboard ws://", 10s));
  const auto port = port_from_banner(server.out());
  {
    boost::asio::io_context ioc;
    auto held = exhaust_descriptors(ioc, port);
    std::this_thread::sleep_for(500ms);
    CHECK_FALSE(server.wait_exit(10ms).has_value());
  }
  // The held sockets are closed: descriptors come back and the server answers again.
  CHECK(eventually(
      [&] {
        try {
          return http_get(port, "/healthz").first == 200;
        } catch (...) {
          return false;
        }
      },
      10s));
  CHECK(server.err().find("accept failed") != std::string::npos);
}

TEST_CASE("the admin socket backs off instead of spinning when descriptors run out") {
  temp_dir dir;
  const auto sock = (dir.path() / "admin.sock").string();
  child_process server(
      {"/bin/sh", "-c",
       "ulimit -n 48; exec " + binary + " serve --port 0 --auth-mode none --admin-socket " + sock},
      dir.path());
  REQUIRE(server.wait_for_output("switchboard ws://", 10s));
  const auto port = port_from_banner(server.out());
  boost::asio::io_context ioc;
  auto held = exhaust_descriptors(ioc, port);
  // The WebSocket acceptor has hit EMFILE: from now on no descriptor is free for the admin acceptor either.
  REQUIRE(eventually([&] { return server.err().find("accept failed") != std::string::npos; }, 10s));
  {
    // One admin connection while no descriptor is free: it waits in the backlog, and each accept fails.
    boost::asio::local::stream_protocol::socket admin(ioc);
    admin.connect(boost::asio::local::stream_protocol::endpoint(sock));
    std::this_thread::sleep_for(1s);
  }
  std::this_thread::sleep_for(500ms);  // the client has left; a spinning acceptor would go on regardless
  const auto err = server.err();
  std::size_t failures = 0;
  for (auto at = err.find("admin socket accept failed"); at != std::string::npos;
       at = err.find("admin socket accept failed", at + 1))
    ++failures;
  CHECK(failures >= 1);
  CHECK(failures <= 30);  // about one per 100 ms of backoff over 1.5 s; a spin makes thousands
  held.clear();
  CHECK(eventually(
      [&] {
        try {
          return sb::transport::admin_call(sock, {{"cmd", "stats"}}, 1s)["ok"] == true;
        } catch (...) {
          return false;
        }
      },
      10s));
}

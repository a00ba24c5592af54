// A relay on https/wss with a certificate from a private CA, addressed by the IP literal 127.0.0.1: our host
// and client (V2 and V1) trust it through --ca-file for the management calls AND the relay WebSocket, and the
// official SDK does through NODE_EXTRA_CA_CERTS. The leaf names the relay only as an IP address SAN (its CN
// is not an address), so the host-name-only check the WebSocket used to make cannot pass by accident.
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <regex>

#include "support/pki.hpp"
#include "support/process.hpp"
#include "support/tunnel_fixture.hpp"
#include "tunnel/io/http_client.hpp"
#include "tunnel/io/ws_stream.hpp"

using namespace sb::test;

namespace {

const std::string binary = SWITCHBOARD_BINARY;

struct tls_relay {
  std::unique_ptr<child_process> child;
  std::string url;

  tls_relay(const temp_dir& dir, const std::filesystem::path& pki) {
    child = std::make_unique<child_process>(
        std::vector<std::string>{binary, "relay", "--port", "0", "--data-dir", (dir.path() / "data").string(),
                                 "--tls-cert", (pki / "leaf.pem").string(), "--tls-key",
                                 (pki / "leaf.key").string()},
        dir.path());
    REQUIRE(child->wait_for_output("management token", 10s));
    std::smatch m;
    const auto out = child->out();
    REQUIRE(std::regex_search(out, m, std::regex(R"(switchboard relay (https://127\.0\.0\.1:\d+))")));
    url = m[1];
  }
};

}  // namespace

TEST_CASE("host and connect work through a wss relay with a private CA, V2 and V1", "[relay][tls]") {
  const auto protocol = GENERATE(std::string("v2"), std::string("v1"));
  INFO("protocol " << protocol);
  temp_dir dir;
  make_test_pki(dir.path(), "IP:127.0.0.1");
  const auto ca = (dir.path() / "ca.pem").string();
  tls_relay relay(dir, dir.path());
  io_threads io;
  echo_service echo(io.ioc);

  auto created = run_to_end({binary, "tunnel", "create", "--relay", relay.url, "--management-token-file",
                             (dir.path() / "data" / "management-token").string(), "--ca-file", ca, "--json"},
                            dir.path());
  INFO(created.err);
  REQUIRE(created.code == 0);
  const auto t = nlohmann::json::parse(created.out);
  const std::string id = t["tunnelId"];

  child_process host(
      {binary, "host", "--relay", relay.url, "--tunnel", id, "--token", t["accessTokens"]["host"], "--port",
       std::to_string(echo.port()), "--protocol", protocol, "--ca-file", ca},
      dir.path());
  INFO("host stderr: " << host.err());
  REQUIRE(host.wait_for_output("status connected", 10s));
  const auto local = free_port();
  child_process connect(
      {binary, "connect", "--relay", relay.url, "--tunnel", id, "--token", t["accessTokens"]["connect"],
       "--map", std::to_string(echo.port()) + ":" + std::to_string(local), "--protocol", protocol},
      dir.path(), {{"SWITCHBOARD_CA_FILE", ca}});
  INFO("connect stderr: " << connect.err());
  REQUIRE(connect.wait_for_output("forwarding remote port", 10s));
  CHECK(eventually([&] { return concurrent_echo_check(local, 3, 64 * 1024) == 3; }, 10s));
  CHECK(relay.child->err().find("ready (" + protocol + ")") != std::string::npos);
  host.signal(SIGTERM);
  connect.signal(SIGTERM);
  CHECK(host.wait_exit(10s) == std::optional<int>(0));
  CHECK(connect.wait_exit(10s) == std::optional<int>(0));
}

TEST_CASE("a certificate that names another address is refused by IP, with the reason", "[relay][tls]") {
  temp_dir dir;
  // Chains to the trusted CA and names 127.0.0.2 (and a DNS name), but not the 127.0.0.1 we dial.
  make_test_pki(dir.path(), "IP:127.0.0.2,DNS:localhost");
  tls_relay relay(dir, dir.path());
  sb::tunnel::io::http_client_options o;
  o.ca_file = (dir.path() / "ca.pem").string();
  sb::tunnel::io::http_call c;
  c.url = relay.url + "/clusters";
  auto r = sb::tunnel::io::http_request(c, o);
  REQUIRE(std::holds_alternative<std::string>(r));
  CHECK(std::get<std::string>(r).find("IP address mismatch") != std::string::npos);

  // The relay WebSocket makes the same check.
  std::promise<sb::tunnel::io::websocket_connect_result> done;
  io_threads io;
  sb::tunnel::io::websocket_connect_options w;
  w.url = "wss" + relay.url.substr(5) + "/tunnels/none/client";
  w.ca_file = o.ca_file;
  sb::tunnel::io::connect_websocket(
      io.ioc, w, [&](sb::tunnel::io::websocket_connect_result res) { done.set_value(std::move(res)); });
  auto f = done.get_future();
  REQUIRE(ready_within(f, 10s));
  const auto res = f.get();
  CHECK_FALSE(res.stream);
  CHECK(res.error.find("IP address mismatch") != std::string::npos);
}

TEST_CASE("the official SDK host and client work through a wss relay with a private CA",
          "[relay][tls][sdk]") {
  // The interop script's --tls mode: it makes its own CA, runs the relay on https and gives Node the CA
  // through NODE_EXTRA_CA_CERTS and our CLIs through --ca-file.
  const auto script =
      (std::filesystem::path(SWITCHBOARD_SOURCE_DIR) / "tests" / "interop" / "devtunnels_sdk.test.js").string();
  REQUIRE(std::filesystem::exists(std::filesystem::path(script).parent_path() / "node_modules"));
  temp_dir dir;
  auto r = run_to_end({"/usr/bin/env", "node", script, binary, "--tls", "--versions", "1,2"}, dir.path(), {},
                      std::chrono::seconds(110));
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find(" 0 failed") != std::string::npos);
  CHECK(r.out.find("relay at https://127.0.0.1:") != std::string::npos);
}

// The real `switchboard relay` and `switchboard tunnel` binaries over sockets on 127.0.0.1: start-up on an
// OS-picked port, the generated management token, tunnel management end to end, errors and exit codes, a
// restart that keeps tunnels, tokens and the relay's SSH key, and TLS with a private CA.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "support/gateway_fixture.hpp"
#include "support/process.hpp"
#include "support/tunnel_fixture.hpp"
#include "tunnel/io/http_client.hpp"
#include "tunnel/io/management_http.hpp"

using namespace sb::test;
using json = nlohmann::json;

namespace {

const std::string binary = SWITCHBOARD_BINARY;

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

/// A `switchboard relay` child on --port 0 with its data directory; `url` is read from the banner.
struct relay_process {
  std::unique_ptr<child_process> child;
  std::string url;
  std::filesystem::path data_dir;

  relay_process(const std::filesystem::path& work_dir, const std::filesystem::path& data,
                std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {binary, "relay", "--port", "0", "--data-dir", data.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    child = std::make_unique<child_process>(args, work_dir);
    // The token line comes last: once it is there the relay serves.
    REQUIRE(child->wait_for_output("management token", 10s));
    std::smatch m;
    const auto out = child->out();
    INFO(out << child->err());
    REQUIRE(std::regex_search(out, m,
                              std::regex(R"(switchboard relay (https?://127\.0\.0\.1:\d+) data-dir (\S+))")));
    url = m[1];
    data_dir = std::string(m[2]);
  }

  std::optional<int> terminate() {
    child->signal(SIGTERM);
    return child->wait_exit(10s);
  }
};

run_result tunnel_cli(const temp_dir& dir, std::vector<std::string> args,
                      std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), {binary, "tunnel"});
  return run_to_end(args, dir.path(), std::move(env));
}

json parse_out(const run_result& r) {
  INFO(r.out << r.err);
  auto j = json::parse(r.out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

int get_status(const std::string& url, const std::string& authorization) {
  sb::tunnel::io::http_call call;
  call.url = url;
  call.headers["Authorization"] = authorization;
  auto r = sb::tunnel::io::http_request(call);
  if (auto* error = std::get_if<std::string>(&r)) FAIL("request failed: " << *error);
  return std::get<sb::tunnel::io::http_reply>(r).status;
}

}  // namespace

TEST_CASE(
    "the relay starts on an OS-picked port, writes a generated management token 0600 and stops on SIGTERM") {
  temp_dir dir;
  relay_process relay(dir.path(), dir.path() / "data");
  CHECK(relay.url.rfind("http://127.0.0.1:", 0) == 0);
  CHECK(std::filesystem::equivalent(relay.data_dir, dir.path() / "data"));
  const auto token_file = dir.path() / "data" / "management-token";
  REQUIRE(std::filesystem::exists(token_file));
  CHECK(relay.child->out().find(token_file.string()) != std::string::npos);
  struct stat st {};
  REQUIRE(::stat(token_file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const auto token = trimmed(slurp(token_file));
  CHECK(token.size() >= 32);
  // The token never appears on stdout: only where it is.
  CHECK(relay.child->out().find(token) == std::string::npos);
  struct stat key_st {};
  REQUIRE(::stat((dir.path() / "data" / "relay-ssh-key.pem").c_str(), &key_st) == 0);
  CHECK((key_st.st_mode & 0777) == 0600);

  CHECK(get_status(relay.url + "/tunnels", "Bearer " + token) == 200);
  CHECK(relay.terminate() == std::optional<int>(0));
}

TEST_CASE("tunnel create, show, list, token and delete work end to end against the relay") {
  temp_dir dir;
  relay_process relay(dir.path(), dir.path() / "data");
  const auto token_file = (dir.path() / "data" / "management-token").string();
  const std::vector<std::string> auth = {"--relay", relay.url, "--management-token-file", token_file};
  auto with_auth = [&](std::vector<std::string> args) {
    args.insert(args.end(), auth.begin(), auth.end());
    return args;
  };

  auto created = tunnel_cli(
      dir, with_auth({"create", "--tunnel", "cli-tunnel", "--port", "8080", "--port", "9000", "--json"}));
  REQUIRE(created.code == 0);
  auto tunnel = parse_out(created);
  CHECK(tunnel["tunnelId"] == "cli-tunnel");
  CHECK(tunnel["ports"].size() == 2);
  const std::string host_token = tunnel["accessTokens"]["host"];
  const std::string connect_token = tunnel["accessTokens"]["connect"];
  CHECK_FALSE(host_token.empty());
  CHECK_FALSE(connect_token.empty());

  // Human text: the id, the ports and both tokens; a generated id when --tunnel is absent.
  auto generated = tunnel_cli(dir, with_auth({"create"}));
  REQUIRE(generated.code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(generated.out, m, std::regex(R"(tunnel (sb-[a-z0-9]+) created)")));
  const std::string generated_id = m[1];
  CHECK(generated.out.find("host token: ey") != std::string::npos);
  CHECK(generated.out.find("connect token: ey") != std::string::npos);

  auto shown = tunnel_cli(dir, with_auth({"show", "--tunnel", "cli-tunnel"}));
  REQUIRE(shown.code == 0);
  CHECK(shown.out.find("tunnel cli-tunnel") != std::string::npos);
  CHECK(shown.out.find("ports: 8080, 9000") != std::string::npos);
  CHECK(shown.out.find("endpoints: none") != std::string::npos);
  auto shown_json = parse_out(tunnel_cli(dir, with_auth({"show", "--tunnel", "cli-tunnel", "--json"})));
  CHECK(shown_json["endpoints"] == json::array());

  auto listed = tunnel_cli(dir, with_auth({"list"}));
  REQUIRE(listed.code == 0);
  CHECK(listed.out.find("cli-tunnel") != std::string::npos);
  CHECK(listed.out.find(generated_id) != std::string::npos);
  CHECK(parse_out(tunnel_cli(dir, with_auth({"list", "--json"}))).size() == 2);

  auto tokens = tunnel_cli(dir, with_auth({"token", "--tunnel", "cli-tunnel", "--scopes", "connect"}));
  REQUIRE(tokens.code == 0);
  REQUIRE(std::regex_search(tokens.out, m, std::regex(R"(connect token: (\S+))")));
  CHECK(tokens.out.find("host token") == std::string::npos);
  const std::string fresh_connect = m[1];
  CHECK(get_status(relay.url + "/tunnels/cli-tunnel", "tunnel " + fresh_connect) == 200);
  // A connect token reads its tunnel but cannot list every tunnel.
  CHECK(get_status(relay.url + "/tunnels", "tunnel " + fresh_connect) == 403);

  // A tunnel token may ask for what it holds, and is told what it does not.
  auto by_token = tunnel_cli(dir, {"token", "--relay", relay.url, "--token", fresh_connect, "--tunnel",
                                   "cli-tunnel", "--scopes", "host,connect"});
  CHECK(by_token.code == 1);
  CHECK(by_token.out.find("connect token: ") != std::string::npos);
  CHECK(by_token.err.find("no token for host") != std::string::npos);

  auto deleted = tunnel_cli(dir, with_auth({"delete", "--tunnel", "cli-tunnel"}));
  REQUIRE(deleted.code == 0);
  CHECK(deleted.out.find("tunnel cli-tunnel deleted") != std::string::npos);
  auto missing = tunnel_cli(dir, with_auth({"show", "--tunnel", "cli-tunnel"}));
  CHECK(missing.code == 1);
  CHECK(missing.err.find("404") != std::string::npos);
  CHECK(missing.err.find("not found") != std::string::npos);
}

TEST_CASE("the tunnel command reads the relay and the management token from the environment") {
  temp_dir dir;
  relay_process relay(dir.path(), dir.path() / "data");
  const auto token = trimmed(slurp(dir.path() / "data" / "management-token"));
  const std::map<std::string, std::string> env = {{"SWITCHBOARD_RELAY", relay.url},
                                                  {"SWITCHBOARD_MANAGEMENT_TOKEN", token}};
  REQUIRE(tunnel_cli(dir, {"create", "--tunnel", "env-tunnel"}, env).code == 0);
  auto listed = tunnel_cli(dir, {"list"}, env);
  CHECK(listed.code == 0);
  CHECK(listed.out.find("env-tunnel") != std::string::npos);
  // A flag beats the environment.
  auto wrong = tunnel_cli(dir, {"list", "--management-token", "not-the-token"}, env);
  CHECK(wrong.code == 1);
}

TEST_CASE("a wrong management token is a relay error with exit 1 and the 401 in the message") {
  temp_dir dir;
  relay_process relay(dir.path(), dir.path() / "data");
  auto r = tunnel_cli(dir, {"list", "--relay", relay.url, "--management-token", "wrong-token"});
  CHECK(r.code == 1);
  CHECK(r.err.find("401") != std::string::npos);
  CHECK(r.err.find("management token is not valid") != std::string::npos);

  auto create =
      tunnel_cli(dir, {"create", "--relay", relay.url, "--management-token", "wrong-token", "--json"});
  CHECK(create.code == 1);
  CHECK(create.out.empty());
}

TEST_CASE("an unreachable relay is exit 1 with the network error") {
  temp_dir dir;
  // A port that was just free: nothing listens there.
  std::uint16_t port = 0;
  {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  auto r = tunnel_cli(
      dir, {"list", "--relay", "http://127.0.0.1:" + std::to_string(port), "--management-token", "x"});
  CHECK(r.code == 1);
  CHECK(r.err.find("cannot reach the relay") != std::string::npos);
}

TEST_CASE("usage errors exit 2 and name the flag") {
  temp_dir dir;
  auto fails_naming = [&](std::vector<std::string> args, const std::string& text,
                          std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), binary);
    auto r = run_to_end(args, dir.path(), env);
    INFO(r.out << r.err);
    CHECK(r.code == 2);
    CHECK(r.err.find(text) != std::string::npos);
  };
  const auto data = (dir.path() / "data").string();
  fails_naming({"relay", "--port", "70000", "--data-dir", data}, "--port");
  fails_naming({"relay", "--port", "http", "--data-dir", data}, "--port");
  fails_naming({"relay", "--data-dir", data}, "SWITCHBOARD_PORT", {{"SWITCHBOARD_PORT", "-1"}});
  fails_naming({"relay", "--port", "0", "--bogus", "--data-dir", data}, "--bogus");
  fails_naming({"relay", "--port", "0", "--tls-cert", "c.pem", "--data-dir", data}, "--tls-key");
  fails_naming({"relay", "--port", "0", "--bind", "nowhere", "--data-dir", data}, "--bind");
  fails_naming({"relay", "--port", "0", "--log-level", "loud", "--data-dir", data}, "--log-level");
  fails_naming({"relay", "--port", "0", "--public-url", "http://127.0.0.1:1/with/path", "--data-dir", data},
               "--public-url");
  fails_naming(
      {"relay", "--port", "0", "--management-token", "a", "--management-token-file", "f", "--data-dir", data},
      "--management-token-file");
  fails_naming({"relay", "--port", "0", "--management-token-file", "missing-file", "--data-dir", data},
               "missing-file");
  fails_naming({"tunnel", "list", "--management-token", "x"}, "--relay");
  fails_naming({"tunnel", "list", "--relay", "ftp://x", "--management-token", "x"}, "--relay");
  fails_naming({"tunnel", "list", "--relay", "http://127.0.0.1:1"}, "--management-token");
  fails_naming({"tunnel", "show", "--relay", "http://127.0.0.1:1", "--management-token", "x"}, "--tunnel");
  fails_naming({"tunnel", "frobnicate", "--relay", "http://127.0.0.1:1", "--management-token", "x"},
               "frobnicate");
  fails_naming(
      {"tunnel", "create", "--relay", "http://127.0.0.1:1", "--management-token", "x", "--port", "0"},
      "--port");
  fails_naming({"tunnel", "token", "--relay", "http://127.0.0.1:1", "--management-token", "x", "--tunnel",
                "t", "--scopes", "host,admin"},
               "admin");
  fails_naming({"tunnel", "list", "--relay", "http://127.0.0.1:1", "--management-token", "x", "--whatever"},
               "--whatever");
  // Nothing was created for the failed starts, except by those that got as far as the data directory.
  CHECK_FALSE(std::filesystem::exists(dir.path() / "data" / "management-token"));
}

TEST_CASE("a restarted relay keeps its tunnels, its management token, its SSH key and the old tokens") {
  temp_dir dir;
  const auto data = dir.path() / "data";
  std::string host_token, relay_key_before;
  std::string management_token;
  {
    relay_process relay(dir.path(), data);
    management_token = trimmed(slurp(data / "management-token"));
    auto created = tunnel_cli(dir, {"create", "--relay", relay.url, "--management-token", management_token,
                                    "--tunnel", "kept-tunnel", "--port", "7000", "--json"});
    REQUIRE(created.code == 0);
    host_token = parse_out(created)["accessTokens"]["host"];
    // Register an endpoint as a host would; the relay appends its own key for V1 clients.
    sb::tunnel::io::management_target host{relay.url, sb::tunnel::tunnel_authorization(host_token), {}};
    auto endpoint = sb::tunnel::io::put_endpoint(host, "kept-tunnel", {"h1-relay", "h1", {"aG9zdC1rZXk="}});
    REQUIRE(std::holds_alternative<sb::tunnel::relay_endpoint_info>(endpoint));
    const auto& keys = std::get<sb::tunnel::relay_endpoint_info>(endpoint).host_public_keys;
    REQUIRE(keys.size() == 2);
    relay_key_before = keys.back();
    REQUIRE(relay.terminate() == std::optional<int>(0));
  }
  relay_process relay(dir.path(), data);
  CHECK(relay.child->out().find("1 tunnel(s)") != std::string::npos);
  CHECK(trimmed(slurp(data / "management-token")) == management_token);
  CHECK(relay.child->out().find("generated") == std::string::npos);

  // The host token issued before the restart still verifies.
  CHECK(get_status(relay.url + "/tunnels/kept-tunnel?includePorts=true", "tunnel " + host_token) == 200);
  sb::tunnel::io::management_target host{relay.url, sb::tunnel::tunnel_authorization(host_token), {}};
  auto t = sb::tunnel::io::get_tunnel(host, "kept-tunnel");
  REQUIRE(std::holds_alternative<sb::tunnel::tunnel_info>(t));
  const auto& info = std::get<sb::tunnel::tunnel_info>(t);
  REQUIRE(info.ports.size() == 1);
  CHECK(info.ports[0].port_number == 7000);
  REQUIRE(info.endpoints.size() == 1);
  CHECK(info.endpoints[0].host_id == "h1");
  CHECK(info.endpoints[0].host_public_keys == std::vector<std::string>{"aG9zdC1rZXk=", relay_key_before});
  CHECK(info.endpoints[0].client_relay_uri == "ws" + relay.url.substr(4) + "/tunnels/kept-tunnel/client");

  // The management token from the file works on the new port too.
  auto shown = tunnel_cli(
      dir, {"show", "--relay", relay.url, "--management-token", management_token, "--tunnel", "kept-tunnel"});
  CHECK(shown.code == 0);
  CHECK(shown.out.find("endpoint h1-relay") != std::string::npos);
  CHECK(relay.terminate() == std::optional<int>(0));
}

TEST_CASE("a relay with a TLS certificate serves https, trusted through --ca-file and refused without it") {
  temp_dir dir;
  const auto cert = (dir.path() / "cert.pem").string();
  const auto key = (dir.path() / "key.pem").string();
  const auto cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
      "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  relay_process relay(dir.path(), dir.path() / "data", {"--tls-cert", cert, "--tls-key", key});
  REQUIRE(relay.url.rfind("https://127.0.0.1:", 0) == 0);
  const auto token_file = (dir.path() / "data" / "management-token").string();

  auto trusted = tunnel_cli(dir, {"create", "--relay", relay.url, "--management-token-file", token_file,
                                  "--tunnel", "tls-tunnel", "--ca-file", cert, "--json"});
  REQUIRE(trusted.code == 0);
  // Relay URIs follow the scheme: wss for an https relay.
  auto shown = parse_out(tunnel_cli(dir,
                                    {"show", "--relay", relay.url, "--management-token-file", token_file,
                                     "--tunnel", "tls-tunnel", "--json"},
                                    {{"SWITCHBOARD_CA_FILE", cert}}));
  CHECK(shown["tunnelId"] == "tls-tunnel");

  auto untrusted = tunnel_cli(dir, {"list", "--relay", relay.url, "--management-token-file", token_file});
  CHECK(untrusted.code == 1);
  CHECK(untrusted.err.find("certificate") != std::string::npos);
  CHECK(relay.terminate() == std::optional<int>(0));
}

TEST_CASE("SIGTERM drops a connected host as a retryable loss and the relay exits 0") {
  temp_dir dir;
  relay_process relay(dir.path(), dir.path() / "data");
  const auto token_file = (dir.path() / "data" / "management-token").string();
  auto created = tunnel_cli(dir, {"create", "--relay", relay.url, "--management-token-file", token_file,
                                  "--tunnel", "live-tunnel", "--json"});
  REQUIRE(created.code == 0);
  const std::string host_token = parse_out(created)["accessTokens"]["host"];

  // As a host does: register the endpoint with the host token, then connect to the URI it returns.
  auto host_key = std::make_shared<sb::tunnel::ssh::ecdsa_key>(sb::tunnel::ssh::ecdsa_key::generate());
  sb::tunnel::io::management_target target{relay.url, sb::tunnel::tunnel_authorization(host_token), {}};
  auto endpoint = sb::tunnel::io::put_endpoint(
      target, "live-tunnel", {"h-relay", "h", {sb::tunnel::ssh::base64_encode(host_key->public_blob())}});
  REQUIRE(std::holds_alternative<sb::tunnel::relay_endpoint_info>(endpoint));
  const auto host_uri = std::get<sb::tunnel::relay_endpoint_info>(endpoint).host_relay_uri;
  CHECK(host_uri == "ws" + relay.url.substr(4) + "/tunnels/live-tunnel/host");

  io_threads io;
  echo_service echo(io.ioc);
  std::promise<void> connected;
  std::promise<sb::tunnel::io::relay_outcome> ended;
  sb::tunnel::io::host_options options;
  options.relay_uri = host_uri;
  options.token = host_token;
  options.ports = {echo.port()};
  options.host_key = host_key;
  sb::tunnel::io::relay_peer_callbacks callbacks;
  callbacks.connected = [&](sb::tunnel::protocol_version) { connected.set_value(); };
  callbacks.ended = [&](const sb::tunnel::io::relay_outcome& o) { ended.set_value(o); };
  auto host = std::make_shared<sb::tunnel::io::host_peer>(io.ioc, options, callbacks);
  host->start();
  auto is_connected = connected.get_future();
  REQUIRE(ready_within(is_connected, 10s));

  auto is_ended = ended.get_future();
  CHECK(relay.terminate() == std::optional<int>(0));
  REQUIRE(ready_within(is_ended, 10s));
  const auto outcome = is_ended.get();
  CHECK(outcome.was_connected);
  INFO(outcome.message << "\nrelay log:\n" << relay.child->err());
  // relay_hub::close_all drops rather than says goodbye, so the host retries as after a crash.
  CHECK(outcome.network);
  host->stop();
}

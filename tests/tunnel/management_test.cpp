// The relay's management API as the Dev Tunnels SDK calls it: routes, contract shapes, the auth and scope
// rules, ProblemDetails errors, and the tunnel store surviving a restart.
#include "tunnel/management.hpp"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>

#include "tunnel/files.hpp"

using namespace sb::tunnel;
using json = nlohmann::json;

namespace {

constexpr const char* admin_token = "admin-secret-token";
constexpr std::int64_t start_time = 1'700'000'000;  // 2023-11-14T22:13:20Z

struct temp_dir {
  std::string path;
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sb-mgmt-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
};

// Routes spdlog into a string for the life of a test: keeps the output quiet and lets tests read the log.
struct captured_log {
  std::ostringstream text;
  std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
  captured_log() {
    auto logger =
        std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_st>(text));
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~captured_log() { spdlog::set_default_logger(previous); }
};

struct relay {
  captured_log log;
  temp_dir dir;
  std::int64_t now = start_time;
  std::unique_ptr<tunnel_store> store;
  std::unique_ptr<management_api> api;

  explicit relay(std::string public_url = "http://127.0.0.1:8090") : public_url_(std::move(public_url)) {
    restart();
  }

  // A new store and API on the same directory, as after a process restart.
  void restart() {
    api.reset();
    store.reset();
    store = std::make_unique<tunnel_store>(dir.path);
    api = std::make_unique<management_api>(*store, admin_token, public_url_, store->key(),
                                           [this] { return now; });
  }

  http_response call(const std::string& method, const std::string& target,
                     const std::string& authorization = "", const std::string& body = "",
                     std::map<std::string, std::string> headers = {}) {
    http_request request;
    request.method = method;
    const auto q = target.find('?');
    request.path = target.substr(0, q);
    if (q != std::string::npos) request.query = parse_query(target.substr(q + 1));
    request.headers = std::move(headers);
    if (!authorization.empty()) request.headers["authorization"] = authorization;
    request.body = body;
    auto response = api->handle(request);
    // Every response, success or error, names the service (the SDK blames a firewall otherwise).
    CHECK(response.headers[served_by_header] == served_by_value);
    return response;
  }

  // Creates a tunnel with the management token and returns its tokens for `scopes` (comma-separated).
  json create(const std::string& id, const json& body = json::object(), const std::string& scopes = "") {
    auto r = call("PUT", "/tunnels/" + id + (scopes.empty() ? "" : "?tokenScopes=" + scopes), admin(),
                  body.dump(), {{"if-not-match", "*"}});
    REQUIRE(r.status == 201);
    return json::parse(r.body);
  }

  std::string token(const std::string& id, const std::string& scope) {
    return api->issue_tunnel_token(id, {scope});
  }

  static std::string admin() { return std::string("Bearer ") + admin_token; }
  static std::string tunnel(const std::string& token) { return "tunnel " + token; }

 private:
  std::string public_url_;
};

json body_of(const http_response& r) {
  auto j = json::parse(r.body, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

// ProblemDetails with the status repeated in the body.
void check_problem(const http_response& r, int status) {
  INFO(r.body);
  CHECK(r.status == status);
  CHECK(r.headers.at("Content-Type") == "application/problem+json");
  const auto j = body_of(r);
  CHECK(j["status"] == status);
  CHECK(j["title"].is_string());
  CHECK(j["detail"].is_string());
  CHECK_FALSE(j["detail"].get<std::string>().empty());
}

json endpoint_body(const std::string& id, const std::string& host_id,
                   const std::string& key = "AAAAE2VjZHNh") {
  return {{"id", id}, {"hostId", host_id}, {"hostPublicKeys", {key}}, {"connectionMode", "TunnelRelay"}};
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Clusters

TEST_CASE("cluster recommendations name the local cluster, without credentials") {
  relay r;
  auto res = r.call("GET", "/clusters/recommendations");
  REQUIRE(res.status == 200);
  CHECK(res.headers["Content-Type"] == "application/json");
  CHECK(body_of(res)["recommendedClusterId"] == "local");
}

TEST_CASE("the cluster list holds the one local cluster at the public URL") {
  relay r;
  auto res = r.call("GET", "/clusters?api-version=2023-09-27-preview");
  REQUIRE(res.status == 200);
  const auto j = body_of(res);
  REQUIRE(j.is_array());
  REQUIRE(j.size() == 1);
  CHECK(j[0]["clusterId"] == "local");
  CHECK(j[0]["uri"] == "http://127.0.0.1:8090/");
}

// ---------------------------------------------------------------------------------------------------------
// Tunnels

TEST_CASE("creating a tunnel returns it in the contract shape") {
  relay r;
  auto res = r.call("PUT", "/tunnels/happy-lake-x7k2q9b?api-version=2023-09-27-preview", relay::admin(),
                    R"({"tunnelId":"happy-lake-x7k2q9b","description":"demo","labels":["a","b-c"],
                        "ports":[{"portNumber":8080,"protocol":"http"},{"portNumber":22}]})",
                    {{"if-not-match", "*"}});
  REQUIRE(res.status == 201);
  CHECK(res.headers["Content-Type"] == "application/json");
  const auto t = body_of(res);
  CHECK(t["tunnelId"] == "happy-lake-x7k2q9b");
  CHECK(t["clusterId"] == "local");
  CHECK(t["description"] == "demo");
  CHECK(t["labels"] == json::array({"a", "b-c"}));
  CHECK(t["endpoints"] == json::array());
  CHECK(t["created"] == "2023-11-14T22:13:20Z");
  REQUIRE(t["ports"].size() == 2);
  CHECK(t["ports"][0] == json{{"clusterId", "local"},
                              {"tunnelId", "happy-lake-x7k2q9b"},
                              {"portNumber", 22},
                              {"protocol", "auto"},
                              {"labels", json::array()}});
  CHECK(t["ports"][1]["portNumber"] == 8080);
  CHECK(t["ports"][1]["protocol"] == "http");
  CHECK_FALSE(t.contains("accessTokens"));
}

TEST_CASE("a second create-only PUT of the same tunnel id is a conflict") {
  relay r;
  r.create("tn1");
  check_problem(r.call("PUT", "/tunnels/tn1", relay::admin(), "{}", {{"if-not-match", "*"}}), 409);
  // The C# SDK spells the same precondition If-None-Match.
  check_problem(r.call("PUT", "/tunnels/tn1", relay::admin(), "{}", {{"if-none-match", "*"}}), 409);
}

TEST_CASE("a PUT without a precondition updates an existing tunnel and keeps what it does not mention") {
  relay r;
  r.create("tn1", {{"description", "old"}, {"ports", {{{"portNumber", 80}}}}});
  r.now += 100;
  auto res = r.call("PUT", "/tunnels/tn1", relay::admin(), R"({"description":"new","labels":["x"]})");
  REQUIRE(res.status == 200);
  const auto t = body_of(res);
  CHECK(t["description"] == "new");
  CHECK(t["labels"] == json::array({"x"}));
  CHECK(t["created"] == "2023-11-14T22:13:20Z");
  REQUIRE(t["ports"].size() == 1);
  CHECK(t["ports"][0]["portNumber"] == 80);
}

TEST_CASE("an update-only PUT of an unknown tunnel is not found") {
  relay r;
  check_problem(r.call("PUT", "/tunnels/tn1", relay::admin(), "{}", {{"if-match", "*"}}), 404);
}

TEST_CASE("a PUT without a precondition creates a missing tunnel") {
  relay r;
  CHECK(r.call("PUT", "/tunnels/tn1", relay::admin(), "{}").status == 201);
  CHECK(r.call("GET", "/tunnels/tn1", relay::admin()).status == 200);
}

TEST_CASE("creating a tunnel with a malformed body or id is a bad request, never a crash") {
  relay r;
  for (const std::string& body : {std::string("{"), std::string("not json"), std::string("[1,2]"),
                                  std::string(R"({"tunnelId":"other"})"), std::string(R"({"labels":"x"})"),
                                  std::string(R"({"labels":["bad label"]})"), std::string(R"({"ports":{}})"),
                                  std::string(R"({"ports":[{"portNumber":0}]})"),
                                  std::string(R"({"ports":[{"portNumber":80},{"portNumber":80}]})"),
                                  std::string(R"({"ports":[{"portNumber":80,"protocol":"gopher"}]})"),
                                  std::string(R"({"description":7})"), std::string(R"({"name":"Bad Name"})"),
                                  std::string(R"({"options":[]})")}) {
    INFO(body);
    check_problem(r.call("PUT", "/tunnels/tn1", relay::admin(), body), 400);
  }
  CHECK(r.store->size() == 0);
  for (const std::string& id :
       {std::string("UPPER"), std::string("a"), std::string("-leading"), std::string("trailing-"),
        std::string("has_underscore"), std::string(50, 'a')}) {
    INFO(id);
    check_problem(r.call("PUT", "/tunnels/" + id, relay::admin(), "{}"), 400);
  }
}

TEST_CASE("reading a tunnel includes ports only when asked") {
  relay r;
  r.create("tn1", {{"ports", {{{"portNumber", 3000}}}}});
  auto plain = body_of(r.call("GET", "/tunnels/tn1", relay::admin()));
  CHECK_FALSE(plain.contains("ports"));
  CHECK(plain["endpoints"] == json::array());
  auto with_ports =
      body_of(r.call("GET", "/tunnels/tn1?includePorts=true&api-version=2023-09-27-preview", relay::admin()));
  REQUIRE(with_ports["ports"].size() == 1);
  CHECK(with_ports["ports"][0]["portNumber"] == 3000);
  CHECK(body_of(r.call("GET", "/tunnels/tn1?includePorts", relay::admin())).contains("ports"));
}

TEST_CASE("reading an unknown tunnel is not found") {
  relay r;
  check_problem(r.call("GET", "/tunnels/nope", relay::admin()), 404);
}

TEST_CASE("tokenScopes returns fresh tokens that verify and expire after a day") {
  relay r;
  r.create("tn1");
  const auto t = body_of(r.call("GET", "/tunnels/tn1?tokenScopes=host,connect", relay::admin()));
  REQUIRE(t["accessTokens"].size() == 2);
  for (const char* scope : {"host", "connect"}) {
    INFO(scope);
    auto result = verify_token(t["accessTokens"][scope].get<std::string>(), r.store->key(), r.now);
    REQUIRE(std::holds_alternative<token_claims>(result));
    const auto& c = std::get<token_claims>(result);
    CHECK(c.tunnel_id == "tn1");
    CHECK(c.cluster_id == "local");
    CHECK(c.scopes == std::vector<std::string>{scope});
    CHECK(c.iat == start_time);
    CHECK(c.exp == start_time + 24 * 3600);
    CHECK(c.iss == "http://127.0.0.1:8090");
  }
}

TEST_CASE("tokenScopes may repeat instead of listing scopes with commas") {
  relay r;
  r.create("tn1");
  const auto t = body_of(r.call("GET", "/tunnels/tn1?tokenScopes=host&tokenScopes=connect", relay::admin()));
  CHECK(t["accessTokens"].contains("host"));
  CHECK(t["accessTokens"].contains("connect"));
}

TEST_CASE("a tokenScopes item of several scopes yields one token holding them all") {
  relay r;
  r.create("tn1");
  const auto t = body_of(r.call("GET", "/tunnels/tn1?tokenScopes=host%20connect", relay::admin()));
  REQUIRE(t["accessTokens"].contains("host connect"));
  auto c =
      std::get<token_claims>(parse_token_unverified(t["accessTokens"]["host connect"].get<std::string>()));
  CHECK(c.scopes == std::vector<std::string>{"host", "connect"});
}

TEST_CASE("tokenScopes returns only the scopes the caller holds") {
  relay r;
  r.create("tn1");
  const auto connect = r.token("tn1", "connect");
  auto t = body_of(r.call("GET", "/tunnels/tn1?tokenScopes=host,connect,manage", relay::tunnel(connect)));
  REQUIRE(t["accessTokens"].size() == 1);
  CHECK(t["accessTokens"].contains("connect"));

  const auto manage = r.token("tn1", "manage");
  t = body_of(r.call("GET", "/tunnels/tn1?tokenScopes=host,connect,manage:ports", relay::tunnel(manage)));
  CHECK(t["accessTokens"].size() == 3);
}

TEST_CASE("an unknown token scope is a bad request") {
  relay r;
  r.create("tn1");
  check_problem(r.call("GET", "/tunnels/tn1?tokenScopes=host,superuser", relay::admin()), 400);
}

TEST_CASE("create can return tokens for the new tunnel") {
  relay r;
  const auto t = r.create("tn1", json::object(), "host,connect");
  CHECK(t["accessTokens"].contains("host"));
  CHECK(t["accessTokens"].contains("connect"));
}

TEST_CASE("listing tunnels uses the regional shape with the local cluster") {
  relay r;
  r.create("tn1", {{"labels", {"web"}}});
  r.create("tn2", {{"labels", {"db"}}});
  auto j = body_of(r.call("GET", "/tunnels?global=true&api-version=2023-09-27-preview", relay::admin()));
  REQUIRE(j["value"].size() == 1);
  CHECK(j["value"][0]["clusterId"] == "local");
  REQUIRE(j["value"][0]["value"].size() == 2);
  CHECK(j["value"][0]["value"][0]["tunnelId"] == "tn1");
  CHECK(j["value"][0]["value"][1]["tunnelId"] == "tn2");

  j = body_of(r.call("GET", "/tunnels?labels=db", relay::admin()));
  REQUIRE(j["value"][0]["value"].size() == 1);
  CHECK(j["value"][0]["value"][0]["tunnelId"] == "tn2");
}

TEST_CASE("listing tunnels needs the management token") {
  relay r;
  r.create("tn1");
  check_problem(r.call("GET", "/tunnels"), 401);
  check_problem(r.call("GET", "/tunnels", relay::tunnel(r.token("tn1", "manage"))), 403);
}

TEST_CASE("deleting a tunnel removes it") {
  relay r;
  r.create("tn1");
  auto res = r.call("DELETE", "/tunnels/tn1", relay::admin());
  CHECK(res.status == 200);
  CHECK(res.body == "true");
  check_problem(r.call("GET", "/tunnels/tn1", relay::admin()), 404);
  check_problem(r.call("DELETE", "/tunnels/tn1", relay::admin()), 404);
}

// ---------------------------------------------------------------------------------------------------------
// Ports

TEST_CASE("ports are added, read, listed, updated and removed") {
  relay r;
  r.create("tn1");
  auto res = r.call("PUT", "/tunnels/tn1/ports/8080", relay::admin(),
                    R"({"portNumber":8080,"protocol":"https"})", {{"if-not-match", "*"}});
  REQUIRE(res.status == 201);
  CHECK(body_of(res) == json{{"clusterId", "local"},
                             {"tunnelId", "tn1"},
                             {"portNumber", 8080},
                             {"protocol", "https"},
                             {"labels", json::array()}});
  REQUIRE(r.call("PUT", "/tunnels/tn1/ports/22", relay::admin(), "{}").status == 201);

  res = r.call("GET", "/tunnels/tn1/ports", relay::admin());
  REQUIRE(res.status == 200);
  auto list = body_of(res)["value"];
  REQUIRE(list.size() == 2);
  CHECK(list[0]["portNumber"] == 22);
  CHECK(list[1]["portNumber"] == 8080);

  CHECK(body_of(r.call("GET", "/tunnels/tn1/ports/8080", relay::admin()))["protocol"] == "https");
  res = r.call("PUT", "/tunnels/tn1/ports/8080", relay::admin(), R"({"protocol":"http","description":"web"})",
               {{"if-match", "*"}});
  REQUIRE(res.status == 200);
  CHECK(body_of(res)["description"] == "web");
  CHECK(body_of(r.call("GET", "/tunnels/tn1/ports/8080", relay::admin()))["protocol"] == "http");

  res = r.call("DELETE", "/tunnels/tn1/ports/8080", relay::admin());
  CHECK(res.status == 200);
  check_problem(r.call("GET", "/tunnels/tn1/ports/8080", relay::admin()), 404);
  check_problem(r.call("DELETE", "/tunnels/tn1/ports/8080", relay::admin()), 404);
  CHECK(body_of(r.call("GET", "/tunnels/tn1/ports", relay::admin()))["value"].size() == 1);
}

TEST_CASE("port preconditions and bad port requests are refused") {
  relay r;
  r.create("tn1", {{"ports", {{{"portNumber", 80}}}}});
  check_problem(r.call("PUT", "/tunnels/tn1/ports/80", relay::admin(), "{}", {{"if-not-match", "*"}}), 409);
  check_problem(r.call("PUT", "/tunnels/tn1/ports/81", relay::admin(), "{}", {{"if-match", "*"}}), 404);
  check_problem(r.call("PUT", "/tunnels/tn1/ports/0", relay::admin(), "{}"), 400);
  check_problem(r.call("PUT", "/tunnels/tn1/ports/65536", relay::admin(), "{}"), 400);
  check_problem(r.call("PUT", "/tunnels/tn1/ports/http", relay::admin(), "{}"), 400);
  check_problem(r.call("PUT", "/tunnels/tn1/ports/81", relay::admin(), R"({"portNumber":82})"), 400);
  check_problem(r.call("PUT", "/tunnels/tn1/ports/81", relay::admin(), "{oops"), 400);
  check_problem(r.call("PUT", "/tunnels/tn1/ports/81", relay::admin(), R"({"isDefault":"yes"})"), 400);
  check_problem(r.call("GET", "/tunnels/tn1/ports/http", relay::admin()), 404);
  check_problem(r.call("PUT", "/tunnels/tn2/ports/81", relay::admin(), "{}"), 404);
  check_problem(r.call("GET", "/tunnels/tn2/ports", relay::admin()), 404);
}

// ---------------------------------------------------------------------------------------------------------
// Endpoints

TEST_CASE("a host registers its relay endpoint and gets the relay URIs") {
  relay r;
  r.create("tn1");
  const auto host = r.token("tn1", "host");
  auto res = r.call(
      "PUT", "/tunnels/tn1/endpoints/ep1-relay?connectionMode=TunnelRelay&api-version=2023-09-27-preview",
      relay::tunnel(host), endpoint_body("ep1-relay", "host-a").dump());
  REQUIRE(res.status == 200);
  const auto e = body_of(res);
  CHECK(e["id"] == "ep1-relay");
  CHECK(e["hostId"] == "host-a");
  CHECK(e["connectionMode"] == "TunnelRelay");
  CHECK(e["hostPublicKeys"] == json::array({"AAAAE2VjZHNh"}));
  CHECK(e["hostRelayUri"] == "ws://127.0.0.1:8090/tunnels/tn1/host");
  CHECK(e["clientRelayUri"] == "ws://127.0.0.1:8090/tunnels/tn1/client");

  const auto t = body_of(r.call("GET", "/tunnels/tn1", relay::tunnel(r.token("tn1", "connect"))));
  REQUIRE(t["endpoints"].size() == 1);
  CHECK(t["endpoints"][0] == e);
}

TEST_CASE("relay URIs use wss behind an https public URL") {
  relay r("https://cp.tunnels.example.com/");
  r.create("tn1");
  const auto e = body_of(r.call("PUT", "/tunnels/tn1/endpoints/ep1?connectionMode=TunnelRelay",
                                relay::admin(), endpoint_body("ep1", "h").dump()));
  CHECK(e["hostRelayUri"] == "wss://cp.tunnels.example.com/tunnels/tn1/host");
  CHECK(e["clientRelayUri"] == "wss://cp.tunnels.example.com/tunnels/tn1/client");
}

TEST_CASE("an endpoint with a new hostId replaces the previous host's endpoint") {
  relay r;
  r.create("tn1");
  REQUIRE(r.call("PUT", "/tunnels/tn1/endpoints/ep1", relay::admin(),
                 endpoint_body("ep1", "host-a", "S0VZMQ==").dump())
              .status == 200);
  REQUIRE(r.call("PUT", "/tunnels/tn1/endpoints/ep2", relay::admin(),
                 endpoint_body("ep2", "host-b", "S0VZMg==").dump())
              .status == 200);
  auto t = body_of(r.call("GET", "/tunnels/tn1", relay::admin()));
  REQUIRE(t["endpoints"].size() == 1);
  CHECK(t["endpoints"][0]["id"] == "ep2");
  CHECK(t["endpoints"][0]["hostId"] == "host-b");
  REQUIRE(r.api->current_endpoint("tn1"));
  CHECK(r.api->current_endpoint("tn1")->host_public_keys == std::vector<std::string>{"S0VZMg=="});
}

TEST_CASE("re-registering the same endpoint id updates it in place") {
  relay r;
  r.create("tn1");
  r.call("PUT", "/tunnels/tn1/endpoints/ep1", relay::admin(),
         endpoint_body("ep1", "host-a", "S0VZMQ==").dump());
  r.call("PUT", "/tunnels/tn1/endpoints/ep1", relay::admin(),
         endpoint_body("ep1", "host-a", "S0VZMg==").dump());
  // A restarted host instance registers a new endpoint id under the same hostId: still exactly one.
  r.call("PUT", "/tunnels/tn1/endpoints/ep9", relay::admin(),
         endpoint_body("ep9", "host-a", "S0VZMw==").dump());
  auto t = body_of(r.call("GET", "/tunnels/tn1", relay::admin()));
  REQUIRE(t["endpoints"].size() == 1);
  CHECK(t["endpoints"][0]["id"] == "ep9");
  CHECK(t["endpoints"][0]["hostPublicKeys"] == json::array({"S0VZMw=="}));
}

TEST_CASE("a host deletes its endpoint, and deleting it again is not found") {
  relay r;
  r.create("tn1");
  const auto host = relay::tunnel(r.token("tn1", "host"));
  r.call("PUT", "/tunnels/tn1/endpoints/ep1", host, endpoint_body("ep1", "h").dump());
  auto res = r.call("DELETE", "/tunnels/tn1/endpoints/ep1", host);
  CHECK(res.status == 200);
  CHECK(body_of(r.call("GET", "/tunnels/tn1", host))["endpoints"] == json::array());
  check_problem(r.call("DELETE", "/tunnels/tn1/endpoints/ep1", host), 404);
  CHECK_FALSE(r.api->current_endpoint("tn1"));
}

TEST_CASE("malformed endpoint registrations are bad requests") {
  relay r;
  r.create("tn1");
  const auto host = relay::tunnel(r.token("tn1", "host"));
  check_problem(r.call("PUT", "/tunnels/tn1/endpoints/ep1", host, "{\"hostId\":"), 400);
  check_problem(r.call("PUT", "/tunnels/tn1/endpoints/ep1", host, R"({"id":"ep1"})"), 400);
  check_problem(r.call("PUT", "/tunnels/tn1/endpoints/ep1", host, endpoint_body("other", "h").dump()), 400);
  check_problem(r.call("PUT", "/tunnels/tn1/endpoints/ep1", host, R"({"hostId":"h","hostPublicKeys":"k"})"),
                400);
  check_problem(
      r.call("PUT", "/tunnels/tn1/endpoints/ep1?connectionMode=LocalNetwork", host, R"({"hostId":"h"})"),
      400);
  check_problem(
      r.call("PUT", "/tunnels/tn1/endpoints/ep1", host, R"({"hostId":"h","connectionMode":"LocalNetwork"})"),
      400);
  check_problem(r.call("PUT", "/tunnels/tn1/endpoints/bad%20id", host, R"({"hostId":"h"})"), 400);
  check_problem(r.call("PUT", "/tunnels/tn2/endpoints/ep1", relay::admin(), R"({"hostId":"h"})"), 404);
  CHECK(body_of(r.call("GET", "/tunnels/tn1", host))["endpoints"] == json::array());
}

TEST_CASE("the relay's own host keys are appended to endpoints in responses but never stored") {
  relay r;
  r.create("tn1");
  r.api->set_relay_host_public_keys({"UkVMQVk="});
  const auto e = body_of(r.call("PUT", "/tunnels/tn1/endpoints/ep1", relay::admin(),
                                endpoint_body("ep1", "h", "SE9TVA==").dump()));
  CHECK(e["hostPublicKeys"] == json::array({"SE9TVA==", "UkVMQVk="}));
  CHECK(r.api->current_endpoint("tn1")->host_public_keys == std::vector<std::string>{"SE9TVA=="});
  r.restart();
  CHECK(body_of(r.call("GET", "/tunnels/tn1", relay::admin()))["endpoints"][0]["hostPublicKeys"] ==
        json::array({"SE9TVA=="}));
}

// ---------------------------------------------------------------------------------------------------------
// Events

TEST_CASE("hosts and clients post events, which are accepted and logged") {
  relay r;
  r.create("tn1");
  const std::string events =
      R"([{"name":"host_client_connect","severity":"info","details":"line1\nline2","properties":{"a":"b"}}])";
  std::vector<std::string> tokens;
  for (const char* scope : {"connect", "host"}) {
    tokens.push_back(r.token("tn1", scope));
    auto res = r.call("POST", "/tunnels/tn1/events?api-version=2023-09-27-preview",
                      relay::tunnel(tokens.back()), events);
    CHECK(res.status == 200);
    CHECK(res.body == "true");
  }
  const auto log = r.log.text.str();
  CHECK(log.find("tunnel tn1 event host_client_connect [info] line1 line2") != std::string::npos);
  // Secrets never reach the log.
  for (const auto& token : tokens) CHECK(log.find(token) == std::string::npos);
  CHECK(r.call("POST", "/tunnels/tn1/events", relay::admin(), R"({"name":"single_event"})").status == 200);
  check_problem(r.call("POST", "/tunnels/tn1/events", relay::admin(), "[{"), 400);
  check_problem(r.call("POST", "/tunnels/tn1/events", relay::admin(), "[1]"), 400);
  check_problem(r.call("POST", "/tunnels/tn9/events", relay::admin(), "[]"), 404);
}

// ---------------------------------------------------------------------------------------------------------
// Authentication and scopes

TEST_CASE("requests without valid credentials are unauthorized") {
  relay r;
  r.create("tn1");
  const auto good = r.token("tn1", "manage");
  for (const std::string& auth :
       {std::string(), std::string("Bearer wrong"), std::string("Bearer"), std::string("Basic abc"),
        std::string("tunnel"), std::string("tunnel not.a.jwt"), std::string("tunnel ") + admin_token,
        "tunnel " + good.substr(0, good.size() - 2), std::string("Bearer ") + good}) {
    INFO(auth);
    auto res = r.call("GET", "/tunnels/tn1", auth);
    check_problem(res, 401);
    CHECK(res.headers.count("WWW-Authenticate") == 1);
  }
}

TEST_CASE("schemes are case-insensitive") {
  relay r;
  r.create("tn1");
  CHECK(r.call("GET", "/tunnels/tn1", std::string("bearer ") + admin_token).status == 200);
  CHECK(r.call("GET", "/tunnels/tn1", "Tunnel " + r.token("tn1", "connect")).status == 200);
}

TEST_CASE("an expired tunnel token is unauthorized") {
  relay r;
  r.create("tn1");
  const auto connect = relay::tunnel(r.token("tn1", "connect"));
  CHECK(r.call("GET", "/tunnels/tn1", connect).status == 200);
  r.now += 24 * 3600;
  check_problem(r.call("GET", "/tunnels/tn1", connect), 401);
}

TEST_CASE("a token signed with another key is unauthorized") {
  relay r;
  r.create("tn1");
  token_claims c;
  c.tunnel_id = "tn1";
  c.scopes = {"manage"};
  c.exp = r.now + 60;
  check_problem(r.call("GET", "/tunnels/tn1", relay::tunnel(issue_token(c, generate_signing_key()))), 401);
}

TEST_CASE("a token for tunnel A cannot read or change tunnel B") {
  relay r;
  r.create("tunnel-a");
  r.create("tunnel-b");
  const auto a = relay::tunnel(r.token("tunnel-a", "manage"));
  check_problem(r.call("GET", "/tunnels/tunnel-b", a), 403);
  check_problem(r.call("DELETE", "/tunnels/tunnel-b", a), 403);
  check_problem(r.call("GET", "/tunnels/tunnel-b/ports", a), 403);
  check_problem(r.call("PUT", "/tunnels/tunnel-b/endpoints/ep1", a, endpoint_body("ep1", "h").dump()), 403);
  // Whether tunnel C exists is none of A's business either.
  check_problem(r.call("GET", "/tunnels/tunnel-c", a), 403);
  CHECK(r.call("GET", "/tunnels/tunnel-a", a).status == 200);
}

TEST_CASE("a connect token cannot register endpoints but a host token can") {
  relay r;
  r.create("tn1");
  const auto body = endpoint_body("ep1", "h").dump();
  check_problem(r.call("PUT", "/tunnels/tn1/endpoints/ep1", relay::tunnel(r.token("tn1", "connect")), body),
                403);
  check_problem(
      r.call("PUT", "/tunnels/tn1/endpoints/ep1", relay::tunnel(r.token("tn1", "manage:ports")), body), 403);
  CHECK(r.call("PUT", "/tunnels/tn1/endpoints/ep1", relay::tunnel(r.token("tn1", "host")), body).status ==
        200);
  check_problem(r.call("DELETE", "/tunnels/tn1/endpoints/ep1", relay::tunnel(r.token("tn1", "connect"))),
                403);
  CHECK(r.call("PUT", "/tunnels/tn1/endpoints/ep2", relay::tunnel(r.token("tn1", "manage")),
               endpoint_body("ep2", "h").dump())
            .status == 200);
}

TEST_CASE("connect and host tokens cannot update or delete their tunnel") {
  relay r;
  r.create("tn1");
  for (const char* scope : {"connect", "host", "manage:ports"}) {
    INFO(scope);
    const auto auth = relay::tunnel(r.token("tn1", scope));
    CHECK(r.call("GET", "/tunnels/tn1", auth).status == 200);
    check_problem(r.call("PUT", "/tunnels/tn1", auth, R"({"description":"x"})"), 403);
    check_problem(r.call("DELETE", "/tunnels/tn1", auth), 403);
  }
  const auto manage = relay::tunnel(r.token("tn1", "manage"));
  CHECK(r.call("PUT", "/tunnels/tn1", manage, R"({"description":"x"})").status == 200);
  CHECK(r.call("DELETE", "/tunnels/tn1", manage).status == 200);
}

TEST_CASE("a tunnel token cannot create a tunnel") {
  relay r;
  check_problem(r.call("PUT", "/tunnels/tn1", relay::tunnel(r.token("tn1", "manage")), "{}"), 403);
  CHECK(r.store->size() == 0);
}

TEST_CASE("ports can be changed with manage:ports or host but not with connect") {
  relay r;
  r.create("tn1");
  check_problem(r.call("PUT", "/tunnels/tn1/ports/80", relay::tunnel(r.token("tn1", "connect")), "{}"), 403);
  CHECK(r.call("GET", "/tunnels/tn1/ports", relay::tunnel(r.token("tn1", "connect"))).status == 200);
  CHECK(r.call("PUT", "/tunnels/tn1/ports/80", relay::tunnel(r.token("tn1", "manage:ports")), "{}").status ==
        201);
  // Contracts: host "includes access to update tunnel endpoints and ports"; the SDK sends a host token here.
  CHECK(r.call("PUT", "/tunnels/tn1/ports/81", relay::tunnel(r.token("tn1", "host")), "{}").status == 201);
  check_problem(r.call("DELETE", "/tunnels/tn1/ports/80", relay::tunnel(r.token("tn1", "connect"))), 403);
  CHECK(r.call("DELETE", "/tunnels/tn1/ports/80", relay::tunnel(r.token("tn1", "manage:ports"))).status ==
        200);
}

TEST_CASE("a token without any scope can do nothing with its tunnel") {
  relay r;
  r.create("tn1");
  const auto none = relay::tunnel(r.api->issue_tunnel_token("tn1", {}));
  check_problem(r.call("GET", "/tunnels/tn1", none), 403);
  check_problem(r.call("POST", "/tunnels/tn1/events", none, "[]"), 403);
}

// ---------------------------------------------------------------------------------------------------------
// Relay-side authorization

TEST_CASE("the relay admits a host token to the host side of its own tunnel") {
  relay r;
  r.create("tn1");
  CHECK(r.api->authorize_relay("tn1", r.token("tn1", "host"), "host") == relay_auth::ok);
  CHECK(r.api->authorize_relay("tn1", r.token("tn1", "manage"), "host") == relay_auth::ok);
  CHECK(r.api->authorize_relay("tn1", r.token("tn1", "connect"), "connect") == relay_auth::ok);
  CHECK(r.api->authorize_relay("tn1", admin_token, "host") == relay_auth::ok);
}

TEST_CASE("the relay refuses wrong, expired, foreign and misplaced tokens with the status the SDK expects") {
  relay r;
  r.create("tn1");
  r.create("tn2");
  CHECK(r.api->authorize_relay("tn1", r.token("tn1", "connect"), "host") == relay_auth::forbidden);
  CHECK(r.api->authorize_relay("tn1", r.token("tn2", "host"), "host") == relay_auth::forbidden);
  CHECK(r.api->authorize_relay("tn1", "garbage", "host") == relay_auth::unauthorized);
  CHECK(r.api->authorize_relay("tn1", "", "host") == relay_auth::unauthorized);
  const auto host = r.token("tn1", "host");
  r.now += 24 * 3600;
  CHECK(r.api->authorize_relay("tn1", host, "host") == relay_auth::unauthorized);
  CHECK(r.api->authorize_relay("tn9", r.token("tn9", "host"), "host") == relay_auth::not_found);
  CHECK(r.api->authorize_relay("tn9", admin_token, "connect") == relay_auth::not_found);
}

// ---------------------------------------------------------------------------------------------------------
// Routing, limits and robustness

TEST_CASE("unknown routes are not found and wrong methods are not allowed") {
  relay r;
  r.create("tn1");
  for (const char* path : {"/", "/nothing", "/tunnels/tn1/whatever", "/tunnels/tn1/ports/80/extra/more",
                           "/tunnels//ports", "/tunnels/tn1/endpoints", "tunnels", "/tunnels/t%zz"}) {
    INFO(path);
    check_problem(r.call("GET", path, relay::admin()), 404);
  }
  auto res = r.call("POST", "/tunnels/tn1", relay::admin(), "{}");
  check_problem(res, 405);
  CHECK(res.headers["Allow"] == "GET, PUT, DELETE");
  check_problem(r.call("GET", "/tunnels/tn1/endpoints/ep1", relay::admin()), 405);
  check_problem(r.call("DELETE", "/clusters"), 405);
}

TEST_CASE("percent-encoded path segments and a trailing slash are understood") {
  relay r;
  r.create("tn1");
  CHECK(r.call("GET", "/tunnels/tn%31", relay::admin()).status == 200);
  CHECK(r.call("GET", "/tunnels/tn1/", relay::admin()).status == 200);
}

TEST_CASE("oversized bodies are refused before parsing") {
  relay r;
  check_problem(r.call("PUT", "/tunnels/tn1", relay::admin(), std::string(max_request_body + 1, ' ')), 413);
}

TEST_CASE("random bodies and paths never make the API throw") {
  relay r;
  r.create("tn1");
  std::mt19937 rng(1);
  const std::string alphabet = "{}[]\":,0123456789abcdefhostId portNumber\\u00e9\xff\xc3";
  const std::vector<std::string> targets = {
      "/tunnels/tn1",        "/tunnels/tn1/ports/80",         "/tunnels/tn1/endpoints/e",
      "/tunnels/tn1/events", "/tunnels/tn1?tokenScopes=\xff", "/tunnels/\xff\xfe"};
  for (int i = 0; i < 500; ++i) {
    std::string body(rng() % 60, ' ');
    for (auto& c : body) c = alphabet[rng() % alphabet.size()];
    const auto& target = targets[rng() % targets.size()];
    for (const char* method : {"PUT", "POST"}) {
      auto res = r.call(method, target, relay::admin(), body);
      CHECK(res.status < 500);
      CHECK_FALSE(json::parse(res.body, nullptr, false).is_discarded());
    }
  }
}

TEST_CASE("parse_query decodes values, reads + as a space and joins repeated names") {
  const auto q = parse_query("a=1&b=x%20y+z&a=2&flag&=skip&bad=%zz&tokenScopes=manage%3Aports");
  CHECK(q.at("a") == "1,2");
  CHECK(q.at("b") == "x y z");
  CHECK(q.at("flag").empty());
  CHECK(q.at("tokenScopes") == "manage:ports");
  CHECK(q.count("bad") == 0);
  CHECK(q.count("") == 0);
}

TEST_CASE("a public URL with a path or another scheme is refused at construction") {
  temp_dir dir;
  tunnel_store store(dir.path);
  CHECK_THROWS_AS(management_api(store, "t", "http://host/base", store.key()), std::invalid_argument);
  CHECK_THROWS_AS(management_api(store, "t", "ftp://host", store.key()), std::invalid_argument);
  CHECK_THROWS_AS(management_api(store, "t", "http://", store.key()), std::invalid_argument);
  CHECK_NOTHROW(management_api(store, "t", "http://localhost:8090/", store.key()));
}

TEST_CASE("an empty management token never authenticates") {
  temp_dir dir;
  tunnel_store store(dir.path);
  management_api api(store, "", "http://localhost:8090", store.key());
  http_request request{"GET", "/tunnels", {}, {{"authorization", "Bearer "}}, ""};
  CHECK(api.handle(request).status == 401);
  CHECK(api.authorize_relay("tn1", "", "host") == relay_auth::unauthorized);
}

// ---------------------------------------------------------------------------------------------------------
// Persistence

TEST_CASE("tunnels, ports, endpoints and the signing key survive a restart, so old tokens still work") {
  relay r;
  r.create("tn1", {{"description", "kept"}, {"ports", {{{"portNumber", 8080}, {"protocol", "http"}}}}});
  const auto connect = relay::tunnel(r.token("tn1", "connect"));
  const auto host = relay::tunnel(r.token("tn1", "host"));
  REQUIRE(r.call("PUT", "/tunnels/tn1/endpoints/ep1", host, endpoint_body("ep1", "host-a").dump()).status ==
          200);
  const auto key_before = r.store->key().bytes;

  r.restart();
  CHECK(r.store->key().bytes == key_before);
  auto res = r.call("GET", "/tunnels/tn1?includePorts=true", connect);
  REQUIRE(res.status == 200);
  const auto t = body_of(res);
  CHECK(t["description"] == "kept");
  CHECK(t["created"] == "2023-11-14T22:13:20Z");
  REQUIRE(t["ports"].size() == 1);
  CHECK(t["ports"][0]["protocol"] == "http");
  REQUIRE(t["endpoints"].size() == 1);
  CHECK(t["endpoints"][0]["hostId"] == "host-a");
  CHECK(t["endpoints"][0]["hostRelayUri"] == "ws://127.0.0.1:8090/tunnels/tn1/host");
  CHECK(r.api->authorize_relay("tn1", host.substr(7), "host") == relay_auth::ok);
}

TEST_CASE("a deleted tunnel stays deleted after a restart") {
  relay r;
  r.create("tn1");
  r.create("tn2");
  REQUIRE(r.call("DELETE", "/tunnels/tn1", relay::admin()).status == 200);
  r.restart();
  CHECK(r.store->size() == 1);
  CHECK_FALSE(r.store->find("tn1"));
  CHECK(r.store->find("tn2"));
}

TEST_CASE("the data directory holds only the store and the key, both private") {
  relay r;
  r.create("tn1");
  r.call("PUT", "/tunnels/tn1/ports/80", relay::admin(), "{}");
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(r.dir.path)) {
    names.insert(entry.path().filename().string());
    CHECK((std::filesystem::status(entry.path()).permissions() & std::filesystem::perms::others_read) ==
          std::filesystem::perms::none);
  }
  CHECK(names == std::set<std::string>{"tunnels.json", "signing-key"});
}

TEST_CASE("a named key file holds the signing key instead of the data directory") {
  temp_dir dir, keys;
  const std::string key_file = keys.path + "/relay.key";
  signing_key first;
  {
    tunnel_store store(dir.path, key_file);
    first = store.key();
  }
  CHECK(std::filesystem::exists(key_file));
  CHECK_FALSE(std::filesystem::exists(dir.path + "/signing-key"));
  tunnel_store again(dir.path, key_file);
  CHECK(again.key().bytes == first.bytes);
}

TEST_CASE("a missing data directory is created") {
  temp_dir dir;
  const std::string nested = dir.path + "/a/b/c";
  tunnel_store store(nested);
  CHECK(std::filesystem::is_directory(nested));
  CHECK(store.size() == 0);
}

TEST_CASE("a corrupt store file stops the start instead of being overwritten") {
  temp_dir dir;
  { tunnel_store store(dir.path); }
  for (const std::string& text :
       {std::string("{not json"), std::string("[]"), std::string(R"({"version":1})"),
        std::string(R"({"version":99,"tunnels":[]})"),
        std::string(R"({"version":1,"tunnels":[{"tunnelId":"BAD","created":0}]})")}) {
    INFO(text);
    std::ofstream(dir.path + "/tunnels.json") << text;
    CHECK_THROWS_AS(tunnel_store(dir.path), std::runtime_error);
  }
}

TEST_CASE("a store write that fails changes nothing and answers 503") {
  relay r;
  r.create("tn1");
  // Replace the store file by a directory: the rename over it fails, as on a full or read-only disk.
  std::filesystem::remove(r.dir.path + "/tunnels.json");
  std::filesystem::create_directory(r.dir.path + "/tunnels.json");
  auto res = r.call("PUT", "/tunnels/tn2", relay::admin(), "{}");
  check_problem(res, 503);
  CHECK_FALSE(r.store->find("tn2"));
  CHECK_FALSE(r.store->find_latest("tn2"));
  check_problem(r.call("DELETE", "/tunnels/tn1", relay::admin()), 503);
  CHECK(r.store->find("tn1"));
}

// ---------------------------------------------------------------------------------------------------------
// Hostile nesting: nlohmann parses iteratively but copies and dumps recursively, so a 200,000-deep body used
// to overflow the relay's stack after parsing (a connect token was enough, via /events).

namespace {

std::string nested_arrays(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

}  // namespace

TEST_CASE("a deeply nested body is refused with 400 on every route that reads one, and counted") {
  relay r;
  r.create("tn1");
  const auto deep = nested_arrays(200'000);
  const auto deep_object = R"({"description":"x","options":)" + deep + "}";
  const auto connect = relay::tunnel(r.token("tn1", "connect"));
  const auto host = relay::tunnel(r.token("tn1", "host"));
  auto refused = [](const http_response& res) {
    check_problem(res, 400);
    CHECK(body_of(res)["detail"].get<std::string>().find("nesting exceeds 64 levels") != std::string::npos);
  };
  refused(r.call("POST", "/tunnels/tn1/events", connect, deep));
  refused(r.call("PUT", "/tunnels/tn1", relay::admin(), deep_object));
  refused(r.call("PUT", "/tunnels/tn2", relay::admin(), deep));
  refused(r.call("PUT", "/tunnels/tn1/ports/80", host, deep));
  refused(r.call("PUT", "/tunnels/tn1/endpoints/ep1", host, deep));
  CHECK(r.api->counters().json_too_deep == 5);
  // Nothing was stored, and the API keeps answering.
  CHECK(r.call("GET", "/tunnels/tn1", connect).status == 200);
  CHECK_FALSE(r.store->find("tn2"));
}

TEST_CASE("a body exactly at the nesting limit is accepted, one level deeper is not") {
  relay r;
  r.create("tn1");
  const auto connect = relay::tunnel(r.token("tn1", "connect"));
  // The events array is level 1; each event object must be an object, so wrap the nesting in a field.
  auto events_of_depth = [](std::size_t depth) { return "[{\"details\":" + nested_arrays(depth - 2) + "}]"; };
  CHECK(r.call("POST", "/tunnels/tn1/events", connect, events_of_depth(64)).status == 200);
  check_problem(r.call("POST", "/tunnels/tn1/events", connect, events_of_depth(65)), 400);
  r.api->set_max_json_depth(4);
  CHECK(r.call("POST", "/tunnels/tn1/events", connect, events_of_depth(4)).status == 200);
  check_problem(r.call("POST", "/tunnels/tn1/events", connect, events_of_depth(5)), 400);
}

TEST_CASE("a store file nested too deeply stops the start with a clear error instead of a crash") {
  temp_dir dir;
  { tunnel_store store(dir.path); }
  std::ofstream(dir.path + "/tunnels.json")
      << R"({"version":1,"tunnels":[{"tunnelId":"tn1","created":0,"options":{"a":)" << nested_arrays(200'000)
      << "}}]}";
  try {
    tunnel_store store(dir.path);
    FAIL("the store loaded");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("nesting exceeds") != std::string::npos);
  }
}

TEST_CASE("options as deep as a body may carry survive a restart") {
  relay r;
  json nested = json::array();
  for (int i = 0; i < 59; ++i) nested = json::array({nested});
  const json options = {{"a", nested}};  // 61 levels; inside a port of the body, 64
  r.create("tn1", {{"options", options}, {"ports", {{{"portNumber", 80}, {"options", options}}}}});
  r.restart();
  REQUIRE(r.store->find("tn1"));
  CHECK(r.store->find("tn1")->options == options);
  REQUIRE(r.store->find("tn1")->ports.size() == 1);
  CHECK(r.store->find("tn1")->ports[0].options == options);
}

// ---------------------------------------------------------------------------------------------------------
// The store's writer thread: reads never wait for the disk, changes are coalesced, a failed write is never
// acknowledged and never touches what is stored.

namespace {

/// A store write function the test controls: it can hold a write until released, or fail it as a full
/// disk would; every call is counted.
struct controlled_disk {
  std::mutex mutex;
  std::condition_variable cv;
  bool hold = false, held = false, fail = false;
  int writes = 0;

  store_write_fn write_fn() {
    return [this](const std::string& path, std::string_view content) -> std::optional<std::string> {
      std::unique_lock lock(mutex);
      ++writes;
      held = hold;
      cv.notify_all();
      cv.wait(lock, [this] { return !hold; });
      held = false;
      if (fail) return "cannot write " + path + ": " + std::strerror(ENOSPC);
      lock.unlock();
      return write_private_file(path, content);
    };
  }
  void set_fail(bool on) {
    std::lock_guard lock(mutex);
    fail = on;
  }
  void set_hold(bool on) {
    std::lock_guard lock(mutex);
    hold = on;
    cv.notify_all();
  }
  bool wait_held() {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, std::chrono::seconds(5), [this] { return held; });
  }
  int count() {
    std::lock_guard lock(mutex);
    return writes;
  }
};

struct disk_relay {
  captured_log log;
  temp_dir dir;
  controlled_disk disk;
  std::unique_ptr<tunnel_store> store;
  std::unique_ptr<management_api> api;

  disk_relay() { restart(); }
  void restart() {
    api.reset();
    store.reset();
    store = std::make_unique<tunnel_store>(dir.path, "", disk.write_fn());
    api = std::make_unique<management_api>(*store, admin_token, "http://127.0.0.1:8090", store->key());
  }
  static http_request request(const std::string& method, const std::string& path,
                              const std::string& body = "") {
    http_request q;
    q.method = method;
    q.path = path;
    q.headers["authorization"] = relay::admin();
    q.body = body;
    return q;
  }
  /// Sends without waiting; the future holds the answer once the change settled.
  std::future<http_response> send(const std::string& method, const std::string& path,
                                  const std::string& body = "") {
    auto answer = std::make_shared<std::promise<http_response>>();
    auto f = answer->get_future();
    api->handle(request(method, path, body), [answer](http_response r) { answer->set_value(std::move(r)); });
    return f;
  }
};

bool settled(std::future<http_response>& f) {
  return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}
bool settles(std::future<http_response>& f) {
  return f.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
}

}  // namespace

TEST_CASE("reads and relay authorization do not wait for a slow store write, and queued changes coalesce") {
  disk_relay r;
  REQUIRE(r.api->handle(disk_relay::request("PUT", "/tunnels/tn1", "{}")).status == 201);
  REQUIRE(r.api->handle(disk_relay::request("PUT", "/tunnels/tn2", "{}")).status == 201);
  const int writes_before = r.disk.count();

  r.disk.set_hold(true);
  auto first = r.send("PUT", "/tunnels/tn1/ports/80", "{}");
  REQUIRE(r.disk.wait_held());  // the writer is inside a write that does not end until released

  // Another tenant's read and a relay authorization answer now, from the last durable state.
  auto read = std::async(std::launch::async,
                         [&] { return r.api->handle(disk_relay::request("GET", "/tunnels/tn2")); });
  REQUIRE(read.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(read.get().status == 200);
  auto authorized = std::async(std::launch::async, [&] {
    return r.api->authorize_relay("tn2", r.api->issue_tunnel_token("tn2", {"connect"}), "connect");
  });
  REQUIRE(authorized.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(authorized.get() == relay_auth::ok);
  // The change is not acknowledged, nor visible to readers, before it is durable.
  CHECK_FALSE(settled(first));
  CHECK(r.store->find("tn1")->ports.empty());

  // Changes made while the write is in flight are not blocked either, and all go into the next write.
  auto second = r.send("PUT", "/tunnels/tn1/ports/81", "{}");
  auto third = r.send("PUT", "/tunnels/tn2/ports/82", "{}");
  CHECK(r.store->find_latest("tn1")->ports.size() == 2);
  r.disk.set_hold(false);
  REQUIRE(settles(first));
  REQUIRE(settles(second));
  REQUIRE(settles(third));
  CHECK(first.get().status == 201);
  CHECK(second.get().status == 201);
  CHECK(third.get().status == 201);
  CHECK(r.disk.count() - writes_before == 2);
  CHECK(r.store->find("tn1")->ports.size() == 2);
  r.restart();
  CHECK(r.store->find("tn1")->ports.size() == 2);
  CHECK(r.store->find("tn2")->ports.size() == 1);
}

TEST_CASE("a change the disk cannot hold answers 507 naming the failure, and what was acknowledged stays") {
  disk_relay r;
  REQUIRE(r.api->handle(disk_relay::request("PUT", "/tunnels/tn1", "{}")).status == 201);
  const auto saved = std::filesystem::path(r.dir.path) / "tunnels.json";
  std::ifstream before_in(saved);
  const std::string before((std::istreambuf_iterator<char>(before_in)), std::istreambuf_iterator<char>());

  r.disk.set_fail(true);
  auto refused = r.api->handle(disk_relay::request("PUT", "/tunnels/tn2", "{}"));
  check_problem(refused, 507);
  const std::string detail = body_of(refused)["detail"];
  CHECK(detail.find("No space left on device") != std::string::npos);
  CHECK(detail.find(r.dir.path) == std::string::npos);  // the server's paths stay in its log
  CHECK(refused.headers.count("Retry-After") == 1);
  CHECK(r.api->counters().store_write_failures == 1);
  CHECK(r.store->write_failures() == 1);
  CHECK_FALSE(r.store->find("tn2"));
  CHECK_FALSE(r.store->find_latest("tn2"));

  // A change queued behind a failing write was built on it: it is refused too.
  r.disk.set_hold(true);
  auto failing = r.send("PUT", "/tunnels/tn3", "{}");
  REQUIRE(r.disk.wait_held());
  auto behind = r.send("DELETE", "/tunnels/tn3");
  r.disk.set_hold(false);
  REQUIRE(settles(failing));
  REQUIRE(settles(behind));
  CHECK(failing.get().status == 507);
  CHECK(behind.get().status == 507);
  CHECK(r.api->counters().store_write_failures == 3);

  std::ifstream after_in(saved);
  const std::string after((std::istreambuf_iterator<char>(after_in)), std::istreambuf_iterator<char>());
  CHECK(after == before);

  r.disk.set_fail(false);
  CHECK(r.api->handle(disk_relay::request("PUT", "/tunnels/tn4", "{}")).status == 201);
  r.restart();
  CHECK(r.store->find("tn1"));
  CHECK(r.store->find("tn4"));
  CHECK_FALSE(r.store->find("tn2"));
  CHECK_FALSE(r.store->find("tn3"));
}

TEST_CASE("the store finishes submitted writes before it is destroyed") {
  temp_dir dir;
  {
    tunnel_store store(dir.path);
    tunnel_record t;
    t.tunnel_id = "tn1";
    store.submit_put(t);  // not waited for
  }
  tunnel_store again(dir.path);
  CHECK(again.find("tn1"));
}

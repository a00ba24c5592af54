// The caller's side of the management API: the requests it builds (paths, queries, bodies, headers), the
// parsing of tunnel, list, port and endpoint responses, and errors from hostile or foreign bodies. The last
// cases feed the built requests through the relay's own management_api, so both sides agree on the contract.
#include "tunnel/management_client.hpp"

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <regex>

#include "tunnel/management.hpp"

using namespace sb::tunnel;
using json = nlohmann::json;

namespace {

constexpr const char* admin_token = "client-test-admin-token";

// By value: the variant is usually a temporary.
template <class T>
T ok(std::variant<T, std::string> v) {
  if (auto* error = std::get_if<std::string>(&v)) FAIL("unexpected error: " << *error);
  return std::get<T>(std::move(v));
}

template <class T>
std::string error_of(const std::variant<T, std::string>& v) {
  REQUIRE(std::holds_alternative<std::string>(v));
  return std::get<std::string>(v);
}

bool has_query(const management_request& r, const std::string& item) {
  const auto q = r.target.find('?');
  if (q == std::string::npos) return false;
  const auto query = "&" + r.target.substr(q + 1) + "&";
  return query.find("&" + item + "&") != std::string::npos;
}

std::string path_of(const management_request& r) { return r.target.substr(0, r.target.find('?')); }

/// The relay's management API in-process, over a temporary data directory, with its log silenced.
struct in_process_relay {
  std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
  std::string dir;
  std::unique_ptr<tunnel_store> store;
  std::unique_ptr<management_api> api;

  in_process_relay() {
    spdlog::set_default_logger(
        std::make_shared<spdlog::logger>("quiet", std::make_shared<spdlog::sinks::null_sink_st>()));
    std::string tmpl = (std::filesystem::temp_directory_path() / "sb-mgmt-client-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    dir = tmpl;
    store = std::make_unique<tunnel_store>(dir);
    api = std::make_unique<management_api>(*store, admin_token, "http://127.0.0.1:8090", store->key());
  }
  ~in_process_relay() {
    api.reset();
    store.reset();
    std::filesystem::remove_all(dir);
    spdlog::set_default_logger(previous);
  }

  http_response send(const management_request& r, const std::string& authorization) {
    http_request request;
    request.method = r.method;
    const auto q = r.target.find('?');
    request.path = r.target.substr(0, q);
    if (q != std::string::npos) request.query = parse_query(r.target.substr(q + 1));
    for (const auto& [name, value] : r.headers) {
      std::string lower = name;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      request.headers[lower] = value;
    }
    request.headers["authorization"] = authorization;
    request.body = r.body;
    return api->handle(request);
  }
};

}  // namespace

TEST_CASE("a get-tunnel request asks for its ports and one token per scope, with the SDK's api-version") {
  auto r = get_tunnel_request("my-tunnel", {"host", "connect"});
  CHECK(r.method == "GET");
  CHECK(path_of(r) == "/tunnels/my-tunnel");
  CHECK(has_query(r, "includePorts=true"));
  CHECK(has_query(r, "tokenScopes=host,connect"));
  CHECK(has_query(r, std::string("api-version=") + management_api_version));
  CHECK(r.body.empty());

  auto bare = get_tunnel_request("my-tunnel", {}, false);
  CHECK_FALSE(has_query(bare, "includePorts=true"));
  CHECK(bare.target.find("tokenScopes") == std::string::npos);
}

TEST_CASE("a create request is create-only, lists its ports and asks for tokens") {
  auto r = create_tunnel_request("new-tunnel", {8080, 9000}, {"host", "connect"});
  CHECK(r.method == "PUT");
  CHECK(path_of(r) == "/tunnels/new-tunnel");
  CHECK(r.headers.at("If-None-Match") == "*");
  CHECK(r.headers.at("Content-Type") == "application/json");
  CHECK(has_query(r, "tokenScopes=host,connect"));
  auto body = json::parse(r.body);
  CHECK(body["tunnelId"] == "new-tunnel");
  REQUIRE(body["ports"].size() == 2);
  CHECK(body["ports"][0]["portNumber"] == 8080);
  CHECK(body["ports"][1]["portNumber"] == 9000);
}

TEST_CASE("delete, list and port requests use the SDK's routes") {
  CHECK(delete_tunnel_request("t-1").method == "DELETE");
  CHECK(path_of(delete_tunnel_request("t-1")) == "/tunnels/t-1");
  CHECK(path_of(list_tunnels_request()) == "/tunnels");
  CHECK(has_query(list_tunnels_request(), "includePorts=true"));
  auto put = put_port_request("t-1", 5432);
  CHECK(put.method == "PUT");
  CHECK(path_of(put) == "/tunnels/t-1/ports/5432");
  CHECK(json::parse(put.body)["portNumber"] == 5432);
  CHECK(path_of(delete_port_request("t-1", 5432)) == "/tunnels/t-1/ports/5432");
  CHECK(delete_port_request("t-1", 5432).method == "DELETE");
}

TEST_CASE("an endpoint registration carries the host id, its keys and the TunnelRelay mode") {
  endpoint_registration e{"host-7-relay", "host-7", {"AAAAE2VjZHNh"}};
  auto r = put_endpoint_request("t-1", e);
  CHECK(r.method == "PUT");
  CHECK(path_of(r) == "/tunnels/t-1/endpoints/host-7-relay");
  CHECK(has_query(r, "connectionMode=TunnelRelay"));
  auto body = json::parse(r.body);
  CHECK(body["id"] == "host-7-relay");
  CHECK(body["hostId"] == "host-7");
  CHECK(body["hostPublicKeys"] == json::array({"AAAAE2VjZHNh"}));
  CHECK(body["connectionMode"] == "TunnelRelay");
  CHECK(path_of(delete_endpoint_request("t-1", "host-7-relay")) == "/tunnels/t-1/endpoints/host-7-relay");
}

TEST_CASE("path segments and query values are percent-encoded so an id cannot change the route") {
  CHECK(url_encode("a-b_c.d~9") == "a-b_c.d~9");
  CHECK(url_encode("a/b c?d&e") == "a%2Fb%20c%3Fd%26e");
  CHECK(path_of(delete_endpoint_request("t-1", "../x")) == "/tunnels/t-1/endpoints/..%2Fx");
  CHECK(has_query(get_tunnel_request("t", {"host connect"}), "tokenScopes=host%20connect"));
}

TEST_CASE("a tunnel response is read with its ports, endpoints, relay URIs and tokens") {
  const auto body = R"({
    "clusterId": "local", "tunnelId": "t-1", "labels": ["a"], "created": "2024-01-01T00:00:00Z",
    "ports": [{"portNumber": 8080, "protocol": "auto", "clusterId": "local", "tunnelId": "t-1", "labels": []},
              {"portNumber": 9000, "protocol": "http", "name": "web", "labels": []}],
    "endpoints": [{"id": "h-relay", "connectionMode": "TunnelRelay", "hostId": "h",
                   "hostPublicKeys": ["k1", "k2"], "hostRelayUri": "ws://127.0.0.1:8090/tunnels/t-1/host",
                   "clientRelayUri": "ws://127.0.0.1:8090/tunnels/t-1/client"}],
    "accessTokens": {"host": "jwt-h", "connect": "jwt-c"},
    "somethingNew": {"kept": true}
  })";
  const auto& t = ok(parse_tunnel(body));
  CHECK(t.tunnel_id == "t-1");
  CHECK(t.cluster_id == "local");
  CHECK(t.labels == std::vector<std::string>{"a"});
  CHECK(t.created == "2024-01-01T00:00:00Z");
  REQUIRE(t.ports.size() == 2);
  CHECK(t.ports[0].port_number == 8080);
  CHECK(t.ports[1].protocol == "http");
  CHECK(t.ports[1].name == "web");
  REQUIRE(t.endpoints.size() == 1);
  CHECK(t.endpoints[0].host_id == "h");
  CHECK(t.endpoints[0].host_public_keys == std::vector<std::string>{"k1", "k2"});
  CHECK(t.endpoints[0].client_relay_uri == "ws://127.0.0.1:8090/tunnels/t-1/client");
  CHECK(t.access_tokens.at("host") == "jwt-h");
  CHECK(t.access_tokens.at("connect") == "jwt-c");
  CHECK(t.json["somethingNew"]["kept"] == true);
}

TEST_CASE("a tunnel response that is not JSON or has no tunnelId is an error value, never an exception") {
  CHECK(error_of(parse_tunnel("<html>proxy error</html>")).find("not valid JSON") != std::string::npos);
  CHECK(error_of(parse_tunnel("")).find("not valid JSON") != std::string::npos);
  CHECK(error_of(parse_tunnel("[1,2]")).find("not a JSON object") != std::string::npos);
  CHECK(error_of(parse_tunnel(R"({"tunnelId": 7})")).find("tunnelId") != std::string::npos);
  CHECK(error_of(parse_tunnel(R"({"tunnelId": "t", "ports": [{"portNumber": 70000}]})")).find("portNumber") !=
        std::string::npos);
  CHECK(error_of(parse_tunnel(R"({"tunnelId": "t", "ports": [{"portNumber": -1}]})")).find("portNumber") !=
        std::string::npos);
  CHECK(error_of(parse_tunnel(R"({"tunnelId": "t", "endpoints": ["x"]})")).find("endpoint") !=
        std::string::npos);
}

TEST_CASE("fields of the wrong type read as absent") {
  const auto& t = ok(parse_tunnel(
      R"({"tunnelId": "t", "clusterId": 5, "labels": "x", "endpoints": {}, "accessTokens": {"host": 1, "connect": "c"}})"));
  CHECK(t.cluster_id.empty());
  CHECK(t.labels.empty());
  CHECK(t.endpoints.empty());
  CHECK(t.access_tokens.size() == 1);
  CHECK(t.access_tokens.at("connect") == "c");
}

TEST_CASE("the regional list shape, a flat value list and a bare array all parse") {
  const auto regional = R"({"value": [{"clusterId": "local", "value": [{"tunnelId": "a"}, {"tunnelId": "b"}]},
                                      {"clusterId": "other", "value": [{"tunnelId": "c"}]}]})";
  auto r = ok(parse_tunnel_list(regional));
  REQUIRE(r.size() == 3);
  CHECK(r[0].tunnel_id == "a");
  CHECK(r[2].tunnel_id == "c");
  CHECK(ok(parse_tunnel_list(R"({"value": [{"tunnelId": "a"}]})")).size() == 1);
  CHECK(ok(parse_tunnel_list(R"([{"tunnelId": "a"}, {"tunnelId": "b"}])")).size() == 2);
  CHECK(ok(parse_tunnel_list(R"({"value": []})")).empty());
  CHECK_FALSE(error_of(parse_tunnel_list(R"({"items": []})")).empty());
  CHECK_FALSE(error_of(parse_tunnel_list(R"({"value": [{"clusterId": "x", "value": 3}]})")).empty());
  CHECK_FALSE(error_of(parse_tunnel_list("null")).empty());
}

TEST_CASE("an endpoint response without relay URIs is an error the host can report") {
  const auto& e = ok(parse_endpoint(
      R"({"id": "e", "hostId": "h", "hostRelayUri": "ws://x/tunnels/t/host", "clientRelayUri": "ws://x/tunnels/t/client"})"));
  CHECK(e.host_relay_uri == "ws://x/tunnels/t/host");
  CHECK(error_of(parse_endpoint(R"({"id": "e", "hostId": "h"})")).find("hostRelayUri") != std::string::npos);
  CHECK(ok(parse_port(R"({"portNumber": 22, "protocol": "ssh"})")).protocol == "ssh");
  CHECK_FALSE(error_of(parse_port(R"({"portNumber": "22"})")).empty());
}

TEST_CASE("ProblemDetails become the error's title and detail, and other bodies are quoted, shortened") {
  CHECK_FALSE(response_error(200, "{}").has_value());
  CHECK_FALSE(response_error(204, "").has_value());

  auto problem = response_error(
      401, R"({"title": "Unauthorized", "detail": "the management token is not valid", "status": 401})");
  REQUIRE(problem);
  CHECK(problem->status == 401);
  CHECK(problem->title == "Unauthorized");
  CHECK(problem->detail == "the management token is not valid");
  CHECK(problem->message() == "401 Unauthorized: the management token is not valid");

  auto html = response_error(502, "<html>" + std::string(1000, 'x') + "</html>\n");
  REQUIRE(html);
  CHECK(html->title == "Bad Gateway");
  CHECK(html->detail.size() < 250);
  CHECK(html->detail.rfind("<html>", 0) == 0);

  auto empty = response_error(404, "");
  REQUIRE(empty);
  CHECK(empty->message() == "404 Not Found");

  management_error network;
  network.detail = "cannot connect to 127.0.0.1:9: Connection refused";
  CHECK(network.message() == "cannot connect to 127.0.0.1:9: Connection refused");
}

TEST_CASE("a generated tunnel id has the relay's shape and differs each time") {
  const std::regex shape("[a-z0-9][a-z0-9-]{1,47}[a-z0-9]");
  const auto a = generate_tunnel_id(), b = generate_tunnel_id();
  CHECK(std::regex_match(a, shape));
  CHECK(a.rfind("sb-", 0) == 0);
  CHECK(a.size() == 15);
  CHECK(a != b);
}

TEST_CASE("the relay's management API accepts every request built here and its answers parse") {
  in_process_relay relay;
  const auto admin = bearer_authorization(admin_token);
  const auto id = generate_tunnel_id();

  auto created = relay.send(create_tunnel_request(id, {8080}, {"host", "connect"}), admin);
  REQUIRE(created.status == 201);
  const auto& t = ok(parse_tunnel(created.body));
  CHECK(t.tunnel_id == id);
  REQUIRE(t.ports.size() == 1);
  CHECK(t.ports[0].port_number == 8080);
  REQUIRE(t.access_tokens.count("host") == 1);
  REQUIRE(t.access_tokens.count("connect") == 1);

  // Create-only: a second create is a conflict with a ProblemDetails body.
  auto again = relay.send(create_tunnel_request(id, {}, {}), admin);
  auto conflict = response_error(again.status, again.body);
  REQUIRE(conflict);
  CHECK(conflict->status == 409);
  CHECK(conflict->detail.find("already exists") != std::string::npos);

  // The host token registers an endpoint and adds a port; the relay URIs come back.
  const auto host = tunnel_authorization(t.access_tokens.at("host"));
  auto port = relay.send(put_port_request(id, 9000), host);
  REQUIRE(port.status / 100 == 2);
  CHECK(ok(parse_port(port.body)).port_number == 9000);
  auto endpoint = relay.send(put_endpoint_request(id, {"h1-relay", "h1", {"a2V5"}}), host);
  REQUIRE(endpoint.status == 200);
  const auto& e = ok(parse_endpoint(endpoint.body));
  CHECK(e.host_relay_uri == "ws://127.0.0.1:8090/tunnels/" + id + "/host");
  CHECK(e.client_relay_uri == "ws://127.0.0.1:8090/tunnels/" + id + "/client");

  // The connect token reads the tunnel with its endpoint; it gets no host token.
  const auto connect = tunnel_authorization(t.access_tokens.at("connect"));
  auto got = relay.send(get_tunnel_request(id, {"host", "connect"}), connect);
  REQUIRE(got.status == 200);
  const auto& seen = ok(parse_tunnel(got.body));
  CHECK(seen.ports.size() == 2);
  REQUIRE(seen.endpoints.size() == 1);
  CHECK(seen.endpoints[0].host_id == "h1");
  CHECK(seen.access_tokens.count("connect") == 1);
  CHECK(seen.access_tokens.count("host") == 0);

  auto listed = relay.send(list_tunnels_request(), admin);
  REQUIRE(listed.status == 200);
  CHECK(ok(parse_tunnel_list(listed.body)).size() == 1);
  auto forbidden = relay.send(list_tunnels_request(), connect);
  CHECK(response_error(forbidden.status, forbidden.body)->status == 403);

  CHECK(relay.send(delete_endpoint_request(id, "h1-relay"), host).status == 200);
  CHECK(relay.send(delete_port_request(id, 9000), host).status == 200);
  CHECK(relay.send(delete_tunnel_request(id), admin).status == 200);
  auto gone = relay.send(get_tunnel_request(id), admin);
  CHECK(response_error(gone.status, gone.body)->status == 404);
}

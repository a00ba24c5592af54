// Typed payloads of the client message types (PROTOCOL.md "Handshake" and "Types").
#include "protocol/payloads.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace sb::protocol;

namespace {

template <class T>
T accepted(const parsed<T>& p) {
  INFO("rejected: " << error_of(p));
  REQUIRE(value_of(p) != nullptr);
  return *value_of(p);
}

template <class T>
std::string rejected(const parsed<T>& p) {
  REQUIRE(value_of(p) == nullptr);
  const auto err = error_of(p);
  CHECK_FALSE(err.empty());
  return err;
}

bool mentions(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

envelope session_create_msg(json payload, std::optional<std::string> session_id = std::nullopt) {
  envelope m;
  m.type = "session_create";
  m.id = "c-1";
  m.payload = std::move(payload);
  m.session_id = std::move(session_id);
  return m;
}

}  // namespace

// --- connect
// ------------------------------------------------------------------------------------------------

TEST_CASE("connect accepts an empty payload") {
  const auto& c = accepted(parse_connect(json::object()));
  CHECK_FALSE(c.device_id);
  CHECK_FALSE(c.role);
  CHECK_FALSE(c.client_name);
  CHECK_FALSE(c.version);
  CHECK(c.metadata == json::object());
}

TEST_CASE("connect reads every optional field") {
  const auto& c = accepted(parse_connect({{"deviceId", "dev-1"},
                                          {"role", "agent"},
                                          {"clientName", "cli"},
                                          {"version", "1.2.3"},
                                          {"metadata", {{"os", "linux"}}}}));
  CHECK(c.device_id == std::optional<std::string>("dev-1"));
  CHECK(c.role == std::optional<std::string>("agent"));
  CHECK(c.client_name == std::optional<std::string>("cli"));
  CHECK(c.version == std::optional<std::string>("1.2.3"));
  CHECK(c.metadata == json{{"os", "linux"}});
}

TEST_CASE("connect treats null optional fields as absent") {
  const auto& c = accepted(parse_connect({{"deviceId", nullptr}, {"metadata", nullptr}}));
  CHECK_FALSE(c.device_id);
  CHECK(c.metadata == json::object());
}

TEST_CASE("connect rejects optional string fields of the wrong type, naming the field") {
  for (const char* key : {"deviceId", "role", "clientName", "version"}) {
    INFO("field: " << key);
    CHECK(mentions(rejected(parse_connect({{key, 5}})), key));
  }
}

TEST_CASE("connect rejects metadata that is not an object") {
  CHECK(mentions(rejected(parse_connect({{"metadata", json::array()}})), "metadata"));
  CHECK(mentions(rejected(parse_connect({{"metadata", "x"}})), "metadata"));
}

// --- auth
// ---------------------------------------------------------------------------------------------------

TEST_CASE("auth accepts a token or a password") {
  const auto& t = accepted(parse_auth({{"token", "secret"}}));
  CHECK(t.token == std::optional<std::string>("secret"));
  CHECK_FALSE(t.password);
  const auto& p = accepted(parse_auth({{"password", "pw"}}));
  CHECK(p.password == std::optional<std::string>("pw"));
  CHECK_FALSE(p.token);
}

TEST_CASE("auth without a token or password is rejected") {
  CHECK(mentions(rejected(parse_auth(json::object())), "token"));
  rejected(parse_auth({{"token", nullptr}}));
}

TEST_CASE("auth with a token or password that is not a string is rejected") {
  CHECK(mentions(rejected(parse_auth({{"token", 123}})), "token"));
  CHECK(mentions(rejected(parse_auth({{"password", json::array()}})), "password"));
}

// --- session_create
// -----------------------------------------------------------------------------------------

TEST_CASE("session_create without any session id leaves it to be generated") {
  const auto& s = accepted(parse_session_create(session_create_msg(json::object())));
  CHECK_FALSE(s.session_id);
  CHECK(s.metadata == json::object());
}

TEST_CASE("session_create takes the envelope sessionId when the payload has none") {
  const auto& s = accepted(parse_session_create(session_create_msg(json::object(), "env-room")));
  CHECK(s.session_id == std::optional<std::string>("env-room"));
}

TEST_CASE("session_create takes payload.sessionId over the envelope sessionId") {
  const auto& s =
      accepted(parse_session_create(session_create_msg({{"sessionId", "payload-room"}}, "env-room")));
  CHECK(s.session_id == std::optional<std::string>("payload-room"));
}

TEST_CASE("session_create reads its metadata") {
  const auto& s = accepted(parse_session_create(session_create_msg({{"metadata", {{"topic", "x"}}}})));
  CHECK(s.metadata == json{{"topic", "x"}});
}

TEST_CASE("session_create rejects an empty, too long or non-string payload.sessionId") {
  for (json bad : {json(""), json(std::string(129, 's')), json(12), json::object()}) {
    INFO("sessionId: " << bad.dump());
    CHECK(mentions(rejected(parse_session_create(session_create_msg({{"sessionId", bad}}, "env-room"))),
                   "sessionId"));
  }
  accepted(parse_session_create(session_create_msg({{"sessionId", std::string(128, 's')}})));
}

TEST_CASE("session_create rejects metadata that is not an object") {
  CHECK(mentions(rejected(parse_session_create(session_create_msg({{"metadata", 1}}))), "metadata"));
}

// --- session_patch
// ------------------------------------------------------------------------------------------

TEST_CASE("session_patch accepts an object merge patch, nulls included") {
  const auto& p = accepted(parse_session_patch({{"metadata", {{"a", 1}, {"b", nullptr}}}}));
  CHECK(p.metadata == json{{"a", 1}, {"b", nullptr}});
}

TEST_CASE("session_patch without metadata is rejected") {
  CHECK(mentions(rejected(parse_session_patch(json::object())), "metadata"));
}

TEST_CASE("session_patch with non-object metadata is rejected") {
  for (json bad : {json(nullptr), json("x"), json::array({1}), json(3)}) {
    INFO("metadata: " << bad.dump());
    CHECK(mentions(rejected(parse_session_patch({{"metadata", bad}})), "metadata"));
  }
}

// --- presence
// -----------------------------------------------------------------------------------------------

TEST_CASE("presence accepts a status of 1 to 64 characters and keeps the whole payload") {
  const json payload = {{"status", "away"}, {"note", "lunch"}};
  const auto& p = accepted(parse_presence(payload));
  CHECK(p.status == "away");
  CHECK(p.fields == payload);
  CHECK(accepted(parse_presence({{"status", "x"}})).status == "x");
  CHECK(accepted(parse_presence({{"status", std::string(64, 'x')}})).status == std::string(64, 'x'));
  // 64 multi-byte characters are 64 characters.
  std::string euros;
  for (int i = 0; i < 64; ++i) euros += "\xE2\x82\xAC";
  CHECK(accepted(parse_presence({{"status", euros}})).status == euros);
}

TEST_CASE("presence rejects a missing, empty, too long or non-string status") {
  CHECK(mentions(rejected(parse_presence(json::object())), "status"));
  for (json bad : {json(""), json(std::string(65, 'x')), json(1), json(nullptr)}) {
    INFO("status: " << bad.dump());
    CHECK(mentions(rejected(parse_presence({{"status", bad}})), "status"));
  }
}

// --- chat
// ---------------------------------------------------------------------------------------------------

TEST_CASE("chat accepts string text, even empty") {
  CHECK(accepted(parse_chat({{"text", "hello"}, {"extra", 1}})).text == "hello");
  CHECK(accepted(parse_chat({{"text", ""}})).text.empty());
}

TEST_CASE("chat without string text is rejected") {
  CHECK(mentions(rejected(parse_chat(json::object())), "text"));
  for (json bad : {json(1), json(nullptr), json::array({"hi"}), json::object()}) {
    INFO("text: " << bad.dump());
    CHECK(mentions(rejected(parse_chat({{"text", bad}})), "text"));
  }
}

// --- agent_register
// -----------------------------------------------------------------------------------------

TEST_CASE("agent_register reads id, name, type, capabilities and metadata") {
  const auto& a = accepted(parse_agent_register({{"agentId", "a-1"},
                                                 {"name", "Coder"},
                                                 {"type", "llm"},
                                                 {"capabilities", {"code", "review"}},
                                                 {"metadata", {{"model", "m"}}}}));
  CHECK(a.agent_id == "a-1");
  CHECK(a.name == std::optional<std::string>("Coder"));
  CHECK(a.type == "llm");
  CHECK(a.capabilities == std::vector<std::string>{"code", "review"});
  CHECK(a.metadata == json{{"model", "m"}});
}

TEST_CASE("agent_register accepts an empty capability list and no name") {
  const auto& a =
      accepted(parse_agent_register({{"agentId", "a"}, {"type", "t"}, {"capabilities", json::array()}}));
  CHECK(a.capabilities.empty());
  CHECK_FALSE(a.name);
  CHECK(a.metadata == json::object());
}

TEST_CASE("agent_register rejects a missing, empty, too long or non-string agentId") {
  const json base = {{"agentId", "a"}, {"type", "t"}, {"capabilities", json::array()}};
  json missing = base;
  missing.erase("agentId");
  CHECK(mentions(rejected(parse_agent_register(missing)), "agentId"));
  for (json bad : {json(""), json(std::string(129, 'a')), json(1)}) {
    json p = base;
    p["agentId"] = bad;
    INFO("agentId: " << bad.dump());
    CHECK(mentions(rejected(parse_agent_register(p)), "agentId"));
  }
}

TEST_CASE("agent_register rejects a missing, empty or non-string type") {
  const json base = {{"agentId", "a"}, {"type", "t"}, {"capabilities", json::array()}};
  json missing = base;
  missing.erase("type");
  CHECK(mentions(rejected(parse_agent_register(missing)), "type"));
  for (json bad : {json(""), json(false)}) {
    json p = base;
    p["type"] = bad;
    CHECK(mentions(rejected(parse_agent_register(p)), "type"));
  }
}

TEST_CASE("agent_register rejects a name that is not a string") {
  CHECK(mentions(rejected(parse_agent_register(
                     {{"agentId", "a"}, {"name", 1}, {"type", "t"}, {"capabilities", json::array()}})),
                 "name"));
}

TEST_CASE("agent_register rejects capabilities that are missing or not an array") {
  CHECK(mentions(rejected(parse_agent_register({{"agentId", "a"}, {"type", "t"}})), "capabilities"));
  CHECK(mentions(rejected(parse_agent_register({{"agentId", "a"}, {"type", "t"}, {"capabilities", "code"}})),
                 "capabilities"));
}

TEST_CASE("agent_register rejects capabilities with empty or non-string entries") {
  for (json bad : {json::array({"code", ""}), json::array({"code", 3}), json::array({nullptr})}) {
    INFO("capabilities: " << bad.dump());
    CHECK(mentions(rejected(parse_agent_register({{"agentId", "a"}, {"type", "t"}, {"capabilities", bad}})),
                   "capabilities"));
  }
}

TEST_CASE("agent_register rejects metadata that is not an object") {
  CHECK(mentions(rejected(parse_agent_register(
                     {{"agentId", "a"}, {"type", "t"}, {"capabilities", json::array()}, {"metadata", "m"}})),
                 "metadata"));
}

// --- agent_unregister and agent_status
// ----------------------------------------------------------------------

TEST_CASE("presence_list takes an optional cursor from an earlier page and a limit up to 1000") {
  const auto& first = accepted(parse_presence_list(json::object()));
  CHECK(first.after == 0);
  CHECK(first.limit == max_presence_page);
  const auto& later = accepted(parse_presence_list({{"cursor", "42"}, {"limit", 5}}));
  CHECK(later.after == 42);
  CHECK(later.limit == 5);
  CHECK(accepted(parse_presence_list({{"cursor", nullptr}, {"limit", nullptr}})).after == 0);
  for (json bad_cursor : {json(""), json("x1"), json("-1"), json(42), json("12345678901234567890")}) {
    INFO("cursor: " << bad_cursor.dump());
    CHECK(mentions(rejected(parse_presence_list({{"cursor", bad_cursor}})), "cursor"));
  }
  for (json bad_limit : {json(0), json(1001), json(-3), json(2.5), json("10")}) {
    INFO("limit: " << bad_limit.dump());
    CHECK(mentions(rejected(parse_presence_list({{"limit", bad_limit}})), "limit"));
  }
}

TEST_CASE("agent_unregister requires a non-empty agentId") {
  CHECK(accepted(parse_agent_unregister({{"agentId", "a-1"}})).agent_id == "a-1");
  CHECK(mentions(rejected(parse_agent_unregister(json::object())), "agentId"));
  CHECK(mentions(rejected(parse_agent_unregister({{"agentId", ""}})), "agentId"));
  CHECK(mentions(rejected(parse_agent_unregister({{"agentId", 7}})), "agentId"));
}

TEST_CASE("agent_status accepts online, busy and offline") {
  CHECK(accepted(parse_agent_status({{"agentId", "a"}, {"status", "online"}})).status ==
        agent_status_value::online);
  CHECK(accepted(parse_agent_status({{"agentId", "a"}, {"status", "busy"}})).status ==
        agent_status_value::busy);
  const auto& off = accepted(parse_agent_status({{"agentId", "a"}, {"status", "offline"}}));
  CHECK(off.status == agent_status_value::offline);
  CHECK(off.agent_id == "a");
}

TEST_CASE("agent_status rejects any other status") {
  for (json bad : {json("away"), json("Online"), json(""), json(1), json(nullptr)}) {
    INFO("status: " << bad.dump());
    CHECK(mentions(rejected(parse_agent_status({{"agentId", "a"}, {"status", bad}})), "status"));
  }
  CHECK(mentions(rejected(parse_agent_status({{"agentId", "a"}})), "status"));
}

TEST_CASE("agent_status requires an agentId") {
  CHECK(mentions(rejected(parse_agent_status({{"status", "online"}})), "agentId"));
}

TEST_CASE("agent status values and route selectors have their wire names") {
  CHECK(to_string(agent_status_value::online) == "online");
  CHECK(to_string(agent_status_value::busy) == "busy");
  CHECK(to_string(agent_status_value::offline) == "offline");
  CHECK(to_string(route_selector::agent_id) == "agentId");
  CHECK(to_string(route_selector::capability) == "capability");
  CHECK(to_string(route_selector::agent_type) == "agentType");
}

// --- route_request
// ------------------------------------------------------------------------------------------

TEST_CASE("route_request selects by agentId, capability or agentType") {
  const auto& by_id = accepted(parse_route_request({{"agentId", "a-1"}, {"request", {{"q", 1}}}}));
  CHECK(by_id.selector == route_selector::agent_id);
  CHECK(by_id.target == "a-1");
  CHECK(by_id.request == json{{"q", 1}});
  const auto& by_cap = accepted(parse_route_request({{"capability", "code"}, {"request", "x"}}));
  CHECK(by_cap.selector == route_selector::capability);
  CHECK(by_cap.target == "code");
  const auto& by_type = accepted(parse_route_request({{"agentType", "llm"}, {"request", 1}}));
  CHECK(by_type.selector == route_selector::agent_type);
  CHECK(by_type.target == "llm");
}

TEST_CASE("route_request prefers agentId over capability over agentType") {
  const auto& all = accepted(parse_route_request(
      {{"agentType", "llm"}, {"capability", "code"}, {"agentId", "a-1"}, {"request", 1}}));
  CHECK(all.selector == route_selector::agent_id);
  CHECK(all.target == "a-1");
  const auto& two =
      accepted(parse_route_request({{"agentType", "llm"}, {"capability", "code"}, {"request", 1}}));
  CHECK(two.selector == route_selector::capability);
  CHECK(two.target == "code");
}

TEST_CASE("route_request treats a null selector as absent") {
  const auto& r = accepted(parse_route_request({{"agentId", nullptr}, {"agentType", "llm"}, {"request", 1}}));
  CHECK(r.selector == route_selector::agent_type);
}

TEST_CASE("route_request with no selector is rejected") {
  CHECK(mentions(rejected(parse_route_request({{"request", 1}})), "agentId"));
}

TEST_CASE("route_request with an empty or non-string selector is rejected") {
  CHECK(mentions(rejected(parse_route_request({{"agentId", ""}, {"request", 1}})), "agentId"));
  CHECK(mentions(rejected(parse_route_request({{"capability", 5}, {"request", 1}})), "capability"));
  CHECK(mentions(rejected(parse_route_request({{"agentType", json::array()}, {"request", 1}})), "agentType"));
}

TEST_CASE("route_request requires a request, of any JSON type") {
  CHECK(mentions(rejected(parse_route_request({{"agentId", "a"}})), "request"));
  CHECK(accepted(parse_route_request({{"agentId", "a"}, {"request", nullptr}})).request.is_null());
  CHECK(accepted(parse_route_request({{"agentId", "a"}, {"request", json::array({1})}})).request ==
        json::array({1}));
}

// --- route_response
// -----------------------------------------------------------------------------------------

TEST_CASE("route_response reads requestId and response") {
  const auto& r = accepted(parse_route_response({{"requestId", "r-1"}, {"response", {{"ok", true}}}}));
  CHECK(r.request_id == "r-1");
  CHECK(r.response == json{{"ok", true}});
}

TEST_CASE("route_response requires a requestId") {
  CHECK(mentions(rejected(parse_route_response({{"response", 1}})), "requestId"));
  CHECK(mentions(rejected(parse_route_response({{"requestId", ""}, {"response", 1}})), "requestId"));
  CHECK(mentions(rejected(parse_route_response({{"requestId", 9}, {"response", 1}})), "requestId"));
}

TEST_CASE("route_response requires a response") {
  CHECK(mentions(rejected(parse_route_response({{"requestId", "r-1"}})), "response"));
  CHECK(accepted(parse_route_response({{"requestId", "r-1"}, {"response", nullptr}})).response.is_null());
}

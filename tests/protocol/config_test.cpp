// Gateway configuration keys (PROTOCOL.md "Configuration keys"): defaults, checks, names, text coercion.
#include "protocol/config.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <variant>

using nlohmann::json;
using namespace sb::protocol;

namespace {

gateway_config good(const json& object) {
  auto r = parse_gateway_config(object);
  const auto* err = std::get_if<std::string>(&r);
  INFO("config: " << object.dump() << " error: " << (err ? *err : std::string{}));
  REQUIRE(std::holds_alternative<gateway_config>(r));
  return std::get<gateway_config>(r);
}

std::string bad(const json& object) {
  auto r = parse_gateway_config(object);
  INFO("config: " << object.dump());
  REQUIRE(std::holds_alternative<std::string>(r));
  return std::get<std::string>(r);
}

// The error names `key` at its start, as "key: ..." (or quoted, for unknown keys).
void check_names(const json& object, const std::string& key) {
  const auto err = bad(object);
  INFO("config: " << object.dump() << " error: " << err);
  CHECK(err.find(key) != std::string::npos);
}

const config_key& key(const char* name) {
  const auto* k = find_config_key(name);
  INFO("key: " << name);
  REQUIRE(k != nullptr);
  return *k;
}

json coerced(const char* name, const std::string& text) {
  auto r = coerce_config_text(key(name), text);
  const auto* err = std::get_if<std::string>(&r);
  INFO("key: " << name << " text: '" << text << "' error: " << (err ? *err : std::string{}));
  REQUIRE(std::holds_alternative<json>(r));
  return std::get<json>(r);
}

std::string coerce_error(const char* name, const std::string& text) {
  auto r = coerce_config_text(key(name), text);
  INFO("key: " << name << " text: '" << text << "'");
  REQUIRE(std::holds_alternative<std::string>(r));
  return std::get<std::string>(r);
}

}  // namespace

// --- defaults
// -----------------------------------------------------------------------------------------------

TEST_CASE("an empty configuration object gives the documented defaults") {
  const auto c = good(json::object());
  CHECK(c.port == 8080);
  CHECK(c.bind == "loopback");
  CHECK(c.path == "/ws");
  CHECK(c.auth == auth_mode::token);
  CHECK(c.auth_tokens.empty());
  CHECK(c.auth_password.empty());
  CHECK(c.cors_origins.empty());
  CHECK(c.trusted_proxies.empty());
  CHECK(c.max_payload == 1048576);
  CHECK(c.per_message_deflate);
  CHECK(c.heartbeat_interval_ms == 30000);
  CHECK(c.client_timeout_ms == 60000);
  CHECK(c.route_timeout_ms == 30000);
  CHECK(c.rate_limit == 100);
  CHECK(c.send_queue_limit == 1024);
  CHECK(c.send_queue_bytes == 8u * 1024 * 1024);
  CHECK(c.tls_cert.empty());
  CHECK(c.tls_key.empty());
  CHECK_FALSE(c.tls_enabled());
  CHECK(c.admin_socket == "switchboard.sock");
  CHECK(c.node_id.empty());
  CHECK(c.log_level == "info");
}

TEST_CASE("auth modes have their wire names") {
  CHECK(to_string(auth_mode::token) == "token");
  CHECK(to_string(auth_mode::password) == "password");
  CHECK(to_string(auth_mode::none) == "none");
}

// --- accepted values
// ----------------------------------------------------------------------------------------

TEST_CASE("every key is read from the configuration object") {
  const auto c = good({{"port", 9001},
                       {"bind", "127.0.0.2"},
                       {"path", "/gateway"},
                       {"authMode", "password"},
                       {"authTokens", {"t1", "t2"}},
                       {"authPassword", "pw"},
                       {"corsOrigins", {"https://*.example.com", "*"}},
                       {"trustedProxies", {"10.0.0.0/8", "::1"}},
                       {"maxPayload", 4096},
                       {"perMessageDeflate", false},
                       {"heartbeatIntervalMs", 1000},
                       {"clientTimeoutMs", 2000},
                       {"routeTimeoutMs", 500},
                       {"rateLimit", 0},
                       {"sendQueueLimit", 10},
                       {"sendQueueBytes", 2048},
                       {"tlsCert", "cert.pem"},
                       {"tlsKey", "key.pem"},
                       {"adminSocket", "/tmp/sb.sock"},
                       {"nodeId", "node-a"},
                       {"logLevel", "debug"},
                       {"drainTimeoutMs", 0}});
  CHECK(c.port == 9001);
  CHECK(c.bind == "127.0.0.2");
  CHECK(c.path == "/gateway");
  CHECK(c.auth == auth_mode::password);
  CHECK(c.auth_tokens == std::vector<std::string>{"t1", "t2"});
  CHECK(c.auth_password == "pw");
  CHECK(c.cors_origins == std::vector<std::string>{"https://*.example.com", "*"});
  CHECK(c.trusted_proxies_text == std::vector<std::string>{"10.0.0.0/8", "::1"});
  REQUIRE(c.trusted_proxies.size() == 2);
  CHECK(any_contains(c.trusted_proxies, "10.2.3.4"));
  CHECK(any_contains(c.trusted_proxies, "::1"));
  CHECK(c.max_payload == 4096);
  CHECK_FALSE(c.per_message_deflate);
  CHECK(c.heartbeat_interval_ms == 1000);
  CHECK(c.client_timeout_ms == 2000);
  CHECK(c.route_timeout_ms == 500);
  CHECK(c.rate_limit == 0);
  CHECK(c.send_queue_limit == 10);
  CHECK(c.send_queue_bytes == 2048);
  CHECK(c.tls_enabled());
  CHECK(c.admin_socket == "/tmp/sb.sock");
  CHECK(c.node_id == "node-a");
  CHECK(c.log_level == "debug");
  CHECK(c.drain_timeout_ms == 0);
}

TEST_CASE("port may range from 0 to 65535") {
  CHECK(good({{"port", 0}}).port == 0);
  CHECK(good({{"port", 65535}}).port == 65535);
}

TEST_CASE("bind accepts loopback, lan, all and IP addresses") {
  for (const char* b : {"loopback", "lan", "all", "127.0.0.1", "::", "::1", "192.168.1.10"}) {
    INFO("bind: " << b);
    CHECK(good({{"bind", b}}).bind == b);
  }
}

TEST_CASE("authMode none and token are accepted without secrets") {
  CHECK(good({{"authMode", "none"}}).auth == auth_mode::none);
  CHECK(good({{"authMode", "token"}}).auth == auth_mode::token);
}

TEST_CASE("every documented log level is accepted") {
  for (const char* l : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    INFO("level: " << l);
    CHECK(good({{"logLevel", l}}).log_level == l);
  }
}

// --- rejected keys and values
// -------------------------------------------------------------------------------

TEST_CASE("a configuration that is not an object is rejected") {
  bad(json::array());
  bad(json("port"));
}

TEST_CASE("an unknown key is rejected naming the key") {
  check_names({{"prot", 8080}}, "'prot'");
  check_names({{"port", 8080}, {"max_payload", 10}}, "'max_payload'");
  check_names({{"MaxPayload", 10}}, "'MaxPayload'");
}

TEST_CASE("a port above 65535 is rejected naming port") {
  const auto err = bad({{"port", 70000}});
  CHECK(err.rfind("port:", 0) == 0);
  check_names({{"port", -1}}, "port");
}

TEST_CASE("a bind that is no mode and no address is rejected naming bind") {
  const auto err = bad({{"bind", "nonsense"}});
  CHECK(err.rfind("bind:", 0) == 0);
  CHECK(err.find("nonsense") != std::string::npos);
  check_names({{"bind", "999.1.1.1"}}, "bind");
  check_names({{"bind", ""}}, "bind");
}

TEST_CASE("a path that does not start with a slash is rejected naming path") {
  CHECK(bad({{"path", "ws"}}).rfind("path:", 0) == 0);
  CHECK(bad({{"path", ""}}).rfind("path:", 0) == 0);
}

TEST_CASE("an unknown authMode is rejected naming authMode") {
  const auto err = bad({{"authMode", "x"}});
  CHECK(err.rfind("authMode:", 0) == 0);
  check_names({{"authMode", "TOKEN"}}, "authMode");
}

TEST_CASE("password mode without authPassword is rejected naming authPassword") {
  CHECK(bad({{"authMode", "password"}}).rfind("authPassword:", 0) == 0);
  CHECK(bad({{"authMode", "password"}, {"authPassword", ""}}).rfind("authPassword:", 0) == 0);
  CHECK(good({{"authMode", "password"}, {"authPassword", "s3cret"}}).auth_password == "s3cret");
}

TEST_CASE("an empty token in authTokens is rejected naming authTokens") {
  CHECK(bad({{"authTokens", {"ok", ""}}}).rfind("authTokens:", 0) == 0);
}

TEST_CASE("a bad CIDR in trustedProxies is rejected naming the key and the value") {
  const auto err = bad({{"trustedProxies", {"10.0.0.0/8", "10.0.0.0/33"}}});
  CHECK(err.rfind("trustedProxies:", 0) == 0);
  CHECK(err.find("10.0.0.0/33") != std::string::npos);
  check_names({{"trustedProxies", {"proxy.local"}}}, "trustedProxies");
}

TEST_CASE("a bad origin pattern in corsOrigins is rejected naming the key and the pattern") {
  const auto err = bad({{"corsOrigins", {"https://ok.example.com", "https://a.*.example.com"}}});
  CHECK(err.rfind("corsOrigins:", 0) == 0);
  CHECK(err.find("https://a.*.example.com") != std::string::npos);
  check_names({{"corsOrigins", {"example.com"}}}, "corsOrigins");
}

TEST_CASE("tlsCert without tlsKey, or tlsKey without tlsCert, is rejected") {
  const auto no_key = bad({{"tlsCert", "cert.pem"}});
  CHECK(no_key.rfind("tlsKey:", 0) == 0);
  CHECK(no_key.find("tlsCert") != std::string::npos);
  const auto no_cert = bad({{"tlsKey", "key.pem"}});
  CHECK(no_cert.rfind("tlsCert:", 0) == 0);
}

TEST_CASE("an unknown logLevel is rejected naming logLevel") {
  const auto err = bad({{"logLevel", "loud"}});
  CHECK(err.rfind("logLevel:", 0) == 0);
  CHECK(err.find("loud") != std::string::npos);
}

TEST_CASE("a client timeout shorter than the heartbeat interval is rejected") {
  CHECK(bad({{"heartbeatIntervalMs", 5000}, {"clientTimeoutMs", 4000}}).rfind("clientTimeoutMs:", 0) == 0);
  good({{"heartbeatIntervalMs", 5000}, {"clientTimeoutMs", 5000}});
}

TEST_CASE("an admin socket path too long for a Unix socket is rejected") {
  CHECK(bad({{"adminSocket", std::string(108, 'a')}}).rfind("adminSocket:", 0) == 0);
  good({{"adminSocket", std::string(107, 'a')}});
}

TEST_CASE("integer keys outside their range are rejected naming the key") {
  CHECK(bad({{"maxPayload", 63}}).rfind("maxPayload:", 0) == 0);
  CHECK(bad({{"maxPayload", (1ull << 30) + 1}}).rfind("maxPayload:", 0) == 0);
  CHECK(bad({{"heartbeatIntervalMs", 9}}).rfind("heartbeatIntervalMs:", 0) == 0);
  CHECK(bad({{"routeTimeoutMs", 0}}).rfind("routeTimeoutMs:", 0) == 0);
  CHECK(bad({{"rateLimit", 1000001}}).rfind("rateLimit:", 0) == 0);
  CHECK(bad({{"presenceLimit", 1001}}).rfind("presenceLimit:", 0) == 0);
  CHECK(bad({{"sendQueueLimit", 0}}).rfind("sendQueueLimit:", 0) == 0);
  CHECK(bad({{"clientTimeoutMs", 5000000000ull}}).rfind("clientTimeoutMs:", 0) == 0);
}

TEST_CASE("values of the wrong JSON type are rejected naming the key") {
  const std::pair<const char*, json> cases[] = {
      {"port", "8080"},
      {"port", 80.5},
      {"port", true},
      {"maxPayload", nullptr},
      {"perMessageDeflate", "true"},
      {"perMessageDeflate", 1},
      {"bind", 0},
      {"path", json::array({"/ws"})},
      {"authMode", nullptr},
      {"authTokens", "t1"},
      {"authTokens", json::array({1})},
      {"corsOrigins", "*"},
      {"trustedProxies", json::object()},
      {"logLevel", 3},
      {"rateLimit", "100"},
  };
  for (const auto& [name, value] : cases) {
    json object = {{name, value}};
    const auto err = bad(object);
    INFO("config: " << object.dump() << " error: " << err);
    CHECK(err.rfind(std::string(name) + ":", 0) == 0);
  }
}

// --- names
// --------------------------------------------------------------------------------------------------

TEST_CASE("flag and environment names derive from the camelCase key") {
  CHECK(flag_name("maxPayload") == "max-payload");
  CHECK(env_name("maxPayload") == "SWITCHBOARD_MAX_PAYLOAD");
  CHECK(flag_name("heartbeatIntervalMs") == "heartbeat-interval-ms");
  CHECK(env_name("heartbeatIntervalMs") == "SWITCHBOARD_HEARTBEAT_INTERVAL_MS");
  CHECK(flag_name("port") == "port");
  CHECK(env_name("port") == "SWITCHBOARD_PORT");
  CHECK(flag_name("perMessageDeflate") == "per-message-deflate");
  CHECK(env_name("tlsCert") == "SWITCHBOARD_TLS_CERT");
}

TEST_CASE("every documented key is known, and unknown names are not") {
  for (const char* name : {"port",
                           "bind",
                           "path",
                           "authMode",
                           "authTokens",
                           "authPassword",
                           "corsOrigins",
                           "trustedProxies",
                           "maxPayload",
                           "perMessageDeflate",
                           "heartbeatIntervalMs",
                           "clientTimeoutMs",
                           "routeTimeoutMs",
                           "rateLimit",
                           "presenceLimit",
                           "sendQueueLimit",
                           "tlsCert",
                           "tlsKey",
                           "adminSocket",
                           "nodeId",
                           "logLevel"}) {
    INFO("key: " << name);
    CHECK(find_config_key(name) != nullptr);
  }
  CHECK(find_config_key("config") == nullptr);
  CHECK(find_config_key("max-payload") == nullptr);
  CHECK(find_config_key("") == nullptr);
}

TEST_CASE("keys have the documented kinds") {
  CHECK(key("port").kind == key_kind::integer);
  CHECK(key("perMessageDeflate").kind == key_kind::boolean);
  CHECK(key("corsOrigins").kind == key_kind::string_list);
  CHECK(key("authTokens").kind == key_kind::string_list);
  CHECK(key("trustedProxies").kind == key_kind::string_list);
  CHECK(key("logLevel").kind == key_kind::string);
}

// --- coerce_config_text
// -------------------------------------------------------------------------------------

TEST_CASE("integer text becomes a JSON integer") {
  CHECK(coerced("port", "9001") == json(9001));
  CHECK(coerced("port", "0") == json(0));
  CHECK(coerced("maxPayload", "18446744073709551615") == json(18446744073709551615ull));
}

TEST_CASE("integer text that is not a non-negative integer is an error naming the key") {
  for (const std::string& text :
       {std::string(""), std::string("abc"), std::string("-1"), std::string("1.5"), std::string(" 1"),
        std::string("1e3"), std::string("+1"), std::string("0x10")}) {
    const auto err = coerce_error("port", text);
    INFO("text: '" << text << "' error: " << err);
    CHECK(err.rfind("port:", 0) == 0);
  }
  CHECK(coerce_error("maxPayload", "99999999999999999999999").rfind("maxPayload:", 0) == 0);
}

TEST_CASE("boolean text accepts true/false, 1/0, yes/no and on/off") {
  for (const char* t : {"true", "1", "yes", "on"}) CHECK(coerced("perMessageDeflate", t) == json(true));
  for (const char* f : {"false", "0", "no", "off"}) CHECK(coerced("perMessageDeflate", f) == json(false));
}

TEST_CASE("other boolean text is an error naming the key") {
  for (const char* text : {"", "maybe", "2", "truee"}) {
    INFO("text: " << text);
    CHECK(coerce_error("perMessageDeflate", text).rfind("perMessageDeflate:", 0) == 0);
  }
}

TEST_CASE("string text is taken as it is") {
  CHECK(coerced("logLevel", "debug") == json("debug"));
  CHECK(coerced("bind", "") == json(""));
  CHECK(coerced("path", " /x, y ") == json(" /x, y "));
}

TEST_CASE("list text may be a JSON array") {
  CHECK(coerced("corsOrigins", R"(["https://a.example.com","http://b:1"])") ==
        json::array({"https://a.example.com", "http://b:1"}));
  CHECK(coerced("authTokens", "[]") == json::array());
}

TEST_CASE("list text may be a comma-separated list, trimmed, without empty items") {
  CHECK(coerced("trustedProxies", "10.0.0.0/8,192.168.0.0/16") ==
        json::array({"10.0.0.0/8", "192.168.0.0/16"}));
  CHECK(coerced("authTokens", " a , b\t,c ") == json::array({"a", "b", "c"}));
  CHECK(coerced("authTokens", "a,,b,") == json::array({"a", "b"}));
  CHECK(coerced("authTokens", "single") == json::array({"single"}));
  CHECK(coerced("authTokens", "") == json::array());
  CHECK(coerced("authTokens", ",") == json::array());
}

TEST_CASE("list text that starts like a JSON array but is not one is an error naming the key") {
  for (const char* text : {"[", "[\"a\",", "[a,b]"}) {
    INFO("text: " << text);
    CHECK(coerce_error("corsOrigins", text).rfind("corsOrigins:", 0) == 0);
  }
}

TEST_CASE("coerced text passes through parse_gateway_config") {
  json object = {{"port", coerced("port", "9001")},
                 {"perMessageDeflate", coerced("perMessageDeflate", "off")},
                 {"corsOrigins", coerced("corsOrigins", "https://*.example.com,http://localhost:3000")}};
  const auto c = good(object);
  CHECK(c.port == 9001);
  CHECK_FALSE(c.per_message_deflate);
  CHECK(c.cors_origins == std::vector<std::string>{"https://*.example.com", "http://localhost:3000"});
}

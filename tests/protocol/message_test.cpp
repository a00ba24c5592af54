// decode/encode/classify of the gateway message (PROTOCOL.md "Message", "Types", "Errors").
#include "protocol/message.hpp"

#include <catch2/catch.hpp>
#include <set>
#include <string>

#include "protocol/errors.hpp"

using namespace sb::protocol;

namespace {

// Repeats a UTF-8 sequence n times.
std::string repeat(const std::string& unit, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += unit;
  return out;
}

// Builds a message object text from a JSON value, so tests state only what they vary.
std::string text_of(const json& j) { return j.dump(); }

json base() { return json{{"type", "chat"}, {"id", "c-1"}}; }

envelope ok(const decode_result& r) {
  const auto* err = std::get_if<decode_error>(&r);
  INFO("decode failed: " << (err ? err->message : std::string{}));
  REQUIRE(std::holds_alternative<envelope>(r));
  return std::get<envelope>(r);
}

decode_error failed(const decode_result& r) {
  REQUIRE(std::holds_alternative<decode_error>(r));
  return std::get<decode_error>(r);
}

}  // namespace

// --- decode: whole-message rules --------------------------------------------------------------------------

TEST_CASE("a well-formed message decodes into all of its fields") {
  auto r = decode(
      R"({"type":"chat","id":"c-17","sessionId":"room-1","payload":{"text":"hi"},"timestamp":1764000000000})");
  const auto& m = ok(r);
  CHECK(m.type == "chat");
  CHECK(m.id == "c-17");
  REQUIRE(m.session_id);
  CHECK(*m.session_id == "room-1");
  CHECK(m.payload == json{{"text", "hi"}});
  REQUIRE(m.timestamp);
  CHECK(*m.timestamp == 1764000000000.0);
  CHECK_FALSE(m.reply_to);
}

TEST_CASE("invalid JSON is BAD_JSON and carries no id") {
  for (const char* text :
       {"", "{", "{\"id\":\"x\",", "not json", "{\"type\":\"chat\",\"id\":\"c-1\"} trailing", "{'id':'x'}"}) {
    INFO("text: " << text);
    const auto& e = failed(decode(text));
    CHECK(e.code == error_code::bad_json);
    CHECK_FALSE(e.id);
  }
}

TEST_CASE("a JSON value that is not an object is an invalid message") {
  for (const char* text : {"[]", "[{\"type\":\"chat\",\"id\":\"c-1\"}]", "42", "\"chat\"", "null", "true"}) {
    INFO("text: " << text);
    const auto& e = failed(decode(text));
    CHECK(e.code == error_code::invalid_message);
    CHECK_FALSE(e.id);
  }
}

// --- decode: id
// ---------------------------------------------------------------------------------------------

TEST_CASE("a message without an id is an invalid message without an id") {
  const auto& e = failed(decode(R"({"type":"chat"})"));
  CHECK(e.code == error_code::invalid_message);
  CHECK_FALSE(e.id);
  CHECK(e.message.find("id") != std::string::npos);
}

TEST_CASE("an empty id is an invalid message") {
  auto j = base();
  j["id"] = "";
  const auto& e = failed(decode(text_of(j)));
  CHECK(e.code == error_code::invalid_message);
  CHECK_FALSE(e.id);
}

TEST_CASE("an id that is not a string is an invalid message") {
  for (json bad : {json(17), json(nullptr), json::array({"c-1"}), json::object(), json(true)}) {
    auto j = base();
    j["id"] = bad;
    INFO("id: " << bad.dump());
    const auto& e = failed(decode(text_of(j)));
    CHECK(e.code == error_code::invalid_message);
    CHECK_FALSE(e.id);
  }
}

TEST_CASE("an id of 128 characters is accepted and one of 129 is not") {
  auto j = base();
  j["id"] = std::string(128, 'a');
  CHECK(ok(decode(text_of(j))).id == std::string(128, 'a'));
  j["id"] = std::string(129, 'a');
  CHECK(failed(decode(text_of(j))).code == error_code::invalid_message);
}

TEST_CASE("id length counts Unicode code points, not bytes") {
  // "é" is 2 bytes, "€" 3 bytes, "😀" 4 bytes: 128 of them are 128 characters, far more than 128 bytes.
  for (const std::string unit : {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80"}) {
    auto j = base();
    j["id"] = repeat(unit, 128);
    INFO("unit bytes: " << unit.size());
    CHECK(ok(decode(text_of(j))).id == repeat(unit, 128));
    j["id"] = repeat(unit, 129);
    CHECK(failed(decode(text_of(j))).code == error_code::invalid_message);
  }
}

TEST_CASE("char_count counts code points and counts invalid bytes one by one") {
  CHECK(char_count("") == 0);
  CHECK(char_count("abc") == 3);
  CHECK(char_count("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80") == 3);
  CHECK(char_count("\xFF\xFE") == 2);
  CHECK(char_count("a\xE2\x82") == 3);  // truncated 3-byte sequence at the end
}

// --- decode: type
// -------------------------------------------------------------------------------------------

TEST_CASE("a missing or non-string type is an invalid message that carries the id") {
  for (json bad : {json(nullptr), json(3), json::array({"chat"})}) {
    json j = {{"id", "c-9"}};
    if (!bad.is_null()) j["type"] = bad;
    INFO("message: " << j.dump());
    const auto& e = failed(decode(text_of(j)));
    CHECK(e.code == error_code::invalid_message);
    REQUIRE(e.id);
    CHECK(*e.id == "c-9");
  }
}

TEST_CASE("a type outside [a-z0-9_.:-]{1,64} is an invalid message that carries the id") {
  for (const std::string& bad :
       {std::string("Chat"), std::string("CHAT"), std::string("chat message"), std::string(),
        std::string("chat!"), std::string("chat/x"), std::string("ch\xC3\xA9t"), std::string(65, 'a')}) {
    auto j = base();
    j["id"] = "c-2";
    j["type"] = bad;
    INFO("type: '" << bad << "'");
    const auto& e = failed(decode(text_of(j)));
    CHECK(e.code == error_code::invalid_message);
    REQUIRE(e.id);
    CHECK(*e.id == "c-2");
  }
}

TEST_CASE("a type of 64 allowed characters is accepted") {
  for (const std::string& good : {std::string(64, 'a'), std::string("tool_start"), std::string("a.b:c-d_0"),
                                  std::string("0"), std::string("x:-._9")}) {
    auto j = base();
    j["type"] = good;
    INFO("type: " << good);
    CHECK(ok(decode(text_of(j))).type == good);
  }
}

TEST_CASE("valid_type_name applies the type rule directly") {
  CHECK(valid_type_name("chat"));
  CHECK(valid_type_name(std::string(64, 'z')));
  CHECK_FALSE(valid_type_name(std::string(65, 'z')));
  CHECK_FALSE(valid_type_name(""));
  CHECK_FALSE(valid_type_name("Chat"));
  CHECK_FALSE(valid_type_name("a b"));
}

// --- decode: sessionId
// --------------------------------------------------------------------------------------

TEST_CASE("sessionId is optional") { CHECK_FALSE(ok(decode(text_of(base()))).session_id); }

TEST_CASE("a sessionId of 1 to 128 characters is accepted") {
  for (const std::string& good : {std::string("r"), std::string(128, 'r'), repeat("\xE2\x82\xAC", 128)}) {
    auto j = base();
    j["sessionId"] = good;
    const auto& m = ok(decode(text_of(j)));
    REQUIRE(m.session_id);
    CHECK(*m.session_id == good);
  }
}

TEST_CASE("an empty, too long or non-string sessionId is an invalid message that carries the id") {
  for (json bad : {json(""), json(std::string(129, 'r')), json(repeat("\xE2\x82\xAC", 129)), json(5),
                   json(nullptr), json::object()}) {
    auto j = base();
    j["sessionId"] = bad;
    INFO("sessionId: " << bad.dump());
    const auto& e = failed(decode(text_of(j)));
    CHECK(e.code == error_code::invalid_message);
    REQUIRE(e.id);
    CHECK(*e.id == "c-1");
  }
}

// --- decode: payload
// ----------------------------------------------------------------------------------------

TEST_CASE("an absent payload decodes as an empty object") {
  const auto& m = ok(decode(text_of(base())));
  CHECK(m.payload.is_object());
  CHECK(m.payload.empty());
}

TEST_CASE("an object payload is kept as sent") {
  auto j = base();
  j["payload"] = {{"text", "hi"}, {"n", 3}, {"nested", {{"a", json::array({1, 2})}}}};
  CHECK(ok(decode(text_of(j))).payload == j["payload"]);
}

TEST_CASE("a payload that is an array is an invalid message") {
  auto j = base();
  j["payload"] = json::array({1, 2});
  const auto& e = failed(decode(text_of(j)));
  CHECK(e.code == error_code::invalid_message);
  REQUIRE(e.id);
  CHECK(*e.id == "c-1");
}

TEST_CASE("a payload that is null, a string or a number is an invalid message") {
  for (json bad : {json(nullptr), json("text"), json(1), json(false)}) {
    auto j = base();
    j["payload"] = bad;
    INFO("payload: " << bad.dump());
    const auto& e = failed(decode(text_of(j)));
    CHECK(e.code == error_code::invalid_message);
    REQUIRE(e.id);
    CHECK(*e.id == "c-1");
  }
}

// --- decode: timestamp and replyTo
// --------------------------------------------------------------------------

TEST_CASE("a numeric timestamp is accepted, integer or not") {
  auto j = base();
  j["timestamp"] = 1764000000000LL;
  CHECK(ok(decode(text_of(j))).timestamp.value() == 1764000000000.0);
  j["timestamp"] = 12.5;
  CHECK(ok(decode(text_of(j))).timestamp.value() == 12.5);
}

TEST_CASE("a timestamp that is not a number is an invalid message that carries the id") {
  for (json bad : {json("1764000000000"), json(nullptr), json(true), json::array()}) {
    auto j = base();
    j["timestamp"] = bad;
    INFO("timestamp: " << bad.dump());
    const auto& e = failed(decode(text_of(j)));
    CHECK(e.code == error_code::invalid_message);
    REQUIRE(e.id);
    CHECK(*e.id == "c-1");
  }
}

TEST_CASE("an absent timestamp stays absent after decoding") {
  CHECK_FALSE(ok(decode(text_of(base()))).timestamp);
}

TEST_CASE("a replyTo sent by a client is ignored") {
  auto j = base();
  j["replyTo"] = "someone-elses-id";
  CHECK_FALSE(ok(decode(text_of(j))).reply_to);
  j["replyTo"] = 42;  // not even checked
  CHECK_FALSE(ok(decode(text_of(j))).reply_to);
}

// --- encode
// -------------------------------------------------------------------------------------------------

TEST_CASE("an encoded message decodes back to the same fields") {
  envelope m;
  m.type = "tool_update";
  m.id = "c-\xE2\x82\xAC-1";
  m.session_id = "room-1";
  m.payload = {{"text", "hi"}, {"list", json::array({1, "two", nullptr})}};
  m.timestamp = 1764000000123.0;
  const auto& back = ok(decode(encode(m)));
  CHECK(back.type == m.type);
  CHECK(back.id == m.id);
  CHECK(back.session_id == m.session_id);
  CHECK(back.payload == m.payload);
  CHECK(back.timestamp == m.timestamp);
}

TEST_CASE("encode stamps a timestamp when the message has none") {
  envelope m;
  m.type = "pong";
  m.id = "s-1";
  const auto before = now_ms();
  const json out = json::parse(encode(m));
  const auto after = now_ms();
  REQUIRE(out.contains("timestamp"));
  REQUIRE(out["timestamp"].is_number_integer());
  CHECK(out["timestamp"].get<std::int64_t>() >= before);
  CHECK(out["timestamp"].get<std::int64_t>() <= after);
}

TEST_CASE("encode keeps a timestamp the message already has") {
  envelope m;
  m.type = "chat";
  m.id = "c-1";
  m.timestamp = 1000.0;
  CHECK(json::parse(encode(m))["timestamp"] == 1000);
}

TEST_CASE("integral timestamps are printed as integers, fractional ones as numbers") {
  envelope m;
  m.type = "chat";
  m.id = "c-1";
  m.timestamp = 1764000000000.0;
  const auto text = encode(m);
  CHECK(text.find("\"timestamp\":1764000000000") != std::string::npos);
  CHECK(text.find("1764000000000.0") == std::string::npos);
  CHECK(text.find("e+") == std::string::npos);
  m.timestamp = 1.5;
  CHECK(json::parse(encode(m))["timestamp"].get<double>() == 1.5);
}

TEST_CASE("replyTo is encoded only when it is set") {
  envelope m;
  m.type = "ack";
  m.id = "s-1";
  CHECK_FALSE(json::parse(encode(m)).contains("replyTo"));
  m.reply_to = "c-1";
  CHECK(json::parse(encode(m))["replyTo"] == "c-1");
}

TEST_CASE("sessionId is encoded only when it is set") {
  envelope m;
  m.type = "ack";
  m.id = "s-1";
  CHECK_FALSE(json::parse(encode(m)).contains("sessionId"));
  m.session_id = "room";
  CHECK(json::parse(encode(m))["sessionId"] == "room");
}

TEST_CASE("encode always writes an object payload") {
  envelope m;
  m.type = "ack";
  m.id = "s-1";
  m.payload = nullptr;
  CHECK(json::parse(encode(m))["payload"] == json::object());
}

TEST_CASE("invalid UTF-8 in payload text does not make encode throw") {
  envelope m;
  m.type = "chat";
  m.id = "c-1";
  m.payload = {{"text", std::string("bad \xFF\xC3 bytes")}};
  std::string text;
  REQUIRE_NOTHROW(text = encode(m));
  // The output is still valid JSON with the invalid bytes replaced.
  json out;
  REQUIRE_NOTHROW(out = json::parse(text));
  CHECK(out["payload"]["text"].get<std::string>().rfind("bad ", 0) == 0);
  CHECK(out["payload"]["text"].get<std::string>().find("bytes") != std::string::npos);
}

TEST_CASE("encode_shared holds the same text as encode") {
  envelope m;
  m.type = "chat";
  m.id = "c-1";
  m.timestamp = 5.0;
  auto f = encode_shared(m);
  REQUIRE(f);
  CHECK(*f == encode(m));
}

// --- classify
// -----------------------------------------------------------------------------------------------

TEST_CASE("classify names every client type of the protocol") {
  CHECK(classify("ping") == kind::ping);
  CHECK(classify("connect") == kind::connect);
  CHECK(classify("auth") == kind::auth);
  CHECK(classify("session_create") == kind::session_create);
  CHECK(classify("session_join") == kind::session_join);
  CHECK(classify("session_leave") == kind::session_leave);
  CHECK(classify("session_patch") == kind::session_patch);
  CHECK(classify("presence") == kind::presence);
  CHECK(classify("chat") == kind::chat);
  CHECK(classify("agent_register") == kind::agent_register);
  CHECK(classify("agent_unregister") == kind::agent_unregister);
  CHECK(classify("agent_status") == kind::agent_status);
  CHECK(classify("route_request") == kind::route_request);
  CHECK(classify("route_response") == kind::route_response);
}

TEST_CASE("classify marks the types only the server sends as server-only") {
  for (const char* t : {"session_info", "hello_ok", "auth_success", "ack", "pong", "error"}) {
    INFO("type: " << t);
    CHECK(classify(t) == kind::server_only);
  }
}

TEST_CASE("classify treats relayable and unknown types as other") {
  for (const char* t : {"tool_start", "tool_update", "tool_end", "whatever", "", "Chat", "ping2"}) {
    INFO("type: " << t);
    CHECK(classify(t) == kind::other);
  }
}

// --- builders
// -----------------------------------------------------------------------------------------------

TEST_CASE("make_error builds an error payload of code and message") {
  auto m = make_error(error_code::session_not_found, "no such session", std::string("c-5"));
  CHECK(m.type == "error");
  CHECK_FALSE(m.id.empty());
  CHECK(m.payload == json{{"code", "SESSION_NOT_FOUND"}, {"message", "no such session"}});
  REQUIRE(m.reply_to);
  CHECK(*m.reply_to == "c-5");
  CHECK_FALSE(m.session_id);
}

TEST_CASE("make_error includes details only when given") {
  auto with = make_error(error_code::invalid_message, "bad", std::nullopt, json{{"field", "type"}});
  CHECK(with.payload ==
        json{{"code", "INVALID_MESSAGE"}, {"message", "bad"}, {"details", {{"field", "type"}}}});
  CHECK_FALSE(with.reply_to);
  auto without = make_error(error_code::bad_json, "bad");
  CHECK_FALSE(without.payload.contains("details"));
  CHECK_FALSE(without.reply_to);
  CHECK_FALSE(json::parse(encode(without)).contains("replyTo"));
}

TEST_CASE("server events get fresh distinct ids and no replyTo") {
  auto a = make_event("presence", {{"event", "join"}}, std::string("room"));
  auto b = make_event("presence", {{"event", "join"}});
  CHECK(a.type == "presence");
  CHECK_FALSE(a.id.empty());
  CHECK(a.id != b.id);
  CHECK_FALSE(a.reply_to);
  REQUIRE(a.session_id);
  CHECK(*a.session_id == "room");
  CHECK_FALSE(b.session_id);
  CHECK(a.payload == json{{"event", "join"}});
}

TEST_CASE("a reply carries the id of the message it answers") {
  auto r = make_reply("ack", json::object(), "c-77");
  CHECK(r.type == "ack");
  REQUIRE(r.reply_to);
  CHECK(*r.reply_to == "c-77");
  CHECK(r.id != "c-77");
}

// --- error codes
// --------------------------------------------------------------------------------------------

TEST_CASE("every error code round trips through its wire spelling") {
  std::set<std::string> seen;
  for (auto code : all_error_codes) {
    const std::string name(to_string(code));
    INFO("code: " << name);
    CHECK_FALSE(name.empty());
    CHECK(seen.insert(name).second);
    auto back = error_code_from_string(name);
    REQUIRE(back);
    CHECK(*back == code);
  }
  CHECK(seen == std::set<std::string>{"BAD_JSON", "INVALID_MESSAGE", "MESSAGE_TOO_LARGE", "AUTH_REQUIRED",
                                      "AUTH_FAILED", "RATE_LIMITED", "SESSION_NOT_FOUND", "SESSION_EXISTS",
                                      "NOT_IN_SESSION", "NO_AGENT", "AGENT_CONFLICT", "ROUTE_TIMEOUT",
                                      "ROUTE_NOT_FOUND", "UNKNOWN_TYPE", "INTERNAL"});
}

TEST_CASE("an unknown error code spelling is not an error code") {
  CHECK_FALSE(error_code_from_string("NOPE"));
  CHECK_FALSE(error_code_from_string(""));
  CHECK_FALSE(error_code_from_string("bad_json"));
}

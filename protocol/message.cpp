#include "protocol/message.hpp"

#include <atomic>
#include <chrono>
#include <cmath>

#include "protocol/ids.hpp"
#include "protocol/json_bounds.hpp"

namespace sb::protocol {

namespace {

constexpr std::size_t max_type_length = 64;
constexpr std::size_t max_id_chars = 128;
constexpr std::size_t max_session_id_chars = 128;

bool valid_identifier(const json& value, std::size_t max_chars) {
  if (!value.is_string()) return false;
  const auto& text = value.get_ref<const std::string&>();
  const auto n = char_count(text);
  return n >= 1 && n <= max_chars;
}

decode_error invalid(std::string message, std::optional<std::string> id = std::nullopt) {
  return decode_error{error_code::invalid_message, std::move(message), std::move(id)};
}

std::string next_server_id() {
  // One random prefix per process plus a counter: unique across nodes without a syscall per message.
  static const std::string prefix = random_id("s-") + "-";
  static std::atomic<std::uint64_t> counter{0};
  return prefix + std::to_string(++counter);
}

}  // namespace

bool valid_type_name(std::string_view type) {
  if (type.empty() || type.size() > max_type_length) return false;
  for (char c : type) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::size_t char_count(std::string_view text) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    std::size_t len = lead < 0x80           ? 1
                      : (lead >> 5) == 0x6  ? 2
                      : (lead >> 4) == 0xe  ? 3
                      : (lead >> 3) == 0x1e ? 4
                                            : 1;
    if (i + len > text.size()) len = 1;
    i += len;
    ++count;
  }
  return count;
}

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

decode_result decode(std::string_view text, std::size_t max_depth) {
  auto parsed = parse_untrusted_json(text, max_depth);
  if (parsed.error == json_parse_error::too_deep)
    return decode_error{error_code::invalid_message,
                        "message " + describe(parsed.error, max_depth) + " (maxJsonDepth)", std::nullopt,
                        "maxJsonDepth"};
  if (!parsed.ok()) return decode_error{error_code::bad_json, "message is not valid JSON", std::nullopt};
  json doc = std::move(parsed.value);
  if (!doc.is_object()) return invalid("message must be a JSON object");

  // The id is read first so that every later error can carry replyTo.
  auto id_it = doc.find("id");
  if (id_it == doc.end()) return invalid("field 'id' is required");
  if (!valid_identifier(*id_it, max_id_chars))
    return invalid("field 'id' must be a string of 1-128 characters");
  envelope msg;
  msg.id = id_it->get<std::string>();

  auto type_it = doc.find("type");
  if (type_it == doc.end() || !type_it->is_string())
    return invalid("field 'type' is required and must be a string", msg.id);
  msg.type = type_it->get<std::string>();
  if (!valid_type_name(msg.type)) return invalid("field 'type' must match [a-z0-9_.:-]{1,64}", msg.id);

  if (auto it = doc.find("sessionId"); it != doc.end()) {
    if (!valid_identifier(*it, max_session_id_chars))
      return invalid("field 'sessionId' must be a string of 1-128 characters", msg.id);
    msg.session_id = it->get<std::string>();
  }
  if (auto it = doc.find("payload"); it != doc.end()) {
    if (!it->is_object()) return invalid("field 'payload' must be a JSON object", msg.id);
    msg.payload = std::move(*it);
  }
  if (auto it = doc.find("timestamp"); it != doc.end()) {
    if (!it->is_number()) return invalid("field 'timestamp' must be a number", msg.id);
    msg.timestamp = it->get<double>();
  }
  // A client-sent replyTo is ignored: only the server sets it.
  return msg;
}

namespace {

json to_json(const envelope& msg) {
  json out = json::object();
  out["type"] = msg.type;
  out["id"] = msg.id;
  if (msg.session_id) out["sessionId"] = *msg.session_id;
  out["payload"] = msg.payload.is_object() ? msg.payload : json::object();
  if (msg.timestamp && std::floor(*msg.timestamp) == *msg.timestamp && std::fabs(*msg.timestamp) < 9e15)
    out["timestamp"] = static_cast<std::int64_t>(*msg.timestamp);
  else if (msg.timestamp)
    out["timestamp"] = *msg.timestamp;
  else
    out["timestamp"] = now_ms();
  if (msg.reply_to) out["replyTo"] = *msg.reply_to;
  return out;
}

}  // namespace

std::string encode(const envelope& msg) {
  // Replace invalid UTF-8 rather than throw: client text is relayed as received.
  return to_json(msg).dump(-1, ' ', false, json::error_handler_t::replace);
}

frame encode_shared(const envelope& msg) { return std::make_shared<const std::string>(encode(msg)); }

kind classify(std::string_view type) {
  static constexpr std::pair<std::string_view, kind> table[] = {
      {"ping", kind::ping},
      {"connect", kind::connect},
      {"auth", kind::auth},
      {"session_create", kind::session_create},
      {"session_join", kind::session_join},
      {"session_leave", kind::session_leave},
      {"session_patch", kind::session_patch},
      {"presence", kind::presence},
      {"presence_list", kind::presence_list},
      {"chat", kind::chat},
      {"agent_register", kind::agent_register},
      {"agent_unregister", kind::agent_unregister},
      {"agent_status", kind::agent_status},
      {"route_request", kind::route_request},
      {"route_response", kind::route_response},
      {"session_info", kind::server_only},
      {"hello_ok", kind::server_only},
      {"auth_success", kind::server_only},
      {"ack", kind::server_only},
      {"pong", kind::server_only},
      {"error", kind::server_only},
  };
  for (const auto& [name, k] : table)
    if (name == type) return k;
  return kind::other;
}

envelope make_event(std::string type, json payload, std::optional<std::string> session_id) {
  envelope msg;
  msg.type = std::move(type);
  msg.id = next_server_id();
  msg.session_id = std::move(session_id);
  msg.payload = std::move(payload);
  return msg;
}

envelope make_reply(std::string type, json payload, std::string reply_to) {
  envelope msg = make_event(std::move(type), std::move(payload));
  msg.reply_to = std::move(reply_to);
  return msg;
}

envelope make_error(error_code code, std::string message, std::optional<std::string> reply_to,
                    std::optional<json> details) {
  json payload = {{"code", std::string(to_string(code))}, {"message", std::move(message)}};
  if (details) payload["details"] = std::move(*details);
  envelope msg = make_event("error", std::move(payload));
  msg.reply_to = std::move(reply_to);
  return msg;
}

}  // namespace sb::protocol

#pragma once
// The gateway message of PROTOCOL.md ("Message"): decoding with every field rule, encoding, and builders for
// the server's own messages. Pure: no sockets, no threads.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "protocol/errors.hpp"

namespace sb::protocol {

using json = nlohmann::json;

/// A serialized frame, built once and shared by every recipient of a broadcast.
using frame = std::shared_ptr<const std::string>;

struct envelope {
  std::string type;
  std::string id;
  std::optional<std::string> session_id;
  json payload = json::object();
  std::optional<double> timestamp;
  std::optional<std::string> reply_to;
};

/// Why a text frame was not a valid message. `id` is set when the id could be read, so the error can carry
/// `replyTo`.
struct decode_error {
  error_code code;
  std::string message;
  std::optional<std::string> id;
  const char* limit = nullptr;  // the config key of the bound that refused the message, if one did
};

using decode_result = std::variant<envelope, decode_error>;

/// Decodes one text frame. Nesting deeper than `max_depth` is INVALID_MESSAGE before any value is built.
decode_result decode(std::string_view text, std::size_t max_depth = 64);

/// Serializes `msg`; the server stamps `timestamp` when the message has none.
std::string encode(const envelope& msg);
frame encode_shared(const envelope& msg);

/// What the gateway does with a message type (PROTOCOL.md "Types").
enum class kind {
  ping,
  connect,
  auth,
  session_create,
  session_join,
  session_leave,
  session_patch,
  presence,
  presence_list,
  chat,
  agent_register,
  agent_unregister,
  agent_status,
  route_request,
  route_response,
  server_only,  // a type only the server sends: never relayed
  other,        // relayed when it has a sessionId, else UNKNOWN_TYPE or a registered handler
};

kind classify(std::string_view type);

bool valid_type_name(std::string_view type);
/// Length in Unicode code points, as the protocol's "chars"; invalid UTF-8 counts bytes.
std::size_t char_count(std::string_view text);

std::int64_t now_ms();

/// A server-initiated message (no replyTo) with a fresh server id.
envelope make_event(std::string type, json payload, std::optional<std::string> session_id = std::nullopt);
/// The one reply to client message `reply_to`.
envelope make_reply(std::string type, json payload, std::string reply_to);
/// An `error` message; `reply_to` only when the offending message's id was read.
envelope make_error(error_code code, std::string message, std::optional<std::string> reply_to = std::nullopt,
                    std::optional<json> details = std::nullopt);

}  // namespace sb::protocol

#pragma once
// Typed values carried between the gateway's actors. No JSON text is passed for dispatch: the message type
// is decided once, on the connection's strand, and travels as C++ types from there on.
#include <chrono>
#include <optional>
#include <string>

#include "protocol/errors.hpp"
#include "protocol/message.hpp"
#include "protocol/payloads.hpp"
#include "transport/connection.hpp"

namespace sb::actors {

using json = nlohmann::json;
using steady_time = std::chrono::steady_clock::time_point;

/// One decoded frame (or why it did not decode) from a client connection.
struct inbound_message {
  protocol::decode_result msg;
  steady_time received;
};

/// A session member: who, and how to reach its connection (a broadcast goes straight to the socket).
struct member {
  std::string client_id;
  transport::sink_ptr sink;
};

/// The answer to a state-changing request: a body, or a protocol error for the client.
struct op_result {
  std::optional<protocol::error_code> error;
  std::string message;
  json body;

  static op_result ok(json body = json::object()) { return {std::nullopt, {}, std::move(body)}; }
  static op_result fail(protocol::error_code code, std::string message) {
    return {code, std::move(message), json::object()};
  }
};

}  // namespace sb::actors

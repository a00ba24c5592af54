#include "protocol/errors.hpp"

namespace sb::protocol {

std::string_view to_string(error_code code) {
  switch (code) {
    case error_code::bad_json:
      return "BAD_JSON";
    case error_code::invalid_message:
      return "INVALID_MESSAGE";
    case error_code::message_too_large:
      return "MESSAGE_TOO_LARGE";
    case error_code::auth_required:
      return "AUTH_REQUIRED";
    case error_code::auth_failed:
      return "AUTH_FAILED";
    case error_code::rate_limited:
      return "RATE_LIMITED";
    case error_code::session_not_found:
      return "SESSION_NOT_FOUND";
    case error_code::session_exists:
      return "SESSION_EXISTS";
    case error_code::not_in_session:
      return "NOT_IN_SESSION";
    case error_code::no_agent:
      return "NO_AGENT";
    case error_code::agent_conflict:
      return "AGENT_CONFLICT";
    case error_code::route_timeout:
      return "ROUTE_TIMEOUT";
    case error_code::route_not_found:
      return "ROUTE_NOT_FOUND";
    case error_code::unknown_type:
      return "UNKNOWN_TYPE";
    case error_code::internal:
      return "INTERNAL";
  }
  return "INTERNAL";
}

std::optional<error_code> error_code_from_string(std::string_view text) {
  for (auto code : all_error_codes)
    if (to_string(code) == text) return code;
  return std::nullopt;
}

}  // namespace sb::protocol

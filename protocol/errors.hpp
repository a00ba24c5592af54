#pragma once
// Error and close codes of PROTOCOL.md ("Errors"): the single place where they are named.
#include <cstdint>
#include <optional>
#include <string_view>

namespace sb::protocol {

enum class error_code {
  bad_json,
  invalid_message,
  message_too_large,
  auth_required,
  auth_failed,
  rate_limited,
  session_not_found,
  session_exists,
  not_in_session,
  no_agent,
  agent_conflict,
  route_timeout,
  route_not_found,
  unknown_type,
  internal,
};

inline constexpr error_code all_error_codes[] = {
    error_code::bad_json,          error_code::invalid_message, error_code::message_too_large,
    error_code::auth_required,     error_code::auth_failed,     error_code::rate_limited,
    error_code::session_not_found, error_code::session_exists,  error_code::not_in_session,
    error_code::no_agent,          error_code::agent_conflict,  error_code::route_timeout,
    error_code::route_not_found,   error_code::unknown_type,    error_code::internal,
};

/// The wire spelling, e.g. "SESSION_NOT_FOUND".
std::string_view to_string(error_code code);
std::optional<error_code> error_code_from_string(std::string_view text);

/// WebSocket close codes the gateway uses.
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;     // drain or shutdown
inline constexpr std::uint16_t abnormal = 1006;       // never sent; reported when the peer vanished
inline constexpr std::uint16_t too_large = 1009;      // maxPayload exceeded
inline constexpr std::uint16_t kicked = 4000;         // operator kick
inline constexpr std::uint16_t auth_failures = 4003;  // five failed auth attempts
inline constexpr std::uint16_t policy = 4008;         // rate limit or slow consumer
}  // namespace close_code

}  // namespace sb::protocol

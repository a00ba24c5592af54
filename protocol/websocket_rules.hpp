#pragma once
// RFC 6455 rules Beast leaves to the application: which handshake keys and close codes are acceptable.
#include <cstdint>
#include <string_view>

namespace sb::protocol {

/// RFC 6455 4.2.1: Sec-WebSocket-Key is the base64 form of a 16-byte nonce, i.e. 22 base64 characters and
/// "==". Anything else is a malformed handshake (HTTP 400), not an upgrade.
bool valid_websocket_key(std::string_view key);

/// RFC 6455 7.4: a close code a peer may send. 1004-1006 and 1015 are never sent on the wire, 1016-2999 are
/// reserved for the protocol, and nothing at or above 5000 is defined; receiving one fails the connection
/// with 1002 instead of echoing it.
bool valid_close_code(std::uint16_t code);

/// Close code for a peer that broke the protocol (an invalid close code, for one).
inline constexpr std::uint16_t protocol_error_close = 1002;
/// Close code for a message whose data is not what its frame says (corrupt compressed data).
inline constexpr std::uint16_t invalid_payload_close = 1007;

}  // namespace sb::protocol

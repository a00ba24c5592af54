#pragma once
// Base64 (RFC 4648 §4) and base64url (§5) over byte strings. Decoders take untrusted text and report bad
// input as nullopt; they never throw.
#include <optional>
#include <string>
#include <string_view>

namespace sb::tunnel {

/// Standard alphabet with '=' padding: the form of `hostPublicKeys` in Dev Tunnels endpoints.
std::string base64_encode(std::string_view bytes);
/// Standard alphabet; padding optional. Rejects other characters (including whitespace) and non-zero
/// trailing bits, so every byte string has exactly one accepted encoding.
std::optional<std::string> base64_decode(std::string_view text);

/// URL-safe alphabet without padding, as JWS requires (RFC 7515 §2).
std::string base64url_encode(std::string_view bytes);
/// URL-safe alphabet; rejects '=' padding, other characters and non-zero trailing bits.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace sb::tunnel

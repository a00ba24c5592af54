#pragma once
// Tunnel access tokens: compact JWS (RFC 7515/7519) signed with HS256 by the relay, carrying the claims the
// Dev Tunnels SDK reads (`TunnelAccessTokenProperties`: tunnelId, clusterId, scp, exp, iss; see
// devtunnels-protocol.md §7 and TUNNEL.md "Management API"). Tokens arrive from the network, so every check
// reports a value; nothing here throws on a bad token.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sb::tunnel {

struct token_claims {
  std::string tunnel_id;            // "tunnelId"
  std::string cluster_id;           // "clusterId"
  std::vector<std::string> scopes;  // "scp": one space-separated string on the wire, as the SDK splits it
  std::int64_t exp = 0;             // seconds since the epoch
  std::int64_t iat = 0;
  std::string iss;

  bool has_scope(std::string_view scope) const;
};

enum class token_error {
  malformed,        // not three base64url segments of JSON objects, claims of the wrong type, or too large
  wrong_algorithm,  // header alg other than HS256; "none" is never accepted
  bad_signature,
  expired,
};
std::string_view to_string(token_error e);

/// Secret for HS256. RFC 7518 §3.2 wants at least as many bits as the hash output, so keys are 32+ bytes.
struct signing_key {
  std::string bytes;
};
inline constexpr std::size_t signing_key_size = 32;
/// Tokens longer than this are rejected before any decoding work.
inline constexpr std::size_t max_token_size = 8192;

/// 32 bytes from OpenSSL's CSPRNG.
signing_key generate_signing_key();

/// Writes the key as hex (one line) with mode 0600, replacing the file atomically. Returns an error message.
std::optional<std::string> save_signing_key(const std::string& path, const signing_key& key);
/// Reads a key written as hex, base64 or base64url (surrounding whitespace ignored); it must decode to at
/// least 32 bytes. Text that is valid hex of 64+ digits is read as hex.
std::variant<signing_key, std::string> load_signing_key(const std::string& path);
/// The text form of `load_signing_key`, for keys that come from somewhere other than a file.
std::optional<signing_key> parse_signing_key(std::string_view text);

/// header {"alg":"HS256","typ":"JWT"}, payload with the non-empty claims, HMAC-SHA256 signature.
std::string issue_token(const token_claims& claims, const signing_key& key);

/// Checks structure, algorithm, signature (in constant time), then expiry against `now` (seconds since the
/// epoch; a token is expired from its `exp` second on). The payload is only parsed once the signature holds.
std::variant<token_claims, token_error> verify_token(std::string_view token, const signing_key& key,
                                                     std::int64_t now);

/// Reads the claims without checking signature or expiry: for a host or client that holds a token issued by
/// someone else and only needs to know when it expires. `exp`/`iat` are 0 when absent.
std::variant<token_claims, token_error> parse_token_unverified(std::string_view token);

}  // namespace sb::tunnel

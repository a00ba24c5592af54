#include "tunnel/jwt.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "tunnel/files.hpp"

#include "protocol/json_bounds.hpp"
#include "tunnel/base64.hpp"

namespace sb::tunnel {

namespace {

using json = nlohmann::json;

// The only header we issue; verification reads the header instead of comparing it to this text.
constexpr std::string_view token_header = R"({"alg":"HS256","typ":"JWT"})";
constexpr std::string_view hs256 = "HS256";
// A key file holds one line; anything much larger is not a key.
constexpr std::size_t max_key_file_size = 4096;

std::string hmac_sha256(const signing_key& key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_len = 0;
  const unsigned char* ok =
      HMAC(EVP_sha256(), key.bytes.data(), static_cast<int>(key.bytes.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &out_len);
  if (ok == nullptr) throw std::runtime_error("HMAC-SHA256 failed");
  return std::string(reinterpret_cast<const char*>(out), out_len);
}

std::optional<json> decode_json_object(std::string_view segment) {
  auto text = base64url_decode(segment);
  if (!text) return std::nullopt;
  // Token segments come from whoever holds the token: bounded like any network input.
  auto parsed = protocol::parse_untrusted_json(*text);
  if (!parsed.ok() || !parsed.value.is_object()) return std::nullopt;
  return std::move(parsed.value);
}

// Absent and null read as "not given"; any other type than the expected one makes the token malformed.
bool read_string(const json& object, const char* name, std::string& out) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return true;
  if (!it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

bool read_seconds(const json& object, const char* name, std::int64_t& out, bool& present) {
  auto it = object.find(name);
  present = false;
  if (it == object.end() || it->is_null()) return true;
  if (it->is_number_integer()) {
    // Unsigned values above int64 max wrap; they are nonsense either way, so refuse them.
    if (it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
      return false;
    out = it->get<std::int64_t>();
  } else if (it->is_number_float()) {
    // NumericDate may carry a fraction (RFC 7519 §2).
    const double d = it->get<double>();
    if (!std::isfinite(d) || d < -9.2e18 || d > 9.2e18) return false;
    out = static_cast<std::int64_t>(std::floor(d));
  } else {
    return false;
  }
  present = true;
  return true;
}

std::vector<std::string> split_scopes(const std::string& scp) {
  std::vector<std::string> scopes;
  std::istringstream in(scp);
  for (std::string scope; in >> scope;) scopes.push_back(scope);
  return scopes;
}

struct parsed_claims {
  token_claims claims;
  bool has_exp = false;
};

std::optional<parsed_claims> claims_from_json(const json& payload) {
  parsed_claims out;
  std::string scp;
  bool has_iat = false;
  if (!read_string(payload, "tunnelId", out.claims.tunnel_id) ||
      !read_string(payload, "clusterId", out.claims.cluster_id) ||
      !read_string(payload, "iss", out.claims.iss) || !read_string(payload, "scp", scp) ||
      !read_seconds(payload, "exp", out.claims.exp, out.has_exp) ||
      !read_seconds(payload, "iat", out.claims.iat, has_iat))
    return std::nullopt;
  out.claims.scopes = split_scopes(scp);
  return out;
}

struct token_parts {
  std::string_view header, payload, signature, signed_part;
};

std::optional<token_parts> split_token(std::string_view token) {
  if (token.empty() || token.size() > max_token_size) return std::nullopt;
  const auto first = token.find('.');
  if (first == std::string_view::npos) return std::nullopt;
  const auto second = token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos)
    return std::nullopt;
  token_parts parts;
  parts.header = token.substr(0, first);
  parts.payload = token.substr(first + 1, second - first - 1);
  parts.signature = token.substr(second + 1);
  parts.signed_part = token.substr(0, second);
  return parts;
}

bool is_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::string hex_decode(std::string_view text) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    return (std::tolower(static_cast<unsigned char>(c)) - 'a') + 10;
  };
  std::string out;
  for (std::size_t i = 0; i + 1 < text.size(); i += 2)
    out.push_back(static_cast<char>(nibble(text[i]) << 4 | nibble(text[i + 1])));
  return out;
}

std::string hex_encode(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

}  // namespace

bool token_claims::has_scope(std::string_view scope) const {
  return std::find(scopes.begin(), scopes.end(), scope) != scopes.end();
}

std::string_view to_string(token_error e) {
  switch (e) {
    case token_error::malformed:
      return "malformed token";
    case token_error::wrong_algorithm:
      return "token algorithm is not HS256";
    case token_error::bad_signature:
      return "token signature does not match";
    case token_error::expired:
      return "token has expired";
  }
  return "invalid token";
}

signing_key generate_signing_key() {
  signing_key key;
  key.bytes.resize(signing_key_size);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.bytes.data()), static_cast<int>(key.bytes.size())) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return key;
}

std::optional<std::string> save_signing_key(const std::string& path, const signing_key& key) {
  return write_private_file(path, hex_encode(key.bytes) + "\n");
}

std::optional<signing_key> parse_signing_key(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return std::nullopt;
  text = text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
  std::optional<std::string> bytes;
  if (text.size() >= 2 * signing_key_size && text.size() % 2 == 0 && is_hex(text)) {
    bytes = hex_decode(text);
  } else {
    bytes = base64_decode(text);
    if (!bytes) bytes = base64url_decode(text);
  }
  if (!bytes || bytes->size() < signing_key_size) return std::nullopt;
  return signing_key{std::move(*bytes)};
}

std::variant<signing_key, std::string> load_signing_key(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return errno_message("cannot read signing key", path);
  std::string text(max_key_file_size + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > max_key_file_size) return "signing key file " + path + " is too large";
  auto key = parse_signing_key(text);
  if (!key) return "signing key file " + path + " holds no hex or base64 key of at least 32 bytes";
  return std::move(*key);
}

std::string issue_token(const token_claims& claims, const signing_key& key) {
  json payload = json::object();
  if (!claims.tunnel_id.empty()) payload["tunnelId"] = claims.tunnel_id;
  if (!claims.cluster_id.empty()) payload["clusterId"] = claims.cluster_id;
  if (!claims.scopes.empty()) {
    std::string scp;
    for (const auto& scope : claims.scopes) {
      if (!scp.empty()) scp.push_back(' ');
      scp += scope;
    }
    payload["scp"] = scp;
  }
  payload["exp"] = claims.exp;
  payload["iat"] = claims.iat;
  if (!claims.iss.empty()) payload["iss"] = claims.iss;

  std::string token = base64url_encode(token_header);
  token.push_back('.');
  token += base64url_encode(payload.dump(-1, ' ', false, json::error_handler_t::replace));
  const std::string signature = base64url_encode(hmac_sha256(key, token));
  token.push_back('.');
  token += signature;
  return token;
}

std::variant<token_claims, token_error> verify_token(std::string_view token, const signing_key& key,
                                                     std::int64_t now) {
  const auto parts = split_token(token);
  if (!parts) return token_error::malformed;
  const auto header = decode_json_object(parts->header);
  if (!header) return token_error::malformed;
  const auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string()) return token_error::malformed;
  // The algorithm comes from the key, not the token: anything but HS256 (above all "none") is refused
  // before the signature is looked at (RFC 8725 §3.1).
  if (alg->get<std::string>() != hs256) return token_error::wrong_algorithm;

  // Comparing the canonical encoding also rejects a signature re-encoded with other trailing bits.
  const std::string expected = base64url_encode(hmac_sha256(key, parts->signed_part));
  if (parts->signature.size() != expected.size() ||
      CRYPTO_memcmp(parts->signature.data(), expected.data(), expected.size()) != 0)
    return token_error::bad_signature;

  const auto payload = decode_json_object(parts->payload);
  if (!payload) return token_error::malformed;
  auto parsed = claims_from_json(*payload);
  if (!parsed || !parsed->has_exp) return token_error::malformed;
  if (now >= parsed->claims.exp) return token_error::expired;
  return std::move(parsed->claims);
}

std::variant<token_claims, token_error> parse_token_unverified(std::string_view token) {
  const auto parts = split_token(token);
  if (!parts) return token_error::malformed;
  const auto payload = decode_json_object(parts->payload);
  if (!payload) return token_error::malformed;
  auto parsed = claims_from_json(*payload);
  if (!parsed) return token_error::malformed;
  return std::move(parsed->claims);
}

}  // namespace sb::tunnel

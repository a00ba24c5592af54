// Tunnel access tokens: HS256 issue and verify, every way a token can be wrong, and the signing key file.
#include "tunnel/jwt.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "tunnel/base64.hpp"

using namespace sb::tunnel;
using json = nlohmann::json;

namespace {

constexpr std::int64_t now = 1'700'000'000;

signing_key test_key(char fill = 'k') { return signing_key{std::string(32, fill)}; }

token_claims sample_claims() {
  token_claims c;
  c.tunnel_id = "happy-lake-x7k2q9b";
  c.cluster_id = "local";
  c.scopes = {"host", "connect"};
  c.iat = now;
  c.exp = now + 3600;
  c.iss = "http://127.0.0.1:8090";
  return c;
}

// Signs any header/payload text, so tests can build tokens issue_token would never produce.
std::string sign(const std::string& header, const std::string& payload, const signing_key& key) {
  const std::string signed_part = base64url_encode(header) + "." + base64url_encode(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.bytes.data(), static_cast<int>(key.bytes.size()),
       reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac, &len);
  return signed_part + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), len));
}

const std::string hs256_header = R"({"alg":"HS256","typ":"JWT"})";

std::vector<std::string> segments(const std::string& token) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (std::size_t dot; (dot = token.find('.', start)) != std::string::npos; start = dot + 1)
    out.push_back(token.substr(start, dot - start));
  out.push_back(token.substr(start));
  return out;
}

token_error error_of(const std::variant<token_claims, token_error>& r) {
  REQUIRE(std::holds_alternative<token_error>(r));
  return std::get<token_error>(r);
}

struct temp_dir {
  std::string path;
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sb-jwt-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
};

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace

TEST_CASE("an issued token verifies and yields the claims it was issued with") {
  const auto token = issue_token(sample_claims(), test_key());
  const auto result = verify_token(token, test_key(), now);
  REQUIRE(std::holds_alternative<token_claims>(result));
  const auto& c = std::get<token_claims>(result);
  CHECK(c.tunnel_id == "happy-lake-x7k2q9b");
  CHECK(c.cluster_id == "local");
  CHECK(c.scopes == std::vector<std::string>{"host", "connect"});
  CHECK(c.iat == now);
  CHECK(c.exp == now + 3600);
  CHECK(c.iss == "http://127.0.0.1:8090");
  CHECK(c.has_scope("host"));
  CHECK_FALSE(c.has_scope("manage"));
}

TEST_CASE("a token is three base64url segments with an HS256 JWT header") {
  const auto token = issue_token(sample_claims(), test_key());
  const auto parts = segments(token);
  REQUIRE(parts.size() == 3);
  CHECK(token.find('=') == std::string::npos);
  CHECK(json::parse(*base64url_decode(parts[0])) == json{{"alg", "HS256"}, {"typ", "JWT"}});
  CHECK(base64url_decode(parts[2])->size() == 32);
}

TEST_CASE("scopes travel as one space-separated scp string and times as numeric seconds") {
  const auto parts = segments(issue_token(sample_claims(), test_key()));
  const auto payload = json::parse(*base64url_decode(parts[1]));
  CHECK(payload["scp"] == "host connect");
  CHECK(payload["tunnelId"] == "happy-lake-x7k2q9b");
  CHECK(payload["clusterId"] == "local");
  CHECK(payload["iss"] == "http://127.0.0.1:8090");
  CHECK(payload["exp"].is_number_integer());
  CHECK(payload["iat"].is_number_integer());
  CHECK(payload["exp"] == now + 3600);
}

TEST_CASE("a token whose payload was changed fails the signature check") {
  const auto parts = segments(issue_token(sample_claims(), test_key()));
  auto claims = sample_claims();
  claims.scopes = {"manage"};
  const auto forged_parts = segments(issue_token(claims, test_key('x')));
  const std::string forged = parts[0] + "." + forged_parts[1] + "." + parts[2];
  CHECK(error_of(verify_token(forged, test_key(), now)) == token_error::bad_signature);
}

TEST_CASE("a token whose signature was changed fails the signature check") {
  const auto token = issue_token(sample_claims(), test_key());
  std::string flipped = token;
  flipped[flipped.size() - 5] = flipped[flipped.size() - 5] == 'A' ? 'B' : 'A';
  CHECK(error_of(verify_token(flipped, test_key(), now)) == token_error::bad_signature);
  CHECK(error_of(verify_token(token.substr(0, token.size() - 1), test_key(), now)) ==
        token_error::bad_signature);
  CHECK(error_of(verify_token(token + "A", test_key(), now)) == token_error::bad_signature);
}

TEST_CASE("a signature re-encoded with different trailing bits is refused") {
  const auto token = issue_token(sample_claims(), test_key());
  // 32 bytes encode to 43 characters whose last one carries 2 unused bits.
  std::string alias = token;
  const char last = alias.back();
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  alias.back() = alphabet[alphabet.find(last) | 1];
  if (alias == token) alias.back() = alphabet[alphabet.find(last) | 2];
  CHECK(error_of(verify_token(alias, test_key(), now)) == token_error::bad_signature);
}

TEST_CASE("a token signed with another key fails the signature check") {
  const auto token = issue_token(sample_claims(), test_key('a'));
  CHECK(error_of(verify_token(token, test_key('b'), now)) == token_error::bad_signature);
}

TEST_CASE("a token is expired from its exp second on") {
  const auto token = issue_token(sample_claims(), test_key());
  CHECK(std::holds_alternative<token_claims>(verify_token(token, test_key(), now + 3599)));
  CHECK(error_of(verify_token(token, test_key(), now + 3600)) == token_error::expired);
  CHECK(error_of(verify_token(token, test_key(), now + 100000)) == token_error::expired);
}

TEST_CASE("a token with alg none is refused even without a signature") {
  const std::string payload = json{{"tunnelId", "t1"}, {"scp", "manage"}, {"exp", now + 60}}.dump();
  const std::string unsigned_token =
      base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." + base64url_encode(payload) + ".";
  CHECK(error_of(verify_token(unsigned_token, test_key(), now)) == token_error::wrong_algorithm);
  // Signed with our key and still refused: the algorithm is ours to choose, not the token's.
  CHECK(error_of(verify_token(sign(R"({"alg":"none"})", payload, test_key()), test_key(), now)) ==
        token_error::wrong_algorithm);
}

TEST_CASE("tokens of other algorithms are refused") {
  const std::string payload = json{{"exp", now + 60}}.dump();
  for (const char* alg : {"HS512", "RS256", "ES256", "hs256", ""}) {
    INFO(alg);
    const auto token = sign(json{{"alg", alg}}.dump(), payload, test_key());
    CHECK(error_of(verify_token(token, test_key(), now)) == token_error::wrong_algorithm);
  }
}

TEST_CASE("tokens without three segments are malformed") {
  const auto token = issue_token(sample_claims(), test_key());
  for (const std::string& bad : {std::string(), std::string("abc"), std::string("a.b"), token + ".x",
                                 std::string(".."), std::string("...")}) {
    INFO(bad);
    CHECK(error_of(verify_token(bad, test_key(), now)) == token_error::malformed);
    CHECK(error_of(parse_token_unverified(bad)) == token_error::malformed);
  }
}

TEST_CASE("tokens with undecodable or non-JSON segments are malformed") {
  const std::string payload = json{{"exp", now + 60}}.dump();
  const auto good = sign(hs256_header, payload, test_key());
  const auto parts = segments(good);
  CHECK(error_of(verify_token("!!!." + parts[1] + "." + parts[2], test_key(), now)) ==
        token_error::malformed);
  CHECK(error_of(verify_token(base64url_encode("not json") + "." + parts[1] + "." + parts[2], test_key(),
                              now)) == token_error::malformed);
  CHECK(error_of(verify_token(base64url_encode("[1,2]") + "." + parts[1] + "." + parts[2], test_key(),
                              now)) == token_error::malformed);
  CHECK(error_of(verify_token(sign(R"({"typ":"JWT"})", payload, test_key()), test_key(), now)) ==
        token_error::malformed);
  // Correctly signed, but the payload is not a JSON object.
  CHECK(error_of(verify_token(sign(hs256_header, "not json", test_key()), test_key(), now)) ==
        token_error::malformed);
  CHECK(error_of(verify_token(sign(hs256_header, "42", test_key()), test_key(), now)) ==
        token_error::malformed);
  CHECK(error_of(parse_token_unverified(parts[0] + ".%%%." + parts[2])) == token_error::malformed);
}

TEST_CASE("claims of the wrong type make a token malformed") {
  for (const json& payload : {json{{"exp", "soon"}}, json{{"exp", now + 60}, {"scp", json::array({"host"})}},
                              json{{"exp", now + 60}, {"tunnelId", 7}},
                              json{{"exp", now + 60}, {"iat", true}}, json{{"exp", 1e300}}}) {
    INFO(payload.dump());
    CHECK(error_of(verify_token(sign(hs256_header, payload.dump(), test_key()), test_key(), now)) ==
          token_error::malformed);
  }
}

TEST_CASE("a verified token must carry exp") {
  const auto token = sign(hs256_header, json{{"tunnelId", "t1"}, {"scp", "connect"}}.dump(), test_key());
  CHECK(error_of(verify_token(token, test_key(), now)) == token_error::malformed);
}

TEST_CASE("a fractional exp counts from its whole second") {
  const auto token = sign(hs256_header, json{{"exp", now + 0.5}}.dump(), test_key());
  CHECK(error_of(verify_token(token, test_key(), now)) == token_error::expired);
  CHECK(std::holds_alternative<token_claims>(verify_token(token, test_key(), now - 1)));
}

TEST_CASE("oversized tokens are refused before decoding") {
  const std::string huge = std::string(max_token_size, 'a') + ".b.c";
  CHECK(error_of(verify_token(huge, test_key(), now)) == token_error::malformed);
  CHECK(error_of(parse_token_unverified(huge)) == token_error::malformed);
}

TEST_CASE("parse_token_unverified reads the claims of an expired token signed by someone else") {
  const auto token = issue_token(sample_claims(), test_key('z'));
  const auto result = parse_token_unverified(token);
  REQUIRE(std::holds_alternative<token_claims>(result));
  CHECK(std::get<token_claims>(result).exp == now + 3600);
  CHECK(std::get<token_claims>(result).scopes == std::vector<std::string>{"host", "connect"});
  // A token without exp (not ours) still parses, with exp 0.
  const auto no_exp = sign(hs256_header, json{{"scp", "connect"}}.dump(), test_key());
  REQUIRE(std::holds_alternative<token_claims>(parse_token_unverified(no_exp)));
  CHECK(std::get<token_claims>(parse_token_unverified(no_exp)).exp == 0);
}

TEST_CASE("random text never crashes the verifier") {
  std::mt19937 rng(42);
  const std::string alphabet = "ABCxyz019-_.=+/{}\":, \x01\xff";
  for (int i = 0; i < 2000; ++i) {
    std::string text(rng() % 80, ' ');
    for (auto& c : text) c = alphabet[rng() % alphabet.size()];
    auto r = verify_token(text, test_key(), now);
    CHECK(std::holds_alternative<token_error>(r));
    (void)parse_token_unverified(text);
  }
}

TEST_CASE("generated signing keys are 32 random bytes") {
  const auto a = generate_signing_key();
  const auto b = generate_signing_key();
  CHECK(a.bytes.size() == signing_key_size);
  CHECK(a.bytes != b.bytes);
}

TEST_CASE("a saved signing key loads back, from a file only its owner can read") {
  temp_dir dir;
  const std::string path = dir.path + "/signing-key";
  const auto key = generate_signing_key();
  REQUIRE_FALSE(save_signing_key(path, key));
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto loaded = load_signing_key(path);
  REQUIRE(std::holds_alternative<signing_key>(loaded));
  CHECK(std::get<signing_key>(loaded).bytes == key.bytes);
  // Saving again replaces the file and leaves no temporary file behind.
  REQUIRE_FALSE(save_signing_key(path, generate_signing_key()));
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path), std::filesystem::directory_iterator()) ==
        1);
}

TEST_CASE("signing keys load from hex, base64 and base64url text") {
  temp_dir dir;
  const std::string bytes(32, '\xfb');
  const std::string path = dir.path + "/key";
  write_text(path, std::string(64, 'f') + "\n");
  CHECK(std::get<signing_key>(load_signing_key(path)).bytes == std::string(32, '\xff'));
  write_text(path, "  " + base64_encode(bytes) + "\n");
  CHECK(std::get<signing_key>(load_signing_key(path)).bytes == bytes);
  write_text(path, base64url_encode(bytes));
  CHECK(std::get<signing_key>(load_signing_key(path)).bytes == bytes);
  CHECK(parse_signing_key(base64_encode(std::string(48, 'q')))->bytes == std::string(48, 'q'));
}

TEST_CASE("short, garbled or missing signing key files are errors") {
  temp_dir dir;
  const std::string path = dir.path + "/key";
  CHECK(std::holds_alternative<std::string>(load_signing_key(path)));
  write_text(path, base64_encode(std::string(16, 'x')));
  CHECK(std::holds_alternative<std::string>(load_signing_key(path)));
  write_text(path, "not a key at all!");
  CHECK(std::holds_alternative<std::string>(load_signing_key(path)));
  write_text(path, "");
  CHECK(std::holds_alternative<std::string>(load_signing_key(path)));
  write_text(path, std::string(100000, 'a'));
  CHECK(std::holds_alternative<std::string>(load_signing_key(path)));
}

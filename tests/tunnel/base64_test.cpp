// Base64 and base64url: RFC 4648 vectors, strict decoding of untrusted text.
#include "tunnel/base64.hpp"

#include <catch2/catch.hpp>
#include <random>
#include <string>

using namespace sb::tunnel;

TEST_CASE("base64 encodes the RFC 4648 test vectors with padding") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foob") == "Zm9vYg==");
  CHECK(base64_encode("fooba") == "Zm9vYmE=");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
}

TEST_CASE("base64url encodes without padding and with the URL-safe alphabet") {
  CHECK(base64url_encode("f") == "Zg");
  CHECK(base64url_encode("fo") == "Zm8");
  CHECK(base64url_encode("foobar") == "Zm9vYmFy");
  CHECK(base64url_encode(std::string("\xfb\xff\xbf", 3)) == "-_-_");
  CHECK(base64_encode(std::string("\xfb\xff\xbf", 3)) == "+/+/");
}

TEST_CASE("base64 decodes with or without padding") {
  CHECK(base64_decode("Zm9vYg==") == std::string("foob"));
  CHECK(base64_decode("Zm9vYg") == std::string("foob"));
  CHECK(base64_decode("Zm9vYmE=") == std::string("fooba"));
  CHECK(base64_decode("") == std::string());
}

TEST_CASE("base64 decoding refuses foreign characters, misplaced padding and stray bits") {
  CHECK_FALSE(base64_decode("Zm9v YmFy"));
  CHECK_FALSE(base64_decode("Zm9v\nYmFy"));
  CHECK_FALSE(base64_decode("Zm9-"));
  CHECK_FALSE(base64_decode("Z==="));
  CHECK_FALSE(base64_decode("Zg=a"));
  CHECK_FALSE(base64_decode("Zm9vY"));  // one character cannot hold a byte
  CHECK_FALSE(base64_decode("Zh=="));   // "Zg==" with non-zero trailing bits
}

TEST_CASE("base64url decoding refuses padding, the standard alphabet and stray bits") {
  CHECK(base64url_decode("-_-_") == std::string("\xfb\xff\xbf", 3));
  CHECK_FALSE(base64url_decode("Zg=="));
  CHECK_FALSE(base64url_decode("+/+/"));
  CHECK_FALSE(base64url_decode("Zh"));
  CHECK_FALSE(base64url_decode("Z"));
}

TEST_CASE("every byte string survives a round trip through both encodings") {
  std::mt19937 rng(7);
  for (std::size_t n = 0; n < 100; ++n) {
    std::string bytes(n, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    CHECK(base64_decode(base64_encode(bytes)) == bytes);
    CHECK(base64url_decode(base64url_encode(bytes)) == bytes);
  }
}

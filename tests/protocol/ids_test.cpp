// Identifier and secret generation, constant-time comparison and the static token validator.
#include "protocol/ids.hpp"

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

#include "protocol/auth.hpp"

using namespace sb::protocol;

TEST_CASE("random_id is the prefix followed by 16 lowercase hex digits") {
  for (const std::string& prefix : {std::string("c-"), std::string("node-"), std::string()}) {
    const auto id = random_id(prefix);
    INFO("id: " << id);
    REQUIRE(id.size() == prefix.size() + 16);
    CHECK(id.compare(0, prefix.size(), prefix) == 0);
    CHECK(id.find_first_not_of("0123456789abcdef", prefix.size()) == std::string::npos);
  }
}

TEST_CASE("random ids do not repeat") {
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) seen.insert(random_id("x-"));
  CHECK(seen.size() == 10000);
}

TEST_CASE("random ids use every hex digit") {
  std::set<char> digits;
  for (int i = 0; i < 200; ++i)
    for (char c : random_id("")) digits.insert(c);
  CHECK(digits.size() == 16);
}

TEST_CASE("random_token has one URL-safe character per requested byte") {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  CHECK(random_token().size() == 32);
  for (std::size_t n : {1u, 16u, 32u, 100u}) {
    const auto token = random_token(n);
    INFO("token: " << token);
    CHECK(token.size() == n);
    CHECK(token.find_first_not_of(alphabet) == std::string::npos);
  }
  CHECK(random_token(0).empty());
}

TEST_CASE("random tokens do not repeat and cover the alphabet") {
  std::set<std::string> seen;
  std::set<char> chars;
  for (int i = 0; i < 2000; ++i) {
    auto t = random_token();
    chars.insert(t.begin(), t.end());
    seen.insert(std::move(t));
  }
  CHECK(seen.size() == 2000);
  CHECK(chars.size() == 64);
}

TEST_CASE("constant_time_equal is true exactly for equal strings") {
  CHECK(constant_time_equal("", ""));
  CHECK(constant_time_equal("secret", "secret"));
  CHECK(constant_time_equal(std::string("a\0b", 3), std::string("a\0b", 3)));
  CHECK_FALSE(constant_time_equal("secret", "secreT"));
  CHECK_FALSE(constant_time_equal("secret", "Secret"));
  CHECK_FALSE(constant_time_equal("secret", "secret2"));
  CHECK_FALSE(constant_time_equal("secret2", "secret"));
  CHECK_FALSE(constant_time_equal("", "x"));
  CHECK_FALSE(constant_time_equal("x", ""));
  // A longer string whose extra bytes are NUL must still differ.
  CHECK_FALSE(constant_time_equal("abc", std::string("abc\0", 4)));
  CHECK_FALSE(constant_time_equal(std::string("abc\0", 4), "abc"));
}

TEST_CASE("the static token validator accepts listed tokens only") {
  const static_token_validator v({"alpha", "beta-token"});
  auto a = v.validate("alpha");
  REQUIRE(a);
  CHECK(a->empty());  // no user id of its own: the gateway falls back to deviceId, then clientId
  CHECK(v.validate("beta-token"));
  CHECK_FALSE(v.validate("gamma"));
  CHECK_FALSE(v.validate(""));
  CHECK_FALSE(v.validate("alph"));
  CHECK_FALSE(v.validate("alphaa"));
  CHECK_FALSE(v.validate("ALPHA"));
}

TEST_CASE("a static token validator without tokens accepts nothing") {
  const static_token_validator v(std::vector<std::string>{});
  CHECK_FALSE(v.validate(""));
  CHECK_FALSE(v.validate("anything"));
}

TEST_CASE("the static token validator works through the token_validator interface") {
  const static_token_validator concrete({"t1"});
  const token_validator& v = concrete;
  CHECK(v.validate("t1"));
  CHECK_FALSE(v.validate("t2"));
}

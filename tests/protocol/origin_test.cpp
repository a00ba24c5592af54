// The Origin allow-list of PROTOCOL.md "Transport".
#include "protocol/origin.hpp"

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace sb::protocol;

namespace {

bool allowed(std::string_view origin, const std::vector<std::string>& patterns) {
  return origin_allowed(std::optional<std::string_view>(origin), patterns);
}

}  // namespace

TEST_CASE("an exact origin pattern allows that origin only") {
  const std::vector<std::string> p = {"https://app.example.com"};
  CHECK(allowed("https://app.example.com", p));
  CHECK_FALSE(allowed("https://other.example.com", p));
  CHECK_FALSE(allowed("https://app.example.org", p));
  CHECK_FALSE(allowed("https://app.example.com.evil.net", p));
}

TEST_CASE("origin matching ignores case") {
  CHECK(allowed("HTTPS://App.Example.COM", {"https://app.example.com"}));
  CHECK(allowed("https://app.example.com", {"HTTPS://APP.EXAMPLE.COM"}));
  CHECK(allowed("https://A.B.Example.com", {"https://*.EXAMPLE.com"}));
}

TEST_CASE("any one matching pattern of the list allows the origin") {
  const std::vector<std::string> p = {"https://a.example.com", "http://localhost:3000"};
  CHECK(allowed("http://localhost:3000", p));
  CHECK(allowed("https://a.example.com", p));
  CHECK_FALSE(allowed("http://localhost:3001", p));
}

TEST_CASE("the pattern * allows every origin, including null") {
  const std::vector<std::string> p = {"*"};
  CHECK(allowed("https://anything.example", p));
  CHECK(allowed("http://localhost:1234", p));
  CHECK(allowed("null", p));
  CHECK(allowed("NULL", p));
}

TEST_CASE("an Origin of null only matches *") {
  CHECK_FALSE(allowed("null", {"https://example.com"}));
  CHECK_FALSE(allowed("null", {"https://*.example.com"}));
  CHECK_FALSE(allowed("null", {"null"}));
  CHECK_FALSE(allowed("Null", {"null"}));
  CHECK(allowed("null", {"https://example.com", "*"}));
}

TEST_CASE("a wildcard host matches one or more whole labels") {
  const std::vector<std::string> p = {"https://*.example.com"};
  CHECK(allowed("https://a.example.com", p));
  CHECK(allowed("https://a.b.example.com", p));
  CHECK(allowed("https://x-1.y-2.z.example.com", p));
}

TEST_CASE("a wildcard host does not match the bare domain") {
  CHECK_FALSE(allowed("https://example.com", {"https://*.example.com"}));
}

TEST_CASE("a wildcard host does not match a domain that merely ends in the same text") {
  CHECK_FALSE(allowed("https://evilexample.com", {"https://*.example.com"}));
  CHECK_FALSE(allowed("https://a.evilexample.com", {"https://*.example.com"}));
  CHECK_FALSE(allowed("https://a.example.com.evil.net", {"https://*.example.com"}));
}

TEST_CASE("a wildcard host does not match empty labels") {
  CHECK_FALSE(allowed("https://.example.com", {"https://*.example.com"}));
  CHECK_FALSE(allowed("https://a..example.com", {"https://*.example.com"}));
  CHECK_FALSE(allowed("https://a..b.example.com", {"https://*.example.com"}));
}

TEST_CASE("the scheme must match exactly") {
  CHECK_FALSE(allowed("http://app.example.com", {"https://app.example.com"}));
  CHECK_FALSE(allowed("https://app.example.com", {"http://app.example.com"}));
  CHECK_FALSE(allowed("http://a.example.com", {"https://*.example.com"}));
}

TEST_CASE("the port must match exactly") {
  CHECK(allowed("https://app.example.com:8443", {"https://app.example.com:8443"}));
  CHECK_FALSE(allowed("https://app.example.com:8443", {"https://app.example.com"}));
  CHECK_FALSE(allowed("https://app.example.com", {"https://app.example.com:8443"}));
  CHECK_FALSE(allowed("https://app.example.com:9443", {"https://app.example.com:8443"}));
  // No default-port equivalence: the text must match.
  CHECK_FALSE(allowed("https://app.example.com:443", {"https://app.example.com"}));
  CHECK(allowed("https://a.example.com:8443", {"https://*.example.com:8443"}));
  CHECK_FALSE(allowed("https://a.example.com", {"https://*.example.com:8443"}));
}

TEST_CASE("IPv6 literal origins match with their port") {
  CHECK(allowed("http://[::1]:8080", {"http://[::1]:8080"}));
  CHECK_FALSE(allowed("http://[::1]:8081", {"http://[::1]:8080"}));
  CHECK_FALSE(allowed("http://[::1]", {"http://[::1]:8080"}));
}

TEST_CASE("an absent Origin header is always allowed") {
  CHECK(origin_allowed(std::nullopt, {}));
  CHECK(origin_allowed(std::nullopt, {"https://example.com"}));
}

TEST_CASE("an empty pattern list refuses every present origin") {
  const std::vector<std::string> none;
  CHECK_FALSE(allowed("https://example.com", none));
  CHECK_FALSE(allowed("http://localhost", none));
  CHECK_FALSE(allowed("null", none));
  CHECK_FALSE(allowed("", none));
}

TEST_CASE("a malformed Origin value is refused by non-star patterns") {
  CHECK_FALSE(allowed("", {"https://example.com"}));
  CHECK_FALSE(allowed("example.com", {"https://example.com"}));
  CHECK_FALSE(allowed("https://example.com/path", {"https://example.com"}));
}

TEST_CASE("valid_origin_pattern accepts star, exact origins and leading wildcard labels") {
  for (const char* p :
       {"*", "https://example.com", "http://localhost:3000", "https://*.example.com",
        "https://*.example.com:8443", "http://[::1]:8080", "HTTPS://EXAMPLE.COM", "https://example.com/"}) {
    INFO("pattern: " << p);
    CHECK(valid_origin_pattern(p));
  }
}

TEST_CASE("valid_origin_pattern rejects malformed patterns and misplaced wildcards") {
  for (const char* p :
       {"", "example.com", "*.example.com", "https://", "://example.com", "https://example.com/path",
        "https://example.com:port", "https://a.*.example.com", "https://*example.com", "https://*",
        "https://*.", "https://*.*.example.com", "https://example.*", "http://[::1", "**"}) {
    INFO("pattern: " << p);
    CHECK_FALSE(valid_origin_pattern(p));
  }
}

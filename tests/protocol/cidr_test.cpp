// CIDR ranges for trustedProxies: IPv4, IPv6 and IPv4-mapped IPv6 peers.
#include "protocol/cidr.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace sb::protocol;

namespace {

cidr range(const std::string& text) {
  auto r = parse_cidr(text);
  INFO("range: " << text);
  REQUIRE(r);
  return *r;
}

}  // namespace

TEST_CASE("an IPv4 /8 range contains the addresses of its first octet only") {
  const auto r = range("10.0.0.0/8");
  CHECK(cidr_contains(r, "10.0.0.0"));
  CHECK(cidr_contains(r, "10.1.2.3"));
  CHECK(cidr_contains(r, "10.255.255.255"));
  CHECK_FALSE(cidr_contains(r, "11.0.0.0"));
  CHECK_FALSE(cidr_contains(r, "9.255.255.255"));
  CHECK_FALSE(cidr_contains(r, "192.168.1.1"));
}

TEST_CASE("an IPv4 /24 range contains its 256 addresses only") {
  const auto r = range("192.168.1.0/24");
  CHECK(cidr_contains(r, "192.168.1.0"));
  CHECK(cidr_contains(r, "192.168.1.77"));
  CHECK(cidr_contains(r, "192.168.1.255"));
  CHECK_FALSE(cidr_contains(r, "192.168.2.1"));
  CHECK_FALSE(cidr_contains(r, "192.168.0.255"));
}

TEST_CASE("a prefix that is not a multiple of eight splits an octet") {
  const auto r = range("172.16.0.0/12");
  CHECK(cidr_contains(r, "172.16.0.1"));
  CHECK(cidr_contains(r, "172.31.255.255"));
  CHECK_FALSE(cidr_contains(r, "172.32.0.0"));
  CHECK_FALSE(cidr_contains(r, "172.15.255.255"));
}

TEST_CASE("an IPv4 /32 range contains exactly one address") {
  const auto r = range("203.0.113.7/32");
  CHECK(cidr_contains(r, "203.0.113.7"));
  CHECK_FALSE(cidr_contains(r, "203.0.113.6"));
  CHECK_FALSE(cidr_contains(r, "203.0.113.8"));
}

TEST_CASE("an IPv4 /0 range contains every IPv4 address") {
  const auto r = range("0.0.0.0/0");
  CHECK(cidr_contains(r, "0.0.0.1"));
  CHECK(cidr_contains(r, "1.2.3.4"));
  CHECK(cidr_contains(r, "255.255.255.255"));
  CHECK(cidr_contains(r, "::ffff:8.8.8.8"));
  CHECK_FALSE(cidr_contains(r, "2001:db8::1"));
}

TEST_CASE("a bare IPv4 address is a range of that one address") {
  const auto r = range("127.0.0.1");
  CHECK(r.prefix == 128);
  CHECK(cidr_contains(r, "127.0.0.1"));
  CHECK_FALSE(cidr_contains(r, "127.0.0.2"));
}

TEST_CASE("IPv4 prefixes are stored as IPv6 bits") {
  CHECK(range("10.0.0.0/8").prefix == 104);
  CHECK(range("10.0.0.0/24").prefix == 120);
  CHECK(range("::1/128").prefix == 128);
  CHECK(range("2001:db8::/32").prefix == 32);
}

TEST_CASE("the IPv6 loopback /128 contains only ::1") {
  const auto r = range("::1/128");
  CHECK(cidr_contains(r, "::1"));
  CHECK(cidr_contains(r, "0:0:0:0:0:0:0:1"));
  CHECK_FALSE(cidr_contains(r, "::2"));
  CHECK_FALSE(cidr_contains(r, "127.0.0.1"));
}

TEST_CASE("a bare IPv6 address is a range of that one address") {
  const auto r = range("fe80::1");
  CHECK(cidr_contains(r, "fe80::1"));
  CHECK_FALSE(cidr_contains(r, "fe80::2"));
}

TEST_CASE("the IPv6 range 2001:db8::/32 contains its addresses only") {
  const auto r = range("2001:db8::/32");
  CHECK(cidr_contains(r, "2001:db8::1"));
  CHECK(cidr_contains(r, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
  CHECK(cidr_contains(r, "2001:DB8:1::"));
  CHECK_FALSE(cidr_contains(r, "2001:db9::1"));
  CHECK_FALSE(cidr_contains(r, "2001:db7:ffff::1"));
  CHECK_FALSE(cidr_contains(r, "10.0.0.1"));
}

TEST_CASE("an IPv4-mapped IPv6 peer matches an IPv4 range") {
  const auto r = range("10.0.0.0/8");
  CHECK(cidr_contains(r, "::ffff:10.1.2.3"));
  CHECK(cidr_contains(r, "::FFFF:10.255.0.1"));
  CHECK_FALSE(cidr_contains(r, "::ffff:11.1.2.3"));
  // A non-mapped IPv6 address with the same low bits is not inside.
  CHECK_FALSE(cidr_contains(r, "::10.1.2.3"));
}

TEST_CASE("a malformed prefix is rejected") {
  for (const char* text :
       {"10.0.0.0/33", "10.0.0.0/abc", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "10.0.0.0/ 8",
        "10.0.0.0/+8", "::1/129", "::/", "10.0.0.0/8/8", "10.0.0.0/99999999999999999999"}) {
    INFO("text: " << text);
    CHECK_FALSE(parse_cidr(text));
  }
}

TEST_CASE("a malformed address is rejected") {
  for (const char* text : {"", "/8", "garbage", "garbage/8", "10.0.0/8", "256.0.0.0/8", "10.0.0.0.0/8",
                           "1::2::3/64", " 10.0.0.0/8", "localhost"}) {
    INFO("text: '" << text << "'");
    CHECK_FALSE(parse_cidr(text));
  }
}

TEST_CASE("a malformed peer address is never contained") {
  const auto r = range("0.0.0.0/0");
  CHECK_FALSE(cidr_contains(r, ""));
  CHECK_FALSE(cidr_contains(r, "garbage"));
  CHECK_FALSE(cidr_contains(r, "10.0.0.1:8080"));
  CHECK_FALSE(cidr_contains(range("::/0"), "not-an-ip"));
}

TEST_CASE("::/0 contains every address of both families") {
  const auto r = range("::/0");
  CHECK(cidr_contains(r, "2001:db8::1"));
  CHECK(cidr_contains(r, "1.2.3.4"));
}

TEST_CASE("any_contains is true when some range contains the address") {
  const std::vector<cidr> ranges = {range("10.0.0.0/8"), range("192.168.0.0/16"), range("::1/128")};
  CHECK(any_contains(ranges, "10.9.8.7"));
  CHECK(any_contains(ranges, "192.168.44.1"));
  CHECK(any_contains(ranges, "::1"));
  CHECK(any_contains(ranges, "::ffff:192.168.0.1"));
  CHECK_FALSE(any_contains(ranges, "172.16.0.1"));
  CHECK_FALSE(any_contains(ranges, "::2"));
  CHECK_FALSE(any_contains({}, "10.0.0.1"));
}

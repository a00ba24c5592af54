#include "protocol/forwarded.hpp"

#include <catch2/catch.hpp>

using namespace sb::protocol;

namespace {

std::vector<cidr> ranges(std::initializer_list<const char*> texts) {
  std::vector<cidr> out;
  for (const char* t : texts) out.push_back(*parse_cidr(t));
  return out;
}

}  // namespace

TEST_CASE("the client is the rightmost X-Forwarded-For hop that is not a trusted proxy") {
  const auto trusted = ranges({"10.0.0.0/8"});
  CHECK(forwarded_client_address("203.0.113.9", trusted) == "203.0.113.9");
  CHECK(forwarded_client_address("203.0.113.9, 10.0.0.1", trusted) == "203.0.113.9");
  // The leftmost entry was written by the client itself: a forged one is never taken.
  CHECK(forwarded_client_address("1.1.1.1, 198.51.100.7, 10.0.0.2", trusted) == "198.51.100.7");
}

TEST_CASE("a hop that is not an address ends the walk and the socket address is kept") {
  const auto trusted = ranges({"10.0.0.0/8"});
  CHECK_FALSE(forwarded_client_address("not-an-ip", trusted));
  CHECK_FALSE(forwarded_client_address("203.0.113.9, unknown", trusted));
  // ...but only when the walk reaches it: the untrusted hop right of it is already the answer.
  CHECK(forwarded_client_address("junk, 203.0.113.9", trusted) == "203.0.113.9");
  CHECK_FALSE(forwarded_client_address("", trusted));
}

TEST_CASE("forwarded entries with ports or brackets are reduced to the address") {
  const auto trusted = ranges({"10.0.0.0/8"});
  CHECK(forwarded_client_address("192.0.2.4:5123", trusted) == "192.0.2.4");
  CHECK(forwarded_client_address("[2001:db8::7]:443", trusted) == "2001:db8::7");
  CHECK(forwarded_client_address("2001:db8::7", trusted) == "2001:db8::7");
}

TEST_CASE("when every hop is a trusted proxy the leftmost one is taken") {
  const auto trusted = ranges({"10.0.0.0/8"});
  CHECK(forwarded_client_address("10.1.1.1, 10.2.2.2", trusted) == "10.1.1.1");
}

TEST_CASE("a chain longer than max_forwarded_hops is not walked") {
  const auto trusted = ranges({"10.0.0.0/8"});
  std::string chain;
  for (std::size_t i = 0; i <= max_forwarded_hops; ++i) chain += (i ? ", " : "") + std::string("10.0.0.1");
  CHECK_FALSE(forwarded_client_address(chain, trusted));
}

#include "protocol/websocket_rules.hpp"

#include <catch2/catch.hpp>

#include "protocol/merge_patch.hpp"

using namespace sb::protocol;

TEST_CASE("a Sec-WebSocket-Key must be 16 bytes in base64") {
  CHECK(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=="));  // RFC 6455 1.3
  CHECK_FALSE(valid_websocket_key(""));
  CHECK_FALSE(valid_websocket_key("abc"));
  CHECK_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ"));    // no padding
  CHECK_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=x"));  // bad padding
  CHECK_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25j*Q=="));  // not base64
  CHECK_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZSEh"));  // 18 bytes
}

TEST_CASE("close codes a peer may send follow RFC 6455 7.4") {
  for (std::uint16_t ok : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4000, 4999})
    CHECK(valid_close_code(ok));
  for (std::uint16_t bad : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535})
    CHECK_FALSE(valid_close_code(bad));
}

TEST_CASE("session metadata over its byte limit is named in the error") {
  const nlohmann::json small = {{"a", 1}};
  CHECK_FALSE(metadata_over_limit(small, 64));
  const nlohmann::json big = {{"a", std::string(100, 'x')}};
  auto err = metadata_over_limit(big, 64);
  REQUIRE(err);
  CHECK(err->find("maxSessionMetadataBytes") != std::string::npos);
}

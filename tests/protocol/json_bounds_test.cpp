#include "protocol/json_bounds.hpp"

#include <catch2/catch.hpp>
#include <string>

#include "protocol/message.hpp"

using namespace sb::protocol;

namespace {

std::string nested_arrays(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

}  // namespace

TEST_CASE("nesting depth counts arrays and objects but not brackets inside strings") {
  CHECK(json_nesting_depth("1", 64) == 0);
  CHECK(json_nesting_depth("{}", 64) == 1);
  CHECK(json_nesting_depth(R"({"a":[1,{"b":[]}]})", 64) == 4);
  CHECK(json_nesting_depth(R"({"a":"[[[[{{{{"})", 64) == 1);
  CHECK(json_nesting_depth(R"(["\"[[[", "\\", []])", 64) == 2);
  CHECK(json_nesting_depth("]]]][", 64) == 1);  // stray closers do not go below zero
}

TEST_CASE("nesting depth stops counting once past the bound") {
  CHECK(json_nesting_depth(nested_arrays(1000), 10) == 11);
}

TEST_CASE("parse_untrusted_json refuses nesting past the bound before building a value") {
  auto ok = parse_untrusted_json(nested_arrays(64), 64);
  CHECK(ok.ok());
  CHECK(ok.value.is_array());
  auto deep = parse_untrusted_json(nested_arrays(65), 64);
  CHECK(deep.error == json_parse_error::too_deep);
  CHECK(deep.value.is_discarded());
  auto bad = parse_untrusted_json("{", 64);
  CHECK(bad.error == json_parse_error::invalid);
}

TEST_CASE("a 300 KB message of 150,000 nested arrays is INVALID_MESSAGE, not a stack overflow") {
  const std::string text =
      R"({"type":"connect","id":"1","payload":{"metadata":{"x":)" + nested_arrays(150000) + "}}}";
  auto result = decode(text, 64);
  auto* err = std::get_if<decode_error>(&result);
  REQUIRE(err);
  CHECK(err->code == error_code::invalid_message);
  CHECK(std::string(err->limit) == "maxJsonDepth");
  CHECK(err->message.find("64") != std::string::npos);
}

TEST_CASE("a message exactly at the depth bound still decodes") {
  // The envelope and payload objects are two levels; 62 arrays inside make 64.
  const std::string text = R"({"type":"chat","id":"1","payload":{"x":)" + nested_arrays(62) + "}}";
  CHECK(std::holds_alternative<envelope>(decode(text, 64)));
  CHECK(std::holds_alternative<decode_error>(decode(text, 63)));
}

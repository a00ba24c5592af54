// protocol/text.hpp: the one trim, port parser and comma-list splitter every layer uses.
#include <catch2/catch.hpp>

#include "protocol/text.hpp"

using namespace sb::protocol;

TEST_CASE("trim drops the given blanks at both ends only") {
  CHECK(trim("  a b\t") == "a b");
  CHECK(trim(" \t ") == "");
  CHECK(trim("") == "");
  CHECK(trim("tok\r\n") == "tok\r\n");  // HTTP blanks by default: a CR is not one
  CHECK(trim("  tok\r\n", line_blanks) == "tok");
}

TEST_CASE("a port is decimal digits from 1 to 65535, or 0 when allowed") {
  CHECK(parse_port("80") == std::optional<std::uint16_t>(80));
  CHECK(parse_port("65535") == std::optional<std::uint16_t>(65535));
  CHECK(parse_port("08080") == std::optional<std::uint16_t>(8080));
  CHECK(parse_port("0") == std::nullopt);
  CHECK(parse_port("0", true) == std::optional<std::uint16_t>(0));
  for (const char* bad : {"", "65536", "99999", "123456", "+80", "-1", " 80", "80 ", "80x", "8.0", "0x50"}) {
    INFO(bad);
    CHECK(parse_port(bad) == std::nullopt);
  }
}

TEST_CASE("a comma list is split, trimmed and has no empty items") {
  CHECK(split_comma_list(" a, b,,c ") == std::vector<std::string>{"a", "b", "c"});
  CHECK(split_comma_list("").empty());
  CHECK(split_comma_list(" , ,").empty());
}

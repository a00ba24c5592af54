// protocol::parse_admin_command: an admin line is checked once, at the socket, and becomes a typed command.
#include <catch2/catch.hpp>

#include "protocol/admin_request.hpp"

using namespace sb::protocol;
using json = nlohmann::json;
using verb = admin_command::verb;

namespace {

admin_command accepted(const json& request) {
  auto r = parse_admin_command(request);
  if (auto* e = std::get_if<std::string>(&r)) FAIL("refused: " << *e);
  return std::get<admin_command>(r);
}

std::string refused(const json& request) {
  auto r = parse_admin_command(request);
  REQUIRE(std::holds_alternative<std::string>(r));
  return std::get<std::string>(r);
}

}  // namespace

TEST_CASE("every admin command name maps to its verb") {
  const std::pair<const char*, verb> names[] = {
      {"stats", verb::stats},     {"actors", verb::actors},   {"clients", verb::clients},
      {"sessions", verb::sessions}, {"agents", verb::agents}, {"drain", verb::drain},
      {"cluster", verb::cluster}, {"tunnel", verb::tunnel},  {"tunnels", verb::tunnels}};
  for (const auto& [name, v] : names) {
    INFO(name);
    auto c = accepted({{"cmd", name}});
    CHECK(c.what == v);
    CHECK(c.name == name);
    CHECK(c.limit == default_page_limit);
  }
  CHECK(refused({{"cmd", "reboot"}}) == "unknown command 'reboot'");
}

TEST_CASE("commands that name something need a string id") {
  for (const char* name : {"client", "session", "kick"}) {
    INFO(name);
    CHECK(refused({{"cmd", name}}) == std::string("'") + name + "' needs a string 'id'");
    CHECK(refused({{"cmd", name}, {"id", 7}}) == std::string("'") + name + "' needs a string 'id'");
    CHECK(accepted({{"cmd", name}, {"id", "c-1"}}).id == "c-1");
  }
  CHECK(accepted({{"cmd", "kick"}, {"id", "c-1"}}).reason == "kicked by operator");
  CHECK(accepted({{"cmd", "kick"}, {"id", "c-1"}, {"reason", "bye"}}).reason == "bye");
}

TEST_CASE("listings take a string cursor and a limit from 1 to the maximum") {
  auto c = accepted({{"cmd", "agents"}, {"cursor", "a-9"}, {"limit", 5}});
  CHECK(c.cursor == "a-9");
  CHECK(c.limit == 5);
  CHECK(accepted({{"cmd", "clients"}, {"cursor", nullptr}, {"limit", nullptr}}).limit == default_page_limit);
  CHECK(refused({{"cmd", "sessions"}, {"cursor", 3}}).find("'cursor' must be a string") == 0);
  for (json bad : {json(0), json(max_page_limit + 1), json(-1), json(2.5), json("10")}) {
    INFO(bad.dump());
    CHECK(refused({{"cmd", "clients"}, {"limit", bad}}) ==
          "'limit' must be an integer from 1 to " + std::to_string(max_page_limit));
  }
}

TEST_CASE("ports commands take a port from 1 to 65535 as a number or decimal text") {
  CHECK(accepted({{"cmd", "ports.add"}, {"port", 8080}}).port == 8080);
  CHECK(accepted({{"cmd", "ports.remove"}, {"port", "443"}}).what == verb::ports_remove);
  for (json bad : {json(0), json(65536), json("80x"), json(""), json("-1"), json("123456"), json(nullptr)}) {
    INFO(bad.dump());
    CHECK(refused({{"cmd", "ports.add"}, {"port", bad}}) == "'ports.add' needs a 'port' from 1 to 65535");
  }
  CHECK(refused({{"cmd", "ports.add"}}) == "'ports.add' needs a 'port' from 1 to 65535");
}

TEST_CASE("log needs a string level") {
  CHECK(accepted({{"cmd", "log"}, {"level", "debug"}}).level == "debug");
  CHECK(refused({{"cmd", "log"}}) == "'log' needs a string 'level'");
}

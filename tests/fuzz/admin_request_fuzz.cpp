// Fuzz target: one line from the admin socket (protocol::parse_admin_request, which parses with
// parse_untrusted_json and checks the command shape), then protocol::parse_admin_command, which turns it into
// the typed command the actors get. Properties: nothing throws; an accepted request is an object with a
// string "cmd"; an accepted command has its arguments in range (a port from 1 to 65535, a limit from 1 to
// max_page_limit, an id where the command needs one); every answer text serializes.
#include <cstdint>

#include "fuzz_input.hpp"
#include "protocol/admin_request.hpp"

using namespace sb::protocol;
using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto parsed = parse_admin_request(sb_fuzz::as_view(data, size));
  if (auto* error = std::get_if<std::string>(&parsed)) {
    (void)json{{"ok", false}, {"error", *error}}.dump(-1, ' ', false, json::error_handler_t::replace);
    return 0;
  }
  const auto& request = std::get<json>(parsed);
  const auto cmd = admin_string_arg(request, "cmd");
  sb_fuzz::require(cmd.has_value(), "an accepted request has a string 'cmd'");
  for (const char* key : {"id", "level", "reason"})
    if (auto arg = admin_string_arg(request, key))
      (void)json{{"ok", false}, {"error", "no client '" + *arg + "'"}}.dump(-1, ' ', false,
                                                                            json::error_handler_t::replace);
  (void)json{{"ok", true}, {"request", request}}.dump(-1, ' ', false, json::error_handler_t::replace);
  auto command = parse_admin_command(request);
  if (auto* error = std::get_if<std::string>(&command)) {
    (void)json{{"ok", false}, {"error", *error}}.dump(-1, ' ', false, json::error_handler_t::replace);
    return 0;
  }
  const auto& c = std::get<admin_command>(command);
  using verb = admin_command::verb;
  sb_fuzz::require(c.limit >= 1 && c.limit <= max_page_limit, "a page limit is in range");
  if (c.what == verb::ports_add || c.what == verb::ports_remove) sb_fuzz::require(c.port >= 1, "a port is set");
  if (c.what == verb::client || c.what == verb::session || c.what == verb::kick)
    sb_fuzz::require(admin_string_arg(request, "id") == c.id, "the id is the request's");
  return 0;
}

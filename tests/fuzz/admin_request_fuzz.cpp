// Fuzz target: one line from the admin socket (protocol::parse_admin_request, which parses with
// parse_untrusted_json and checks the command shape) and the command arguments the supervisor reads.
// Properties: nothing throws; an accepted request is an object with a string "cmd"; the reply the socket
// writes (the request echoed into an answer, or the error) always serializes.
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
  return 0;
}

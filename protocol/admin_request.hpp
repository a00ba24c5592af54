#pragma once
// One request line of the admin socket (DESIGN.md "Operations"): a JSON object with a string "cmd" and the
// command's string arguments. Kept here, sans-I/O, so the socket and the fuzzer share the one parser.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "protocol/json_bounds.hpp"

namespace sb::protocol {

/// The request, or the error text the socket answers with ("expected a JSON object with a string 'cmd'",
/// or the nesting limit). Never throws.
std::variant<nlohmann::json, std::string> parse_admin_request(std::string_view line,
                                                              std::size_t max_depth = default_max_json_depth);

/// A command's string argument ("id", "level", "reason"); nullopt when absent or not a string.
std::optional<std::string> admin_string_arg(const nlohmann::json& request, const char* key);

/// Listings (agents, clients, sessions) are paged so one answer stays bounded however many records exist:
/// at most `limit` entries after `cursor` (the `next` of the page before).
inline constexpr std::uint64_t default_page_limit = 1000;
inline constexpr std::uint64_t max_page_limit = 10000;

/// One admin command, its arguments checked: parsed once at the socket, then passed on as this type.
struct admin_command {
  enum class verb {
    stats, actors, clients, client, sessions, session, agents, kick, drain, log, cluster, tunnel,
    ports_add, ports_remove, tunnels
  };
  verb what = verb::stats;
  std::string name;    // as written ("ports.add"), for answers
  std::string id;      // client, session, kick
  std::string reason;  // kick (default "kicked by operator")
  std::string level;   // log
  std::string cursor;  // clients, sessions, agents
  std::uint64_t limit = default_page_limit;
  std::uint16_t port = 0;  // ports.add, ports.remove
};

/// The command of a request from parse_admin_request, or the error text to answer ("unknown command 'x'",
/// "'kick' needs a string 'id'", ...). Never throws.
std::variant<admin_command, std::string> parse_admin_command(const nlohmann::json& request);

}  // namespace sb::protocol

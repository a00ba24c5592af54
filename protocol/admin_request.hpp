#pragma once
// One request line of the admin socket (DESIGN.md "Operations"): a JSON object with a string "cmd" and the
// command's string arguments. Kept here, sans-I/O, so the socket and the fuzzer share the one parser.
#include <cstddef>
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

}  // namespace sb::protocol

#pragma once
// Small text helpers shared by configuration parsing and HTTP header handling.
#include <string>
#include <string_view>
#include <vector>

namespace sb::protocol {

/// "a, b,,c " -> {"a", "b", "c"}: comma-separated items, trimmed of spaces and tabs, empty ones dropped.
std::vector<std::string> split_comma_list(std::string_view text);

}  // namespace sb::protocol

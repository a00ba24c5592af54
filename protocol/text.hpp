#pragma once
// Small text helpers shared by configuration parsing and HTTP header handling.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sb::protocol {

/// Spaces and tabs: what HTTP calls optional whitespace.
inline constexpr std::string_view http_blanks = " \t";
/// Blanks and line ends: what surrounds a token in a file or a command's output.
inline constexpr std::string_view line_blanks = " \t\r\n";

/// `text` without the `blanks` it starts and ends with.
std::string_view trim(std::string_view text, std::string_view blanks = http_blanks);

/// "a, b,,c " -> {"a", "b", "c"}: comma-separated items, trimmed of spaces and tabs, empty ones dropped.
std::vector<std::string> split_comma_list(std::string_view text);

/// A TCP port in decimal digits only ("08080" is fine, "+80", " 80" and "80x" are not): 1 to 65535, or 0 too
/// with `allow_zero` (let the OS pick). nullopt for anything else.
std::optional<std::uint16_t> parse_port(std::string_view text, bool allow_zero = false);

}  // namespace sb::protocol

#pragma once
// Untrusted JSON enters through one door. nlohmann::json parses iteratively, but copying, dumping and
// destroying a value recurse once per nesting level, so a 300 KB text of nested arrays overflows the stack
// long after parsing succeeded. The depth is therefore checked on the raw text, before any value exists.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string_view>

namespace sb::protocol {

/// Deep enough for any real metadata or tool schema; shallow enough that every recursive walk of a value
/// (copy, dump, merge patch) stays far inside a thread's stack.
inline constexpr std::size_t default_max_json_depth = 64;

/// The deepest nesting of arrays and objects in `text`, counted without parsing (brackets inside strings do
/// not count). Stops counting once `stop_after` is passed, so hostile input costs no more than one scan.
std::size_t json_nesting_depth(std::string_view text, std::size_t stop_after);

enum class json_parse_error { none, invalid, too_deep };

struct untrusted_json {
  nlohmann::json value;  // discarded unless error == none
  json_parse_error error = json_parse_error::none;

  bool ok() const { return error == json_parse_error::none; }
};

/// Parses text from the network, a file or the admin socket: never throws, refuses nesting past `max_depth`.
untrusted_json parse_untrusted_json(std::string_view text, std::size_t max_depth = default_max_json_depth);

/// "JSON nesting exceeds N levels" or "not valid JSON", for error replies.
std::string describe(json_parse_error error, std::size_t max_depth);

}  // namespace sb::protocol

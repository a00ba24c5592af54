#include "protocol/json_bounds.hpp"

#include <string>

namespace sb::protocol {

std::size_t json_nesting_depth(std::string_view text, std::size_t stop_after) {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > deepest) {
          deepest = depth;
          if (deepest > stop_after) return deepest;
        }
        break;
      case ']':
      case '}':
        // Unbalanced closers make the text invalid; the parser reports that, the depth stays sane.
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return deepest;
}

untrusted_json parse_untrusted_json(std::string_view text, std::size_t max_depth) {
  untrusted_json out;
  if (json_nesting_depth(text, max_depth) > max_depth) {
    out.value = nlohmann::json(nlohmann::json::value_t::discarded);
    out.error = json_parse_error::too_deep;
    return out;
  }
  out.value = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (out.value.is_discarded()) out.error = json_parse_error::invalid;
  return out;
}

std::string describe(json_parse_error error, std::size_t max_depth) {
  switch (error) {
    case json_parse_error::none:
      return "valid JSON";
    case json_parse_error::invalid:
      return "not valid JSON";
    case json_parse_error::too_deep:
      return "JSON nesting exceeds " + std::to_string(max_depth) + " levels";
  }
  return "not valid JSON";
}

}  // namespace sb::protocol

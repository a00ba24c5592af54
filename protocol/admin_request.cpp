#include "protocol/admin_request.hpp"

namespace sb::protocol {

std::variant<nlohmann::json, std::string> parse_admin_request(std::string_view line, std::size_t max_depth) {
  auto parsed = parse_untrusted_json(line, max_depth);
  if (parsed.error == json_parse_error::too_deep) return "request " + describe(parsed.error, max_depth);
  if (!parsed.ok() || !parsed.value.is_object())
    return std::string("expected a JSON object with a string 'cmd'");
  auto cmd = parsed.value.find("cmd");
  if (cmd == parsed.value.end() || !cmd->is_string())
    return std::string("expected a JSON object with a string 'cmd'");
  return std::move(parsed.value);
}

std::optional<std::string> admin_string_arg(const nlohmann::json& request, const char* key) {
  if (!request.is_object()) return std::nullopt;
  auto it = request.find(key);
  if (it == request.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace sb::protocol

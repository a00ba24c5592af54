#include "protocol/admin_request.hpp"

#include "protocol/text.hpp"

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

namespace {

using verb = admin_command::verb;

struct verb_rule {
  const char* name;
  verb what;
  bool needs_id;  // a string 'id'
  bool paged;     // optional cursor and limit
};

constexpr verb_rule verbs[] = {
    {"stats", verb::stats, false, false},       {"actors", verb::actors, false, false},
    {"clients", verb::clients, false, true},    {"client", verb::client, true, false},
    {"sessions", verb::sessions, false, true},  {"session", verb::session, true, false},
    {"agents", verb::agents, false, true},      {"kick", verb::kick, true, false},
    {"drain", verb::drain, false, false},       {"log", verb::log, false, false},
    {"cluster", verb::cluster, false, false},   {"tunnel", verb::tunnel, false, false},
    {"ports.add", verb::ports_add, false, false}, {"ports.remove", verb::ports_remove, false, false},
    {"tunnels", verb::tunnels, false, false},
};

/// A port as a number or a decimal string, 1 to 65535.
std::optional<std::uint16_t> port_arg(const nlohmann::json& request) {
  auto it = request.find("port");
  if (it == request.end()) return std::nullopt;
  if (it->is_number_integer() && it->get<std::int64_t>() >= 1 && it->get<std::int64_t>() <= 65535)
    return static_cast<std::uint16_t>(it->get<std::int64_t>());
  if (!it->is_string()) return std::nullopt;
  return parse_port(it->get_ref<const std::string&>());
}

/// cursor and limit of a listing; the error text when either is malformed.
std::optional<std::string> page_args(const nlohmann::json& request, admin_command& out) {
  if (auto it = request.find("cursor"); it != request.end() && !it->is_null()) {
    if (!it->is_string()) return std::string("'cursor' must be a string (the 'next' of the page before)");
    out.cursor = it->get<std::string>();
  }
  if (auto it = request.find("limit"); it != request.end() && !it->is_null()) {
    // Integers only (2.5 and "10" are refused); written text parses as unsigned, built JSON may be signed.
    if (!it->is_number_integer() || it->get<std::int64_t>() < 1 ||
        it->get<std::int64_t>() > static_cast<std::int64_t>(max_page_limit))
      return "'limit' must be an integer from 1 to " + std::to_string(max_page_limit);
    out.limit = static_cast<std::uint64_t>(it->get<std::int64_t>());
  }
  return std::nullopt;
}

}  // namespace

std::variant<admin_command, std::string> parse_admin_command(const nlohmann::json& request) {
  const auto name = admin_string_arg(request, "cmd").value_or("");
  const verb_rule* rule = nullptr;
  for (const auto& r : verbs)
    if (name == r.name) rule = &r;
  if (!rule) return "unknown command '" + name + "'";
  admin_command c;
  c.what = rule->what;
  c.name = name;
  if (rule->needs_id) {
    auto id = admin_string_arg(request, "id");
    if (!id) return "'" + name + "' needs a string 'id'";
    c.id = *id;
  }
  if (rule->paged)
    if (auto error = page_args(request, c)) return *error;
  switch (c.what) {
    case verb::kick:
      c.reason = admin_string_arg(request, "reason").value_or("kicked by operator");
      break;
    case verb::log: {
      auto level = admin_string_arg(request, "level");
      if (!level) return std::string("'log' needs a string 'level'");
      c.level = *level;
      break;
    }
    case verb::ports_add:
    case verb::ports_remove: {
      auto port = port_arg(request);
      if (!port) return "'" + name + "' needs a 'port' from 1 to 65535";
      c.port = *port;
      break;
    }
    default:
      break;
  }
  return c;
}

}  // namespace sb::protocol

#include "protocol/payloads.hpp"

namespace sb::protocol {

namespace {

constexpr std::size_t max_name_chars = 128;
constexpr std::size_t max_capabilities = 256;

// Reads an optional string field; an absent field is fine, a present non-string is an error.
bool read_optional_string(const json& obj, const char* key, std::optional<std::string>& out,
                          std::string& err) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_string()) {
    err = std::string("payload.") + key + " must be a string";
    return false;
  }
  out = it->get<std::string>();
  return true;
}

bool read_required_name(const json& obj, const char* key, std::string& out, std::string& err) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string() || it->get_ref<const std::string&>().empty() ||
      char_count(it->get_ref<const std::string&>()) > max_name_chars) {
    err = std::string("payload.") + key + " must be a string of 1-128 characters";
    return false;
  }
  out = it->get<std::string>();
  return true;
}

bool read_optional_object(const json& obj, const char* key, json& out, std::string& err) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return true;
  if (!it->is_object()) {
    err = std::string("payload.") + key + " must be an object";
    return false;
  }
  out = *it;
  return true;
}

}  // namespace

std::string_view to_string(agent_status_value s) {
  switch (s) {
    case agent_status_value::online:
      return "online";
    case agent_status_value::busy:
      return "busy";
    case agent_status_value::offline:
      return "offline";
  }
  return "offline";
}

std::string_view to_string(route_selector s) {
  switch (s) {
    case route_selector::agent_id:
      return "agentId";
    case route_selector::capability:
      return "capability";
    case route_selector::agent_type:
      return "agentType";
  }
  return "agentId";
}

parsed<connect_payload> parse_connect(const json& p) {
  connect_payload out;
  std::string err;
  if (!read_optional_string(p, "deviceId", out.device_id, err) ||
      !read_optional_string(p, "role", out.role, err) ||
      !read_optional_string(p, "clientName", out.client_name, err) ||
      !read_optional_string(p, "version", out.version, err) ||
      !read_optional_object(p, "metadata", out.metadata, err))
    return err;
  return out;
}

parsed<auth_payload> parse_auth(const json& p) {
  auth_payload out;
  std::string err;
  if (!read_optional_string(p, "token", out.token, err) ||
      !read_optional_string(p, "password", out.password, err))
    return err;
  if (!out.token && !out.password) return std::string("payload.token or payload.password is required");
  return out;
}

parsed<session_create_payload> parse_session_create(const envelope& msg) {
  session_create_payload out;
  std::string err;
  if (auto it = msg.payload.find("sessionId"); it != msg.payload.end()) {
    if (!it->is_string() || it->get_ref<const std::string&>().empty() ||
        char_count(it->get_ref<const std::string&>()) > 128)
      return std::string("payload.sessionId must be a string of 1-128 characters");
    out.session_id = it->get<std::string>();
  } else if (msg.session_id) {
    out.session_id = msg.session_id;
  }
  if (!read_optional_object(msg.payload, "metadata", out.metadata, err)) return err;
  return out;
}

parsed<session_patch_payload> parse_session_patch(const json& p) {
  auto it = p.find("metadata");
  if (it == p.end()) return std::string("payload.metadata is required");
  if (!it->is_object()) return std::string("payload.metadata must be an object (a JSON merge patch)");
  return session_patch_payload{*it};
}

parsed<presence_payload> parse_presence(const json& p) {
  auto it = p.find("status");
  if (it == p.end() || !it->is_string() || it->get_ref<const std::string&>().empty() ||
      char_count(it->get_ref<const std::string&>()) > 64)
    return std::string("payload.status must be a string of 1-64 characters");
  return presence_payload{it->get<std::string>(), p};
}

parsed<chat_payload> parse_chat(const json& p) {
  auto it = p.find("text");
  if (it == p.end() || !it->is_string()) return std::string("payload.text must be a string");
  return chat_payload{it->get<std::string>()};
}

parsed<agent_register_payload> parse_agent_register(const json& p) {
  agent_register_payload out;
  std::string err;
  if (!read_required_name(p, "agentId", out.agent_id, err) ||
      !read_optional_string(p, "name", out.name, err) || !read_required_name(p, "type", out.type, err) ||
      !read_optional_object(p, "metadata", out.metadata, err))
    return err;
  auto caps = p.find("capabilities");
  if (caps == p.end() || !caps->is_array())
    return std::string("payload.capabilities must be an array of strings");
  if (caps->size() > max_capabilities) return std::string("payload.capabilities has more than 256 entries");
  for (const auto& c : *caps) {
    if (!c.is_string() || c.get_ref<const std::string&>().empty())
      return std::string("payload.capabilities must be an array of non-empty strings");
    out.capabilities.push_back(c.get<std::string>());
  }
  return out;
}

parsed<agent_id_payload> parse_agent_unregister(const json& p) {
  agent_id_payload out;
  std::string err;
  if (!read_required_name(p, "agentId", out.agent_id, err)) return err;
  return out;
}

parsed<presence_list_payload> parse_presence_list(const json& p) {
  presence_list_payload out{};
  if (auto it = p.find("cursor"); it != p.end() && !it->is_null()) {
    static const std::string bad_cursor = "payload.cursor must be the 'next' of an earlier presence_list page";
    if (!it->is_string()) return bad_cursor;
    const auto& c = it->get_ref<const std::string&>();
    if (c.empty() || c.size() > 19 || c.find_first_not_of("0123456789") != std::string::npos) return bad_cursor;
    out.after = std::stoull(c);
  }
  if (auto it = p.find("limit"); it != p.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < 1 ||
        it->get<std::int64_t>() > static_cast<std::int64_t>(max_presence_page))
      return "payload.limit must be an integer from 1 to " + std::to_string(max_presence_page);
    out.limit = static_cast<std::uint32_t>(it->get<std::int64_t>());
  }
  return out;
}

parsed<agent_status_payload> parse_agent_status(const json& p) {
  agent_status_payload out{};
  std::string err;
  if (!read_required_name(p, "agentId", out.agent_id, err)) return err;
  auto it = p.find("status");
  if (it == p.end() || !it->is_string()) return std::string("payload.status must be online, busy or offline");
  const auto& s = it->get_ref<const std::string&>();
  if (s == "online")
    out.status = agent_status_value::online;
  else if (s == "busy")
    out.status = agent_status_value::busy;
  else if (s == "offline")
    out.status = agent_status_value::offline;
  else
    return std::string("payload.status must be online, busy or offline");
  return out;
}

parsed<route_request_payload> parse_route_request(const json& p) {
  route_request_payload out{};
  // The first selector present wins, in this order (PROTOCOL.md route_request).
  static constexpr std::pair<const char*, route_selector> selectors[] = {
      {"agentId", route_selector::agent_id},
      {"capability", route_selector::capability},
      {"agentType", route_selector::agent_type},
  };
  bool found = false;
  for (const auto& [key, sel] : selectors) {
    auto it = p.find(key);
    if (it == p.end() || it->is_null()) continue;
    if (!it->is_string() || it->get_ref<const std::string&>().empty())
      return std::string("payload.") + key + " must be a non-empty string";
    out.selector = sel;
    out.target = it->get<std::string>();
    found = true;
    break;
  }
  if (!found) return std::string("one of payload.agentId, payload.capability, payload.agentType is required");
  auto req = p.find("request");
  if (req == p.end()) return std::string("payload.request is required");
  out.request = *req;
  return out;
}

parsed<route_response_payload> parse_route_response(const json& p) {
  route_response_payload out;
  std::string err;
  if (!read_required_name(p, "requestId", out.request_id, err)) return err;
  auto it = p.find("response");
  if (it == p.end()) return std::string("payload.response is required");
  out.response = *it;
  return out;
}

}  // namespace sb::protocol

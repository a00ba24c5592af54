#pragma once
// Typed payloads of the client message types (PROTOCOL.md "Handshake" and "Types"), each with its field
// rules. A parse function returns the payload or the reason it is invalid (answered with INVALID_MESSAGE).
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "protocol/message.hpp"

namespace sb::protocol {

template <class T>
using parsed = std::variant<T, std::string>;

template <class T>
const T* value_of(const parsed<T>& p) {
  return std::get_if<T>(&p);
}
template <class T>
std::string error_of(const parsed<T>& p) {
  auto* e = std::get_if<std::string>(&p);
  return e ? *e : std::string{};
}

struct connect_payload {
  std::optional<std::string> device_id, role, client_name, version;
  json metadata = json::object();
};

struct auth_payload {
  std::optional<std::string> token, password;
};

struct session_create_payload {
  std::optional<std::string> session_id;
  json metadata = json::object();
};

struct session_patch_payload {
  json metadata;  // a merge patch: any JSON value (RFC 7386), usually an object
};

struct presence_payload {
  std::string status;
  json fields;  // the whole payload, relayed to session members
};

/// `presence_list`: a page of authenticated clients in arrival order. The cursor is the `next` of the page
/// before: an arrival number, so a client that leaves between two pages does not shift the ones after it.
struct presence_list_payload {
  std::uint64_t after = 0;  // 0: from the first
  std::uint32_t limit = 1000;
};
inline constexpr std::uint32_t max_presence_page = 1000;

struct chat_payload {
  std::string text;
};

enum class agent_status_value { online, busy, offline };
std::string_view to_string(agent_status_value s);

struct agent_register_payload {
  std::string agent_id;
  std::optional<std::string> name;
  std::string type;
  std::vector<std::string> capabilities;
  json metadata = json::object();
};

struct agent_id_payload {
  std::string agent_id;
};

struct agent_status_payload {
  std::string agent_id;
  agent_status_value status;
};

enum class route_selector { agent_id, capability, agent_type };
std::string_view to_string(route_selector s);

struct route_request_payload {
  route_selector selector;
  std::string target;  // the agent id, capability or type named by the selector
  json request;
};

struct route_response_payload {
  std::string request_id;
  json response;
};

parsed<connect_payload> parse_connect(const json& payload);
parsed<auth_payload> parse_auth(const json& payload);
parsed<session_create_payload> parse_session_create(const envelope& msg);
parsed<session_patch_payload> parse_session_patch(const json& payload);
parsed<presence_payload> parse_presence(const json& payload);
parsed<presence_list_payload> parse_presence_list(const json& payload);
parsed<chat_payload> parse_chat(const json& payload);
parsed<agent_register_payload> parse_agent_register(const json& payload);
parsed<agent_id_payload> parse_agent_unregister(const json& payload);
parsed<agent_status_payload> parse_agent_status(const json& payload);
parsed<route_request_payload> parse_route_request(const json& payload);
parsed<route_response_payload> parse_route_response(const json& payload);

}  // namespace sb::protocol

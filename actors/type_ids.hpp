#pragma once
// The project's one CAF type-ID block: every atom and every custom message type. It lives in actors/ rather
// than protocol/ so that protocol/ stays free of CAF (DESIGN.md: protocol is sans-I/O and actor-free).
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/type_id.hpp>

#include "actors/messages.hpp"

CAF_BEGIN_TYPE_ID_BLOCK(switchboard, caf::first_custom_type_id)

  CAF_ADD_ATOM(switchboard, sb, admin_atom, "admin")
  CAF_ADD_ATOM(switchboard, sb, closed_atom, "closed")
  CAF_ADD_ATOM(switchboard, sb, create_atom, "create")
  CAF_ADD_ATOM(switchboard, sb, drain_atom, "drain")
  CAF_ADD_ATOM(switchboard, sb, gone_atom, "gone")
  CAF_ADD_ATOM(switchboard, sb, info_atom, "info")
  CAF_ADD_ATOM(switchboard, sb, join_atom, "join")
  CAF_ADD_ATOM(switchboard, sb, kick_atom, "kick")
  CAF_ADD_ATOM(switchboard, sb, leave_atom, "leave")
  CAF_ADD_ATOM(switchboard, sb, list_atom, "list")
  CAF_ADD_ATOM(switchboard, sb, patch_atom, "patch")
  CAF_ADD_ATOM(switchboard, sb, presence_atom, "presence")
  CAF_ADD_ATOM(switchboard, sb, register_atom, "register")
  CAF_ADD_ATOM(switchboard, sb, relay_atom, "relay")
  CAF_ADD_ATOM(switchboard, sb, response_atom, "response")
  CAF_ADD_ATOM(switchboard, sb, route_atom, "route")
  CAF_ADD_ATOM(switchboard, sb, astatus_atom, "astatus")
  CAF_ADD_ATOM(switchboard, sb, status_atom, "status")
  CAF_ADD_ATOM(switchboard, sb, timeout_atom, "timeout")
  CAF_ADD_ATOM(switchboard, sb, unreg_atom, "unreg")
  CAF_ADD_ATOM(switchboard, sb, up_atom, "up")

  CAF_ADD_TYPE_ID(switchboard, (nlohmann::json))
  CAF_ADD_TYPE_ID(switchboard, (sb::protocol::envelope))
  CAF_ADD_TYPE_ID(switchboard, (sb::transport::sink_ptr))
  CAF_ADD_TYPE_ID(switchboard, (sb::actors::inbound_message))
  CAF_ADD_TYPE_ID(switchboard, (sb::actors::op_result))
  CAF_ADD_TYPE_ID(switchboard, (sb::actors::member))
  CAF_ADD_TYPE_ID(switchboard, (sb::actors::steady_time))
  CAF_ADD_TYPE_ID(switchboard, (sb::protocol::agent_register_payload))
  CAF_ADD_TYPE_ID(switchboard, (sb::protocol::agent_id_payload))
  CAF_ADD_TYPE_ID(switchboard, (sb::protocol::agent_status_payload))
  CAF_ADD_TYPE_ID(switchboard, (sb::protocol::route_request_payload))
  CAF_ADD_TYPE_ID(switchboard, (sb::protocol::route_response_payload))

CAF_END_TYPE_ID_BLOCK(switchboard)

// Local-only messages: these never cross a node boundary, so they need no serializer.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(nlohmann::json)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::protocol::envelope)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::transport::sink_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::inbound_message)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::op_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::member)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::steady_time)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::protocol::agent_register_payload)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::protocol::agent_id_payload)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::protocol::agent_status_payload)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::protocol::route_request_payload)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::protocol::route_response_payload)

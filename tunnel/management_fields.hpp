#pragma once
// What the management API reads and stores, shared by its handlers (tunnel/management.cpp) and the store
// (tunnel/tunnel_store.cpp): text decoding, the service's field limits, request bodies read field by field,
// and the stored JSON shapes. Internal to tunnel/.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tunnel/tunnel_store.hpp"

namespace sb::tunnel::fields {

using json = nlohmann::json;

// Limits from the service's `TunnelConstraints` (contracts tunnelConstraints.ts), so what we store is what
// the SDK and the real service would accept.
inline constexpr std::size_t max_description_length = 400;
inline constexpr std::size_t max_name_length = 49;
inline constexpr std::size_t max_labels = 100;
inline constexpr std::size_t max_label_length = 50;
inline constexpr std::size_t max_ports = 1000;
inline constexpr std::size_t max_ssh_user_length = 60;
// Our own bounds for host-supplied endpoint fields: a host key blob in base64 is a few hundred bytes.
inline constexpr std::size_t max_endpoint_id_length = 200;
inline constexpr std::size_t max_host_id_length = 200;
inline constexpr std::size_t max_host_public_keys = 16;
inline constexpr std::size_t max_host_public_key_length = 4096;
// Events are only logged; these bound what one request can put into the log.
inline constexpr std::size_t max_events_logged = 100;
inline constexpr std::size_t max_event_text_logged = 200;

// The only connection mode a relay serves; `LocalNetwork` endpoints would need a host reachable directly.
inline constexpr const char* tunnel_relay_mode = "TunnelRelay";

/// Compact JSON; invalid UTF-8 is replaced rather than thrown on: echoed request text must never turn into
/// an exception.
std::string dump(const json& value);

// -- text
bool iequals(std::string_view a, std::string_view b);
std::vector<std::string> split(std::string_view s, char sep);
/// %XX decoding ('+' as a space when `plus_is_space`); nullopt for a malformed escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);
/// "2026-12-02T04:05:06Z".
std::string iso8601(std::int64_t seconds);

// -- validation (contracts tunnelConstraints.ts)
bool valid_tunnel_id(std::string_view id);
bool valid_endpoint_id(std::string_view id);
std::optional<std::uint16_t> parse_port_number(std::string_view text);

// -- request bodies: each reader returns an error message naming the field, or nullopt when the value fits;
// absent and null fields are left alone.
using field_error = std::optional<std::string>;
/// The member `name` of `object`, or nullptr when it is absent or null.
const json* field(const json& object, const char* name);
/// A TunnelPort body. `path_port` is the number from the URL, when there is one; the body may omit it.
field_error read_port(const json& body, std::optional<std::uint16_t> path_port, tunnel_port& out);
/// A Tunnel body (the SDK's convertTunnelForRequest): fields present replace stored ones, absent ones stay.
field_error apply_tunnel_body(const json& body, const std::string& path_id, tunnel_record& t);
field_error read_endpoint(const json& body, const std::string& path_id, std::string_view query_mode,
                          tunnel_endpoint& out);

// -- the stored shapes: the contract shapes without what is derived at response time, `created` in seconds
json port_fields(const tunnel_port& p);
json endpoint_fields(const tunnel_endpoint& e);
json store_json(const tunnel_record& t);
field_error tunnel_from_store(const json& j, tunnel_record& t);

}  // namespace sb::tunnel::fields

#pragma once
// The caller's side of the management API (TUNNEL.md "Management API", devtunnels-protocol.md §7): builds
// the requests the Dev Tunnels SDK's `TunnelManagementHttpClient` would send and parses the responses into
// plain structs. No sockets: tunnel/io/management_http performs these with the HTTP client. Responses come
// from the network, so parsing reports errors as values and never throws.
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tunnel/management.hpp"

namespace sb::tunnel {

/// Sent with every request, like the SDK (the relay accepts and ignores it; the service requires it).
inline constexpr const char* management_api_version = "2023-09-27-preview";

/// A request relative to the relay's base URL.
struct management_request {
  std::string method;
  std::string target;  // path and query, e.g. "/tunnels/abc?includePorts=true&api-version=..."
  std::map<std::string, std::string> headers;  // besides Authorization, which the caller adds
  std::string body;                            // JSON, or empty
};

/// `Authorization` values the relay accepts.
std::string bearer_authorization(std::string_view management_token);
std::string tunnel_authorization(std::string_view access_token);
/// `tunnel <jwt>` for an access token (a JWT: three dot-separated parts), else `Bearer <token>` (a
/// management token), so a user may hand either to `host` or `connect`.
std::string authorization_for(std::string_view token);

/// A `TunnelRelay` endpoint as the relay returns it (contracts tunnelRelayTunnelEndpoint.ts).
struct relay_endpoint_info {
  std::string id;
  std::string connection_mode;
  std::string host_id;
  std::vector<std::string> host_public_keys;  // base64 SSH public key blobs
  std::string host_relay_uri;
  std::string client_relay_uri;
};

/// What the host registers: PUT /tunnels/{id}/endpoints/{endpointId}.
struct endpoint_registration {
  std::string id;  // the SDK uses "<hostId>-relay"
  std::string host_id;
  std::vector<std::string> host_public_keys;
};

struct port_info {
  std::uint16_t port_number = 0;
  std::string protocol;
  std::string name;
  std::string description;
  std::vector<std::string> labels;
};

/// A Tunnel (contracts tunnel.ts), the fields a host, a client and the CLI use; `json` keeps all of it.
struct tunnel_info {
  std::string tunnel_id;
  std::string cluster_id;
  std::string name;
  std::string description;
  std::vector<std::string> labels;
  std::vector<port_info> ports;  // empty when not requested (includePorts)
  std::vector<relay_endpoint_info> endpoints;
  std::map<std::string, std::string> access_tokens;  // scope -> token
  std::string created;
  nlohmann::json json;
};

/// A refusal or failure: the HTTP status (0 when no response arrived) and the ProblemDetails text.
struct management_error {
  int status = 0;
  std::string title;
  std::string detail;
  /// "401 Unauthorized: the management token is not valid", or the network error when status is 0.
  std::string message() const;
};

// ---------------------------------------------------------------------------------------------------------
// Requests

/// GET /tunnels/{id}?includePorts=true&tokenScopes=host,connect. Each entry of `token_scopes` is one token
/// (an entry may hold several space-separated scopes, for one token carrying them all).
management_request get_tunnel_request(const std::string& tunnel_id,
                                      const std::vector<std::string>& token_scopes = {},
                                      bool include_ports = true);
/// PUT /tunnels/{id} with `If-None-Match: *` (create only: 409 when it exists), asking for tokens.
management_request create_tunnel_request(const std::string& tunnel_id,
                                         const std::vector<std::uint16_t>& ports,
                                         const std::vector<std::string>& token_scopes = {});
management_request delete_tunnel_request(const std::string& tunnel_id);
/// GET /tunnels (the management token lists every tunnel).
management_request list_tunnels_request(bool include_ports = true);
/// PUT /tunnels/{id}/ports/{port}: adds the port or keeps it as it is.
management_request put_port_request(const std::string& tunnel_id, std::uint16_t port,
                                    const std::string& protocol = "auto");
management_request delete_port_request(const std::string& tunnel_id, std::uint16_t port);
/// PUT /tunnels/{id}/endpoints/{endpointId}?connectionMode=TunnelRelay.
management_request put_endpoint_request(const std::string& tunnel_id, const endpoint_registration& endpoint);
management_request delete_endpoint_request(const std::string& tunnel_id, const std::string& endpoint_id);

/// Percent-encodes everything outside RFC 3986 unreserved characters, for one path segment or query value.
std::string url_encode(std::string_view text);

/// A fresh id the relay accepts (3-49 of [a-z0-9-], alphanumeric ends): "sb-" and 12 random characters.
std::string generate_tunnel_id();

// ---------------------------------------------------------------------------------------------------------
// Responses

/// The error a non-2xx response stands for: ProblemDetails `title`/`detail` when the body is one, else the
/// body text (shortened) or the status's reason phrase. nullopt for 2xx.
std::optional<management_error> response_error(int status, std::string_view body);

std::variant<tunnel_info, std::string> parse_tunnel(std::string_view body);
/// Accepts the relay's regional shape `{"value":[{"clusterId":..,"value":[tunnels]}]}`, a flat
/// `{"value":[tunnels]}` and a bare array.
std::variant<std::vector<tunnel_info>, std::string> parse_tunnel_list(std::string_view body);
std::variant<port_info, std::string> parse_port(std::string_view body);
std::variant<relay_endpoint_info, std::string> parse_endpoint(std::string_view body);

}  // namespace sb::tunnel

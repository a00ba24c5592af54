#pragma once
// The management API calls of tunnel/management_client performed over HTTP(S) with http_client: what the
// CLI (`switchboard tunnel ...`) and the tunnel host/client use to reach a relay. Synchronous; every result
// is a value: the parsed response, or a management_error with the HTTP status (0 for a network failure) and
// the ProblemDetails detail.
#include <string>
#include <variant>
#include <vector>

#include "tunnel/io/http_client.hpp"
#include "tunnel/management_client.hpp"

namespace sb::tunnel::io {

/// Where and as whom: the relay's base URL (`--public-url`, no path; a trailing '/' is fine) and the full
/// `Authorization` value (tunnel::bearer_authorization or tunnel::tunnel_authorization).
struct management_target {
  std::string base_url;
  std::string authorization;
  http_client_options http;
};

template <class T>
using management_result = std::variant<T, tunnel::management_error>;

/// DELETE answers carry nothing beyond success.
struct management_done {};

/// Sends one request built by tunnel/management_client; a non-2xx reply becomes a management_error.
management_result<http_reply> perform(const management_target& target,
                                      const tunnel::management_request& request);

management_result<tunnel::tunnel_info> get_tunnel(const management_target& target,
                                                  const std::string& tunnel_id,
                                                  const std::vector<std::string>& token_scopes = {},
                                                  bool include_ports = true);
management_result<tunnel::tunnel_info> create_tunnel(const management_target& target,
                                                     const std::string& tunnel_id,
                                                     const std::vector<std::uint16_t>& ports,
                                                     const std::vector<std::string>& token_scopes = {});
management_result<management_done> delete_tunnel(const management_target& target,
                                                 const std::string& tunnel_id);
management_result<std::vector<tunnel::tunnel_info>> list_tunnels(const management_target& target,
                                                                 bool include_ports = true);
management_result<tunnel::port_info> put_port(const management_target& target, const std::string& tunnel_id,
                                              std::uint16_t port);
management_result<management_done> delete_port(const management_target& target, const std::string& tunnel_id,
                                               std::uint16_t port);
/// Registers the host's endpoint; the answer carries `hostRelayUri` and `clientRelayUri`.
management_result<tunnel::relay_endpoint_info> put_endpoint(const management_target& target,
                                                            const std::string& tunnel_id,
                                                            const tunnel::endpoint_registration& endpoint);
management_result<management_done> delete_endpoint(const management_target& target,
                                                   const std::string& tunnel_id,
                                                   const std::string& endpoint_id);

}  // namespace sb::tunnel::io

#include "tunnel/io/management_http.hpp"

namespace sb::tunnel::io {

namespace {

tunnel::management_error network_error(std::string message) {
  tunnel::management_error e;
  e.detail = std::move(message);
  return e;
}

/// A 2xx reply whose body does not parse: the status is kept so the caller can tell it from a refusal.
tunnel::management_error bad_response(const http_reply& reply, const std::string& what) {
  tunnel::management_error e;
  e.status = reply.status;
  e.title = "unexpected response";
  e.detail = what;
  return e;
}

template <class T, class Parse>
management_result<T> call(const management_target& target, const tunnel::management_request& request,
                          Parse parse) {
  auto reply = perform(target, request);
  if (auto* error = std::get_if<tunnel::management_error>(&reply)) return *error;
  const auto& r = std::get<http_reply>(reply);
  auto parsed = parse(r.body);
  if (auto* error = std::get_if<std::string>(&parsed)) return bad_response(r, *error);
  return std::get<T>(std::move(parsed));
}

management_result<management_done> call_done(const management_target& target,
                                             const tunnel::management_request& request) {
  auto reply = perform(target, request);
  if (auto* error = std::get_if<tunnel::management_error>(&reply)) return *error;
  return management_done{};
}

}  // namespace

management_result<http_reply> perform(const management_target& target,
                                      const tunnel::management_request& request) {
  std::string base = target.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  http_call c;
  c.method = request.method;
  c.url = base + request.target;
  c.headers = request.headers;
  if (!target.authorization.empty()) c.headers["Authorization"] = target.authorization;
  c.body = request.body;
  auto outcome = http_request(c, target.http);
  if (auto* error = std::get_if<std::string>(&outcome)) return network_error(*error);
  auto& reply = std::get<http_reply>(outcome);
  if (auto error = tunnel::response_error(reply.status, reply.body)) return *error;
  return std::move(reply);
}

management_result<tunnel::tunnel_info> get_tunnel(const management_target& target,
                                                  const std::string& tunnel_id,
                                                  const std::vector<std::string>& token_scopes,
                                                  bool include_ports) {
  return call<tunnel::tunnel_info>(target, tunnel::get_tunnel_request(tunnel_id, token_scopes, include_ports),
                                   tunnel::parse_tunnel);
}

management_result<tunnel::tunnel_info> create_tunnel(const management_target& target,
                                                     const std::string& tunnel_id,
                                                     const std::vector<std::uint16_t>& ports,
                                                     const std::vector<std::string>& token_scopes) {
  return call<tunnel::tunnel_info>(target, tunnel::create_tunnel_request(tunnel_id, ports, token_scopes),
                                   tunnel::parse_tunnel);
}

management_result<management_done> delete_tunnel(const management_target& target,
                                                 const std::string& tunnel_id) {
  return call_done(target, tunnel::delete_tunnel_request(tunnel_id));
}

management_result<std::vector<tunnel::tunnel_info>> list_tunnels(const management_target& target,
                                                                 bool include_ports) {
  return call<std::vector<tunnel::tunnel_info>>(target, tunnel::list_tunnels_request(include_ports),
                                                tunnel::parse_tunnel_list);
}

management_result<tunnel::port_info> put_port(const management_target& target, const std::string& tunnel_id,
                                              std::uint16_t port) {
  return call<tunnel::port_info>(target, tunnel::put_port_request(tunnel_id, port), tunnel::parse_port);
}

management_result<management_done> delete_port(const management_target& target, const std::string& tunnel_id,
                                               std::uint16_t port) {
  return call_done(target, tunnel::delete_port_request(tunnel_id, port));
}

management_result<tunnel::relay_endpoint_info> put_endpoint(const management_target& target,
                                                            const std::string& tunnel_id,
                                                            const tunnel::endpoint_registration& endpoint) {
  return call<tunnel::relay_endpoint_info>(target, tunnel::put_endpoint_request(tunnel_id, endpoint),
                                           tunnel::parse_endpoint);
}

management_result<management_done> delete_endpoint(const management_target& target,
                                                   const std::string& tunnel_id,
                                                   const std::string& endpoint_id) {
  return call_done(target, tunnel::delete_endpoint_request(tunnel_id, endpoint_id));
}

}  // namespace sb::tunnel::io

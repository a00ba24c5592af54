#include "tunnel/management_client.hpp"

#include <algorithm>
#include <cctype>

#include "protocol/json_bounds.hpp"
#include "tunnel/ssh/crypto.hpp"

namespace sb::tunnel {

namespace {

using json = nlohmann::json;

constexpr const char* json_content_type = "application/json";
constexpr const char* tunnel_relay_mode = "TunnelRelay";
// A non-ProblemDetails error body (a proxy's HTML page, say) is quoted up to this many characters.
constexpr std::size_t max_quoted_body = 200;
constexpr std::size_t generated_id_length = 12;

std::string with_api_version(std::string target) {
  target += target.find('?') == std::string::npos ? '?' : '&';
  return target + "api-version=" + management_api_version;
}

std::string tunnel_path(const std::string& tunnel_id) { return "/tunnels/" + url_encode(tunnel_id); }

std::string scopes_query(const std::vector<std::string>& token_scopes) {
  std::string joined;
  for (const auto& s : token_scopes) {
    if (s.empty()) continue;
    joined += (joined.empty() ? "" : ",") + url_encode(s);
  }
  return joined;
}

management_request json_request(std::string method, std::string target, const json& body) {
  management_request r;
  r.method = std::move(method);
  r.target = with_api_version(std::move(target));
  r.headers["Content-Type"] = json_content_type;
  r.body = body.dump();
  return r;
}

management_request bodiless_request(std::string method, std::string target) {
  management_request r;
  r.method = std::move(method);
  r.target = with_api_version(std::move(target));
  return r;
}

// ---------------------------------------------------------------------------------------------------------
// Tolerant field readers: a field of the wrong type reads as absent, since what matters to the caller is
// checked explicitly (tunnelId, relay URIs).

std::string text(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

std::vector<std::string> strings(const json& object, const char* key) {
  std::vector<std::string> out;
  auto it = object.find(key);
  if (it == object.end() || !it->is_array()) return out;
  for (const auto& item : *it)
    if (item.is_string()) out.push_back(item.get<std::string>());
  return out;
}

std::variant<port_info, std::string> port_from(const json& j) {
  if (!j.is_object()) return std::string("a port is not a JSON object");
  auto it = j.find("portNumber");
  if (it == j.end() || !it->is_number_unsigned() || it->get<std::uint64_t>() == 0 ||
      it->get<std::uint64_t>() > 65535)
    return std::string("a port has no valid 'portNumber'");
  port_info p;
  p.port_number = static_cast<std::uint16_t>(it->get<std::uint64_t>());
  p.protocol = text(j, "protocol");
  p.name = text(j, "name");
  p.description = text(j, "description");
  p.labels = strings(j, "labels");
  return p;
}

std::variant<relay_endpoint_info, std::string> endpoint_from(const json& j) {
  if (!j.is_object()) return std::string("an endpoint is not a JSON object");
  relay_endpoint_info e;
  e.id = text(j, "id");
  e.connection_mode = text(j, "connectionMode");
  e.host_id = text(j, "hostId");
  e.host_public_keys = strings(j, "hostPublicKeys");
  e.host_relay_uri = text(j, "hostRelayUri");
  e.client_relay_uri = text(j, "clientRelayUri");
  return e;
}

std::variant<tunnel_info, std::string> tunnel_from(const json& j) {
  if (!j.is_object()) return std::string("a tunnel is not a JSON object");
  tunnel_info t;
  t.tunnel_id = text(j, "tunnelId");
  if (t.tunnel_id.empty()) return std::string("a tunnel has no 'tunnelId'");
  t.cluster_id = text(j, "clusterId");
  t.name = text(j, "name");
  t.description = text(j, "description");
  t.labels = strings(j, "labels");
  t.created = text(j, "created");
  if (auto it = j.find("ports"); it != j.end() && it->is_array()) {
    for (const auto& item : *it) {
      auto p = port_from(item);
      if (auto* error = std::get_if<std::string>(&p)) return "tunnel '" + t.tunnel_id + "': " + *error;
      t.ports.push_back(std::get<port_info>(std::move(p)));
    }
  }
  if (auto it = j.find("endpoints"); it != j.end() && it->is_array()) {
    for (const auto& item : *it) {
      auto e = endpoint_from(item);
      if (auto* error = std::get_if<std::string>(&e)) return "tunnel '" + t.tunnel_id + "': " + *error;
      t.endpoints.push_back(std::get<relay_endpoint_info>(std::move(e)));
    }
  }
  if (auto it = j.find("accessTokens"); it != j.end() && it->is_object())
    for (const auto& [scope, token] : it->items())
      if (token.is_string()) t.access_tokens[scope] = token.get<std::string>();
  t.json = j;
  return t;
}

std::variant<json, std::string> parse_json(std::string_view body) {
  auto parsed = protocol::parse_untrusted_json(body);
  if (!parsed.ok())
    return "the response is " + protocol::describe(parsed.error, protocol::default_max_json_depth);
  return std::move(parsed.value);
}

}  // namespace

std::string bearer_authorization(std::string_view management_token) {
  return "Bearer " + std::string(management_token);
}

std::string authorization_for(std::string_view token) {
  return std::count(token.begin(), token.end(), '.') == 2 ? tunnel_authorization(token)
                                                          : bearer_authorization(token);
}

std::string tunnel_authorization(std::string_view access_token) {
  return "tunnel " + std::string(access_token);
}

std::string management_error::message() const {
  if (status == 0) return detail.empty() ? title : detail;
  std::string out = std::to_string(status);
  if (!title.empty()) out += " " + title;
  if (!detail.empty()) out += ": " + detail;
  return out;
}

// ---------------------------------------------------------------------------------------------------------

management_request get_tunnel_request(const std::string& tunnel_id,
                                      const std::vector<std::string>& token_scopes, bool include_ports) {
  std::string target = tunnel_path(tunnel_id);
  std::string query;
  if (include_ports) query += "includePorts=true";
  if (auto scopes = scopes_query(token_scopes); !scopes.empty())
    query += (query.empty() ? "" : "&") + std::string("tokenScopes=") + scopes;
  if (!query.empty()) target += "?" + query;
  return bodiless_request("GET", target);
}

management_request create_tunnel_request(const std::string& tunnel_id,
                                         const std::vector<std::uint16_t>& ports,
                                         const std::vector<std::string>& token_scopes) {
  json body = {{"tunnelId", tunnel_id}, {"ports", json::array()}};
  for (auto p : ports) body["ports"].push_back({{"portNumber", p}, {"protocol", "auto"}});
  std::string target = tunnel_path(tunnel_id);
  if (auto scopes = scopes_query(token_scopes); !scopes.empty()) target += "?tokenScopes=" + scopes;
  auto r = json_request("PUT", target, body);
  // Create only: an existing tunnel is a 409, not silently updated.
  r.headers["If-None-Match"] = "*";
  return r;
}

management_request delete_tunnel_request(const std::string& tunnel_id) {
  return bodiless_request("DELETE", tunnel_path(tunnel_id));
}

management_request list_tunnels_request(bool include_ports) {
  return bodiless_request("GET", include_ports ? "/tunnels?includePorts=true" : "/tunnels");
}

management_request put_port_request(const std::string& tunnel_id, std::uint16_t port,
                                    const std::string& protocol) {
  return json_request("PUT", tunnel_path(tunnel_id) + "/ports/" + std::to_string(port),
                      {{"portNumber", port}, {"protocol", protocol}});
}

management_request delete_port_request(const std::string& tunnel_id, std::uint16_t port) {
  return bodiless_request("DELETE", tunnel_path(tunnel_id) + "/ports/" + std::to_string(port));
}

management_request put_endpoint_request(const std::string& tunnel_id, const endpoint_registration& endpoint) {
  json body = {{"id", endpoint.id},
               {"hostId", endpoint.host_id},
               {"hostPublicKeys", endpoint.host_public_keys},
               {"connectionMode", tunnel_relay_mode}};
  return json_request("PUT",
                      tunnel_path(tunnel_id) + "/endpoints/" + url_encode(endpoint.id) +
                          "?connectionMode=" + tunnel_relay_mode,
                      body);
}

management_request delete_endpoint_request(const std::string& tunnel_id, const std::string& endpoint_id) {
  return bodiless_request("DELETE", tunnel_path(tunnel_id) + "/endpoints/" + url_encode(endpoint_id));
}

std::string url_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                            c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xf]);
    }
  }
  return out;
}

std::string generate_tunnel_id() {
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  constexpr unsigned alphabet_size = sizeof alphabet - 1;
  // Rejection sampling keeps every character equally likely (256 is not a multiple of 36).
  constexpr unsigned accept_below = 256 - 256 % alphabet_size;
  std::string id = "sb-";
  while (id.size() < 3 + generated_id_length) {
    for (auto b : ssh::random_bytes(2 * generated_id_length)) {
      if (b >= accept_below) continue;
      id.push_back(alphabet[b % alphabet_size]);
      if (id.size() == 3 + generated_id_length) break;
    }
  }
  return id;
}

// ---------------------------------------------------------------------------------------------------------

std::optional<management_error> response_error(int status, std::string_view body) {
  if (status >= 200 && status < 300) return std::nullopt;
  management_error e;
  e.status = status;
  const auto j = protocol::parse_untrusted_json(body).value;
  if (j.is_object() && (j.contains("title") || j.contains("detail"))) {
    e.title = text(j, "title");
    e.detail = text(j, "detail");
    // Some services put the useful text under `errors` (ValidationProblemDetails); keep it visible.
    if (e.detail.empty())
      if (auto it = j.find("errors"); it != j.end() && !it->is_null()) e.detail = it->dump();
  } else {
    e.title = reason_phrase(status);
    std::string quoted(body.substr(0, max_quoted_body));
    while (!quoted.empty() && std::isspace(static_cast<unsigned char>(quoted.back()))) quoted.pop_back();
    if (body.size() > max_quoted_body) quoted += "...";
    e.detail = quoted;
  }
  if (e.title.empty()) e.title = reason_phrase(status);
  return e;
}

std::variant<tunnel_info, std::string> parse_tunnel(std::string_view body) {
  auto j = parse_json(body);
  if (auto* error = std::get_if<std::string>(&j)) return *error;
  return tunnel_from(std::get<json>(j));
}

std::variant<std::vector<tunnel_info>, std::string> parse_tunnel_list(std::string_view body) {
  auto parsed = parse_json(body);
  if (auto* error = std::get_if<std::string>(&parsed)) return *error;
  const auto& j = std::get<json>(parsed);
  const json* items = &j;
  if (j.is_object()) {
    auto it = j.find("value");
    if (it == j.end()) return std::string("the tunnel list has no 'value'");
    items = &*it;
  }
  if (!items->is_array()) return std::string("the tunnel list is not an array");
  std::vector<tunnel_info> out;
  for (const auto& item : *items) {
    // TunnelListByRegion: {"clusterId": .., "value": [tunnels]} per region.
    if (item.is_object() && !item.contains("tunnelId") && item.contains("value")) {
      const auto& region = item["value"];
      if (!region.is_array()) return std::string("a region's 'value' is not an array");
      for (const auto& t : region) {
        auto parsed_tunnel = tunnel_from(t);
        if (auto* error = std::get_if<std::string>(&parsed_tunnel)) return *error;
        out.push_back(std::get<tunnel_info>(std::move(parsed_tunnel)));
      }
      continue;
    }
    auto parsed_tunnel = tunnel_from(item);
    if (auto* error = std::get_if<std::string>(&parsed_tunnel)) return *error;
    out.push_back(std::get<tunnel_info>(std::move(parsed_tunnel)));
  }
  return out;
}

std::variant<port_info, std::string> parse_port(std::string_view body) {
  auto j = parse_json(body);
  if (auto* error = std::get_if<std::string>(&j)) return *error;
  return port_from(std::get<json>(j));
}

std::variant<relay_endpoint_info, std::string> parse_endpoint(std::string_view body) {
  auto j = parse_json(body);
  if (auto* error = std::get_if<std::string>(&j)) return *error;
  auto e = endpoint_from(std::get<json>(j));
  if (auto* endpoint = std::get_if<relay_endpoint_info>(&e)) {
    // The host cannot connect without them; a response that lacks them is the relay's error.
    if (endpoint->host_relay_uri.empty() || endpoint->client_relay_uri.empty())
      return std::string("the endpoint response has no 'hostRelayUri' or 'clientRelayUri'");
  }
  return e;
}

}  // namespace sb::tunnel

#include "tunnel/management.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <set>
#include <stdexcept>
#include <variant>

#include "protocol/ids.hpp"
#include "protocol/json_bounds.hpp"
#include "protocol/text.hpp"
#include "tunnel/management_fields.hpp"

namespace sb::tunnel {

using namespace fields;

namespace {

constexpr const char* json_content_type = "application/json";
constexpr const char* problem_content_type = "application/problem+json";

// Scopes per kind of access (TUNNEL.md "Auth" and contracts tunnelAccessScopes.ts: `host` "includes access
// to update tunnel endpoints and ports"; the SDK itself picks a host token for port changes).
using scope_list = std::vector<const char*>;
const scope_list read_scopes = {scope::manage, scope::manage_ports, scope::host, scope::connect};
const scope_list manage_scopes = {scope::manage};
const scope_list port_write_scopes = {scope::manage, scope::manage_ports, scope::host};
const scope_list endpoint_scopes = {scope::manage, scope::host};
const scope_list event_scopes = read_scopes;

const std::set<std::string> grantable_scopes = {scope::manage, scope::manage_ports, scope::host,
                                                scope::inspect, scope::connect};
// Valid in the SDK's scope list but meaningless for an existing tunnel, so never granted.
constexpr const char* create_scope = "create";

// ---------------------------------------------------------------------------------------------------------
// Responses

http_response json_response(int status, const json& body) {
  http_response r;
  r.status = status;
  r.headers["Content-Type"] = json_content_type;
  r.body = dump(body);
  return r;
}

// DELETE and event uploads return a boolean in every SDK (the C# one deserializes the body as bool, so an
// empty 200 body would fail there).
http_response true_response() { return json_response(200, true); }

// RFC 7807 ProblemDetails; the SDK shows "Tunnel service error: <title> <detail>".
http_response problem(int status, const std::string& detail) {
  http_response r;
  r.status = status;
  r.headers["Content-Type"] = problem_content_type;
  r.body = dump(json{{"title", reason_phrase(status)}, {"detail", detail}, {"status", status}});
  if (status == 401) r.headers["WWW-Authenticate"] = "tunnel, Bearer";
  return r;
}

http_response tunnel_not_found(const std::string& id) {
  return problem(404, "tunnel '" + id + "' not found");
}

bool query_flag(const http_request& request, const char* name) {
  auto it = request.query.find(name);
  if (it == request.query.end()) return false;
  // `?includePorts` with no value reads as true, like the service.
  return it->second.empty() || iequals(it->second, "true") || it->second == "1";
}

std::string header(const http_request& request, const char* lower_name) {
  auto it = request.headers.find(lower_name);
  return it == request.headers.end() ? std::string{} : it->second;
}

}  // namespace

// -------------------------------------------------------------------------------------------------------------

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  for (const auto& item : split(query, '&')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    auto name = percent_decode(std::string_view(item).substr(0, eq), true);
    auto value = eq == std::string::npos ? std::optional<std::string>("")
                                         : percent_decode(std::string_view(item).substr(eq + 1), true);
    // A malformed escape drops only that parameter; the route then behaves as if it was not sent.
    if (!name || !value || name->empty()) continue;
    auto [it, inserted] = out.emplace(*name, *value);
    if (!inserted) it->second += "," + *value;
  }
  return out;
}

std::int64_t system_clock_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// -------------------------------------------------------------------------------------------------------------
// management_api

struct management_api::caller {
  bool admin = false;  // the management bearer token
  token_claims claims;

  bool holds(std::string_view s) const {
    return admin || claims.has_scope(scope::manage) || claims.has_scope(s);
  }
};

namespace {

// 403 for a tunnel token of another tunnel, or one without any of `scopes`. Checked before looking the
// tunnel up, so a token for tunnel A cannot learn whether tunnel B exists.
template <typename Caller>
std::optional<http_response> deny(const Caller& who, const std::string& tunnel_id, const scope_list& scopes) {
  if (who.admin) return std::nullopt;
  if (who.claims.tunnel_id != tunnel_id) return problem(403, "the access token is for another tunnel");
  for (const char* s : scopes)
    if (who.holds(s)) return std::nullopt;
  std::string names;
  for (const char* s : scopes) names += (names.empty() ? "" : ", ") + std::string(s);
  return problem(403, "the access token has none of the scopes this request needs (" + names + ")");
}

// A body, or the 400 that refuses it. Parsed through the one bounded door: a deeply nested body would
// otherwise overflow the stack when the value is later copied or dumped (a connect token is enough to post
// one to /events).
std::variant<json, http_response> parse_body(const http_request& request, std::size_t max_depth,
                                             std::atomic<std::uint64_t>& too_deep) {
  auto body = protocol::parse_untrusted_json(request.body, max_depth);
  if (body.error == protocol::json_parse_error::too_deep) {
    ++too_deep;
    return problem(400, "the request body is refused: " + protocol::describe(body.error, max_depth));
  }
  if (!body.ok()) return problem(400, "the request body is not valid JSON");
  return std::move(body.value);
}

std::string normalize_public_url(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  const bool http = url.rfind("http://", 0) == 0, https = url.rfind("https://", 0) == 0;
  if (!http && !https) throw std::invalid_argument("public URL must start with http:// or https://: " + url);
  const auto host_start = url.find("://") + 3;
  if (host_start >= url.size()) throw std::invalid_argument("public URL has no host: " + url);
  // The SDK rejects a service URI whose path is not "/" (TUNNEL.md "Management API").
  if (url.find_first_of("/?#", host_start) != std::string::npos)
    throw std::invalid_argument("public URL must not have a path: " + url);
  return url;
}

}  // namespace

management_api::management_api(tunnel_store& store, std::string management_token, std::string public_url,
                               signing_key key, clock_fn clock, std::chrono::seconds token_lifetime)
    : store_(store),
      management_token_(std::move(management_token)),
      public_url_(normalize_public_url(std::move(public_url))),
      key_(std::move(key)),
      clock_(clock ? std::move(clock) : clock_fn(system_clock_seconds)),
      token_lifetime_(token_lifetime) {
  const bool https = public_url_.rfind("https://", 0) == 0;
  ws_base_ = (https ? "wss://" : "ws://") + public_url_.substr(public_url_.find("://") + 3);
}

namespace {

/// The answer to a change that could not be made durable: what failed, without the server's paths.
http_response not_durable(const char* what, const std::string& error) {
  const auto colon = error.rfind(": ");
  const auto reason = colon == std::string::npos ? error : error.substr(colon + 2);
  const bool full = reason == std::strerror(ENOSPC) || reason == std::strerror(EDQUOT);
  auto r = problem(full ? 507 : 503, std::string(what) + ": the relay cannot make changes durable (" +
                                         reason + "); nothing was changed");
  r.headers["Retry-After"] = "10";
  return r;
}

}  // namespace

void management_api::handle(const http_request& request, std::function<void(http_response)> done) {
  http_response response;
  std::shared_ptr<write_ticket> pending;
  const char* what = "";
  try {
    if (request.body.size() > max_request_body) {
      response = problem(413, "request bodies are limited to " + std::to_string(max_request_body) + " bytes");
    } else if (request.method == "GET") {
      // Reads only look at the durable snapshot: no lock, whatever the writers do.
      response = dispatch(request);
    } else {
      std::lock_guard lock(write_mutex_);
      pending_.reset();
      response = dispatch(request);
      pending = std::move(pending_);
      what = pending_what_;
    }
  } catch (const std::exception& e) {
    // Only our own failures (allocation, RNG) get here; input errors are answered as values above.
    spdlog::error("management API {} {}: {}", request.method, request.path, e.what());
    response = problem(500, "internal error");
  }
  response.headers[served_by_header] = served_by_value;
  if (!pending) return done(std::move(response));
  pending->on_settled([counters = counters_, what, response = std::move(response),
                       done = std::move(done)](const write_ticket::outcome& error) mutable {
    if (!error) return done(std::move(response));
    ++counters->store_write_failures;
    auto refused = not_durable(what, *error);
    refused.headers[served_by_header] = served_by_value;
    done(std::move(refused));
  });
}

http_response management_api::handle(const http_request& request) {
  std::promise<http_response> answer;
  auto f = answer.get_future();
  handle(request, [&answer](http_response r) { answer.set_value(std::move(r)); });
  return f.get();
}

void management_api::await_durable(std::shared_ptr<write_ticket> ticket, const char* what) {
  pending_ = std::move(ticket);
  pending_what_ = what;
}

http_response management_api::dispatch(const http_request& request) {
  // Split "/tunnels/{id}/ports/{port}" into decoded segments; one trailing '/' is tolerated.
  std::string_view path = request.path;
  if (path.empty() || path.front() != '/') return problem(404, "no such route");
  path.remove_prefix(1);
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  std::vector<std::string> seg;
  for (const auto& raw : split(path, '/')) {
    auto decoded = percent_decode(raw, false);
    if (!decoded || decoded->empty()) return problem(404, "no such route");
    seg.push_back(std::move(*decoded));
  }

  const std::string& method = request.method;
  auto allow = [&](const std::vector<std::string>& methods) -> std::optional<http_response> {
    if (std::find(methods.begin(), methods.end(), method) != methods.end()) return std::nullopt;
    std::string list;
    for (const auto& m : methods) list += (list.empty() ? "" : ", ") + m;
    auto r = problem(405, method + " is not supported here; use " + list);
    r.headers["Allow"] = list;
    return r;
  };

  // Cluster discovery is anonymous, as in the service: the SDK asks before it has any tunnel token.
  if (seg.size() == 1 && seg[0] == "clusters") {
    if (auto r = allow({"GET"})) return *r;
    return get_clusters();
  }
  if (seg.size() == 2 && seg[0] == "clusters" && seg[1] == "recommendations") {
    if (auto r = allow({"GET"})) return *r;
    return get_cluster_recommendations();
  }
  if (seg.empty() || seg[0] != "tunnels" || seg.size() > 4) return problem(404, "no such route");

  std::vector<std::string> methods;
  if (seg.size() == 1) methods = {"GET"};
  if (seg.size() == 2) methods = {"GET", "PUT", "DELETE"};
  if (seg.size() == 3 && seg[2] == "ports") methods = {"GET"};
  if (seg.size() == 3 && seg[2] == "events") methods = {"POST"};
  if (seg.size() == 4 && seg[2] == "ports") methods = {"GET", "PUT", "DELETE"};
  if (seg.size() == 4 && seg[2] == "endpoints") methods = {"PUT", "DELETE"};
  if (methods.empty()) return problem(404, "no such route");
  if (auto r = allow(methods)) return *r;

  caller who;
  if (auto r = authenticate(request, who)) return *r;

  if (seg.size() == 1) return list_tunnels(request, who);
  const std::string& id = seg[1];
  if (seg.size() == 2) {
    if (method == "GET") return get_tunnel(request, who, id);
    if (method == "PUT") return put_tunnel(request, who, id);
    return delete_tunnel(who, id);
  }
  if (seg.size() == 3) {
    if (seg[2] == "ports") return list_ports(who, id);
    return post_events(request, who, id);
  }
  if (seg[2] == "ports") {
    if (method == "GET") return get_port(who, id, seg[3]);
    if (method == "PUT") return put_port(request, who, id, seg[3]);
    return delete_port(who, id, seg[3]);
  }
  if (method == "PUT") return put_endpoint(request, who, id, seg[3]);
  return delete_endpoint(who, id, seg[3]);
}

std::optional<http_response> management_api::authenticate(const http_request& request, caller& out) const {
  const std::string value = header(request, "authorization");
  if (value.empty())
    return problem(
        401, "send 'Authorization: tunnel <access token>' or 'Authorization: Bearer <management token>'");
  const auto space = value.find(' ');
  const std::string_view scheme = std::string_view(value).substr(0, space);
  const std::string_view credential =
      space == std::string::npos ? std::string_view{} : protocol::trim(std::string_view(value).substr(space + 1));
  if (iequals(scheme, "bearer")) {
    if (management_token_.empty() ||
        !protocol::constant_time_equal(std::string(credential), management_token_))
      return problem(401, "the management token is not valid");
    out.admin = true;
    return std::nullopt;
  }
  if (iequals(scheme, "tunnel")) {
    auto verified = verify_token(credential, key_, clock_());
    if (auto* error = std::get_if<token_error>(&verified))
      return problem(401, "the tunnel access token is not valid: " + std::string(to_string(*error)));
    out.claims = std::get<token_claims>(std::move(verified));
    return std::nullopt;
  }
  return problem(401, "unsupported authorization scheme; use 'tunnel' or 'Bearer'");
}

relay_auth management_api::authorize_relay(const std::string& tunnel_id, std::string_view token,
                                           std::string_view required_scope) const {
  caller who;
  if (!management_token_.empty() && protocol::constant_time_equal(std::string(token), management_token_)) {
    who.admin = true;
  } else {
    auto verified = verify_token(token, key_, clock_());
    // Expired included: the SDK refreshes its token once on 401 and retries (devtunnels-protocol.md §4).
    if (std::holds_alternative<token_error>(verified)) return relay_auth::unauthorized;
    who.claims = std::get<token_claims>(std::move(verified));
    if (who.claims.tunnel_id != tunnel_id || !who.holds(required_scope)) return relay_auth::forbidden;
  }
  return store_.find(tunnel_id) ? relay_auth::ok : relay_auth::not_found;
}

std::size_t management_api::stored_tunnels() const { return store_.size(); }

std::optional<tunnel_record> management_api::find_tunnel(const std::string& tunnel_id) const {
  return store_.find(tunnel_id);
}

std::optional<tunnel_endpoint> management_api::current_endpoint(const std::string& tunnel_id) const {
  auto t = store_.find(tunnel_id);
  if (!t) return std::nullopt;
  for (const auto& e : t->endpoints)
    if (e.connection_mode == tunnel_relay_mode) return e;
  return std::nullopt;
}

void management_api::set_max_json_depth(std::size_t depth) {
  max_json_depth_ = std::clamp<std::size_t>(depth, 1, default_max_json_depth);
}

void management_api::set_relay_host_public_keys(std::vector<std::string> base64_keys) {
  relay_host_keys_ = std::move(base64_keys);
}

std::string management_api::issue_tunnel_token(const std::string& tunnel_id,
                                               const std::vector<std::string>& scopes) const {
  token_claims claims;
  claims.tunnel_id = tunnel_id;
  claims.cluster_id = local_cluster_id;
  claims.scopes = scopes;
  claims.iat = clock_();
  claims.exp = claims.iat + token_lifetime_.count();
  claims.iss = public_url_;
  return issue_token(claims, key_);
}

std::string management_api::relay_uri(const std::string& tunnel_id, const char* role) const {
  return ws_base_ + "/tunnels/" + tunnel_id + "/" + role;
}
std::string management_api::host_relay_uri(const std::string& tunnel_id) const {
  return relay_uri(tunnel_id, "host");
}
std::string management_api::client_relay_uri(const std::string& tunnel_id) const {
  return relay_uri(tunnel_id, "client");
}

// ---------------------------------------------------------------------------------------------------------
// Contract shapes (contracts tunnel.ts, tunnelPort.ts, tunnelRelayTunnelEndpoint.ts)

nlohmann::json management_api::endpoint_json(const tunnel_record& t, const tunnel_endpoint& e) const {
  json j = endpoint_fields(e);
  for (const auto& k : relay_host_keys_) j["hostPublicKeys"].push_back(k);
  j["hostRelayUri"] = host_relay_uri(t.tunnel_id);
  j["clientRelayUri"] = client_relay_uri(t.tunnel_id);
  return j;
}

namespace {

json port_json(const tunnel_record& t, const tunnel_port& p) {
  json j = port_fields(p);
  j["clusterId"] = t.cluster_id;
  j["tunnelId"] = t.tunnel_id;
  return j;
}

}  // namespace

nlohmann::json management_api::tunnel_json(const tunnel_record& t, bool include_ports,
                                           const std::map<std::string, std::string>& tokens) const {
  json j = {{"clusterId", t.cluster_id},
            {"tunnelId", t.tunnel_id},
            {"labels", t.labels},
            {"endpoints", json::array()},
            {"created", iso8601(t.created)}};
  if (!t.name.empty()) j["name"] = t.name;
  if (!t.description.empty()) j["description"] = t.description;
  if (!t.options.is_null()) j["options"] = t.options;
  // Clients refuse a tunnel whose `endpoints` is missing, so it is always an array (TUNNEL.md).
  for (const auto& e : t.endpoints) j["endpoints"].push_back(endpoint_json(t, e));
  if (include_ports) {
    j["ports"] = json::array();
    for (const auto& p : t.ports) j["ports"].push_back(port_json(t, p));
  }
  if (!tokens.empty()) j["accessTokens"] = tokens;
  return j;
}

namespace {

// `tokenScopes=host,connect`: one token per item; an item may itself be several space-separated scopes
// (the SDK's validateScopes allows that), giving one token with all of them under that key. Items the
// caller does not hold are left out, not refused (TUNNEL.md).
template <typename Caller, typename Issue>
std::variant<std::map<std::string, std::string>, http_response> requested_tokens(const http_request& request,
                                                                                 const Caller& who,
                                                                                 const Issue& issue) {
  std::map<std::string, std::string> tokens;
  auto it = request.query.find("tokenScopes");
  if (it == request.query.end()) return tokens;
  for (const auto& item : split(it->second, ',')) {
    std::vector<std::string> scopes;
    for (const auto& s : split(item, ' '))
      if (!s.empty()) scopes.push_back(s);
    if (scopes.empty()) continue;
    bool held = true;
    for (const auto& s : scopes) {
      if (s == create_scope) {
        held = false;
      } else if (!grantable_scopes.count(s)) {
        return problem(400, "unknown token scope '" + s + "'");
      } else if (!who.holds(s)) {
        held = false;
      }
    }
    if (!held) continue;
    std::string key;
    for (const auto& s : scopes) key += (key.empty() ? "" : " ") + s;
    tokens[key] = issue(scopes);
  }
  return tokens;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Routes

http_response management_api::get_clusters() const {
  // ClusterDetails[]
  return json_response(200, json::array({{{"clusterId", local_cluster_id},
                                          {"uri", public_url_ + "/"},
                                          {"azureLocation", local_cluster_id}}}));
}

http_response management_api::get_cluster_recommendations() const {
  // ClusterRecommendationResponse; the SDK's createTunnel reads only recommendedClusterId.
  json recommendation = {{"clusterId", local_cluster_id},
                         {"azureLocation", local_cluster_id},
                         {"azureGeo", local_cluster_id},
                         {"clusterUri", public_url_ + "/"},
                         {"availability", "Available"},
                         {"utilizationPercent", 0},
                         {"reason", "the only cluster of this relay"}};
  return json_response(200, {{"recommendedClusterId", local_cluster_id},
                             {"isFallback", false},
                             {"recommendations", json::array({recommendation})}});
}

http_response management_api::list_tunnels(const http_request& request, const caller& who) {
  if (!who.admin) return problem(403, "listing tunnels needs the management token");
  std::vector<std::string> wanted;
  if (auto it = request.query.find("labels"); it != request.query.end())
    for (const auto& l : split(it->second, ','))
      if (!l.empty()) wanted.push_back(l);
  const bool all_labels = query_flag(request, "allLabels");
  std::size_t limit = SIZE_MAX;
  if (auto it = request.query.find("limit"); it != request.query.end()) {
    auto n = parse_port_number(it->second);  // 1..65535 is plenty for a page size
    if (!n) return problem(400, "'limit' must be a positive integer");
    limit = *n;
  }
  const bool include_ports = query_flag(request, "includePorts");

  json tunnels = json::array();
  for (const auto& t : store_.list()) {
    if (tunnels.size() >= limit) break;
    if (!wanted.empty()) {
      auto has = [&](const std::string& l) { return std::count(t.labels.begin(), t.labels.end(), l) > 0; };
      const bool match = all_labels ? std::all_of(wanted.begin(), wanted.end(), has)
                                    : std::any_of(wanted.begin(), wanted.end(), has);
      if (!match) continue;
    }
    auto tokens = requested_tokens(request, who, [&](const std::vector<std::string>& scopes) {
      return issue_tunnel_token(t.tunnel_id, scopes);
    });
    if (auto* r = std::get_if<http_response>(&tokens)) return *r;
    tunnels.push_back(tunnel_json(t, include_ports, std::get<0>(tokens)));
  }
  // TunnelListByRegionResponse: one region, our cluster.
  return json_response(200,
                       {{"value", json::array({{{"clusterId", local_cluster_id}, {"value", tunnels}}})}});
}

http_response management_api::get_tunnel(const http_request& request, const caller& who,
                                         const std::string& id) {
  if (auto r = deny(who, id, read_scopes)) return *r;
  auto t = store_.find(id);
  if (!t) return tunnel_not_found(id);
  auto tokens = requested_tokens(
      request, who, [&](const std::vector<std::string>& scopes) { return issue_tunnel_token(id, scopes); });
  if (auto* r = std::get_if<http_response>(&tokens)) return *r;
  return json_response(200, tunnel_json(*t, query_flag(request, "includePorts"), std::get<0>(tokens)));
}

http_response management_api::put_tunnel(const http_request& request, const caller& who,
                                         const std::string& id) {
  if (auto r = deny(who, id, manage_scopes)) return *r;
  if (!valid_tunnel_id(id))
    return problem(400, "a tunnel id is 3 to 49 lowercase letters, digits or inner '-'");
  auto parsed = parse_body(request, max_json_depth_, counters_->json_too_deep);
  if (auto* refused = std::get_if<http_response>(&parsed)) return *refused;
  const auto* body = &std::get<json>(parsed);

  auto existing = store_.find_latest(id);
  // The C# SDK sends If-None-Match; the TypeScript, Go and Java SDKs send "If-Not-Match" for the same
  // create-only request.
  const bool create_only = header(request, "if-none-match") == "*" || header(request, "if-not-match") == "*";
  const bool update_only = header(request, "if-match") == "*";
  if (existing && create_only) return problem(409, "tunnel '" + id + "' already exists");
  if (!existing && update_only) return tunnel_not_found(id);
  // A tunnel token speaks for a tunnel that exists; bringing one into being takes the management token.
  if (!existing && !who.admin) return problem(403, "creating a tunnel needs the management token");

  tunnel_record t = existing ? *existing : tunnel_record{};
  if (!existing) {
    t.tunnel_id = id;
    t.created = clock_();
  }
  if (auto error = apply_tunnel_body(*body, id, t)) return problem(400, *error);

  auto tokens = requested_tokens(
      request, who, [&](const std::vector<std::string>& scopes) { return issue_tunnel_token(id, scopes); });
  if (auto* r = std::get_if<http_response>(&tokens)) return *r;
  await_durable(store_.submit_put(t), "the tunnel could not be saved");
  spdlog::info("tunnel {} {}", id, existing ? "updated" : "created");
  return json_response(existing ? 200 : 201, tunnel_json(t, true, std::get<0>(tokens)));
}

http_response management_api::delete_tunnel(const caller& who, const std::string& id) {
  if (auto r = deny(who, id, manage_scopes)) return *r;
  if (!store_.find_latest(id)) return tunnel_not_found(id);
  await_durable(store_.submit_erase(id), "the tunnel could not be deleted");
  spdlog::info("tunnel {} deleted", id);
  return true_response();
}

http_response management_api::list_ports(const caller& who, const std::string& id) {
  if (auto r = deny(who, id, read_scopes)) return *r;
  auto t = store_.find(id);
  if (!t) return tunnel_not_found(id);
  json ports = json::array();
  for (const auto& p : t->ports) ports.push_back(port_json(*t, p));
  return json_response(200, {{"value", ports}});  // TunnelPortListResponse
}

http_response management_api::get_port(const caller& who, const std::string& id, const std::string& port) {
  if (auto r = deny(who, id, read_scopes)) return *r;
  auto t = store_.find(id);
  if (!t) return tunnel_not_found(id);
  const auto number = parse_port_number(port);
  if (number) {
    for (const auto& p : t->ports)
      if (p.port_number == *number) return json_response(200, port_json(*t, p));
  }
  return problem(404, "tunnel '" + id + "' has no port " + port);
}

http_response management_api::put_port(const http_request& request, const caller& who, const std::string& id,
                                       const std::string& port) {
  if (auto r = deny(who, id, port_write_scopes)) return *r;
  auto t = store_.find_latest(id);
  if (!t) return tunnel_not_found(id);
  const auto number = parse_port_number(port);
  if (!number) return problem(400, "a port number is an integer from 1 to 65535");
  auto parsed = parse_body(request, max_json_depth_, counters_->json_too_deep);
  if (auto* refused = std::get_if<http_response>(&parsed)) return *refused;
  const auto* body = &std::get<json>(parsed);
  tunnel_port p;
  if (auto error = read_port(*body, number, p)) return problem(400, *error);

  auto it = std::find_if(t->ports.begin(), t->ports.end(),
                         [&](const tunnel_port& q) { return q.port_number == *number; });
  const bool exists = it != t->ports.end();
  // Same create/update preconditions as tunnels: createTunnelPort sends If-Not-Match, updateTunnelPort
  // If-Match.
  if (exists && (header(request, "if-none-match") == "*" || header(request, "if-not-match") == "*"))
    return problem(409, "tunnel '" + id + "' already has port " + port);
  if (!exists && header(request, "if-match") == "*")
    return problem(404, "tunnel '" + id + "' has no port " + port);
  if (!exists && t->ports.size() >= max_ports)
    return problem(400, "a tunnel has at most " + std::to_string(max_ports) + " ports");

  if (exists) {
    *it = p;
  } else {
    t->ports.insert(std::upper_bound(t->ports.begin(), t->ports.end(), p,
                                     [](const tunnel_port& a, const tunnel_port& b) {
                                       return a.port_number < b.port_number;
                                     }),
                    p);
  }
  await_durable(store_.submit_put(*t), "the port could not be saved");
  spdlog::info("tunnel {} port {} {}", id, port, exists ? "updated" : "added");
  return json_response(exists ? 200 : 201, port_json(*t, p));
}

http_response management_api::delete_port(const caller& who, const std::string& id, const std::string& port) {
  if (auto r = deny(who, id, port_write_scopes)) return *r;
  auto t = store_.find_latest(id);
  if (!t) return tunnel_not_found(id);
  const auto number = parse_port_number(port);
  auto it = std::find_if(t->ports.begin(), t->ports.end(),
                         [&](const tunnel_port& q) { return number && q.port_number == *number; });
  if (it == t->ports.end()) return problem(404, "tunnel '" + id + "' has no port " + port);
  t->ports.erase(it);
  await_durable(store_.submit_put(*t), "the port could not be deleted");
  spdlog::info("tunnel {} port {} removed", id, port);
  return true_response();
}

http_response management_api::put_endpoint(const http_request& request, const caller& who,
                                           const std::string& id, const std::string& endpoint_id) {
  if (auto r = deny(who, id, endpoint_scopes)) return *r;
  auto t = store_.find_latest(id);
  if (!t) return tunnel_not_found(id);
  if (!valid_endpoint_id(endpoint_id)) return problem(400, "an endpoint id is 1 to 200 URL-safe characters");
  auto parsed = parse_body(request, max_json_depth_, counters_->json_too_deep);
  if (auto* refused = std::get_if<http_response>(&parsed)) return *refused;
  const auto* body = &std::get<json>(parsed);
  std::string mode;
  if (auto it = request.query.find("connectionMode"); it != request.query.end()) mode = it->second;
  tunnel_endpoint e;
  if (auto error = read_endpoint(*body, endpoint_id, mode, e)) return problem(400, *error);

  // One host per tunnel (TUNNEL.md): the new endpoint replaces every other relay endpoint — those of another
  // hostId, and an older one of the same host (the SDK's own update drops endpoints with the same hostId and
  // mode). Clients then see exactly one endpoint with the current host keys.
  const auto replaced = std::count_if(
      t->endpoints.begin(), t->endpoints.end(),
      [&](const tunnel_endpoint& x) { return x.connection_mode == e.connection_mode && x.id != e.id; });
  t->endpoints.erase(
      std::remove_if(t->endpoints.begin(), t->endpoints.end(),
                     [&](const tunnel_endpoint& x) { return x.connection_mode == e.connection_mode; }),
      t->endpoints.end());
  t->endpoints.push_back(e);
  await_durable(store_.submit_put(*t), "the endpoint could not be saved");
  spdlog::info("tunnel {} endpoint {} registered by host {}{}", id, endpoint_id, e.host_id,
               replaced > 0 ? fmt::format(", replacing {} other endpoint(s)", replaced) : std::string());
  return json_response(200, endpoint_json(*t, e));
}

http_response management_api::delete_endpoint(const caller& who, const std::string& id,
                                              const std::string& endpoint_id) {
  if (auto r = deny(who, id, endpoint_scopes)) return *r;
  auto t = store_.find_latest(id);
  if (!t) return tunnel_not_found(id);
  auto it = std::find_if(t->endpoints.begin(), t->endpoints.end(),
                         [&](const tunnel_endpoint& x) { return x.id == endpoint_id; });
  // 404 lets the SDK's deleteTunnelEndpoints report false for an endpoint another host already replaced.
  if (it == t->endpoints.end())
    return problem(404, "tunnel '" + id + "' has no endpoint '" + endpoint_id + "'");
  t->endpoints.erase(it);
  await_durable(store_.submit_put(*t), "the endpoint could not be deleted");
  spdlog::info("tunnel {} endpoint {} removed", id, endpoint_id);
  return true_response();
}

http_response management_api::post_events(const http_request& request, const caller& who,
                                          const std::string& id) {
  if (auto r = deny(who, id, event_scopes)) return *r;
  if (!store_.find(id)) return tunnel_not_found(id);
  auto parsed = parse_body(request, max_json_depth_, counters_->json_too_deep);
  if (auto* refused = std::get_if<http_response>(&parsed)) return *refused;
  const auto* body = &std::get<json>(parsed);
  // Current SDKs send an array of TunnelEvent; accept a single object too.
  const json events = body->is_array() ? *body : json::array({*body});
  auto text = [](const json& event, const char* name) {
    const json* v = event.is_object() ? field(event, name) : nullptr;
    if (!v || !v->is_string()) return std::string();
    std::string s = v->get<std::string>().substr(0, max_event_text_logged);
    // Keep one event on one log line whatever the client put in it.
    std::replace_if(
        s.begin(), s.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
    return s;
  };
  std::size_t logged = 0;
  for (const auto& event : events) {
    if (!event.is_object()) return problem(400, "each event must be a JSON object");
    if (logged++ < max_events_logged)
      spdlog::info("tunnel {} event {} [{}] {}", id, text(event, "name"), text(event, "severity"),
                   text(event, "details"));
  }
  return true_response();
}

const char* reason_phrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 507:
      return "Insufficient Storage";
    default:
      return status >= 500 ? "Internal Server Error" : "Error";
  }
}

}  // namespace sb::tunnel

// `switchboard tunnel create|show|list|delete|token`: manages tunnels through a relay's management API
// (TUNNEL.md "Commands"). Human text by default, the relay's JSON with --json. Exit codes: 0 done, 1 the
// relay refused or could not be reached (status and detail printed), 2 usage.
#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/commands.hpp"
#include "cli/env_flags.hpp"
#include "tunnel/io/management_http.hpp"
#include "tunnel/io/url.hpp"

namespace sb::cli {

namespace {

using nlohmann::json;

const std::set<std::string> actions = {"create", "show", "list", "delete", "token"};
const std::set<std::string> known_scopes = {tunnel::scope::manage, tunnel::scope::manage_ports,
                                            tunnel::scope::host, tunnel::scope::inspect,
                                            tunnel::scope::connect};
constexpr const char* default_scopes = "host,connect";

struct tunnel_flags {
  std::string action;
  std::optional<std::string> relay, management_token, management_token_file, token, token_file, tunnel,
      scopes, ca_file;
  std::vector<std::string> ports;
  bool json = false;
};

struct tunnel_settings {
  std::string action;
  tunnel::io::management_target target;
  std::string tunnel_id;
  std::vector<std::uint16_t> ports;
  std::vector<std::string> scopes;
  bool json = false;
};

/// `Authorization` from the flags: a management token (Bearer) or a tunnel access token (tunnel). Flags
/// beat the environment; in the environment a management token is preferred.
std::string authorization(const tunnel_flags& f) {
  const bool management_flag = f.management_token || f.management_token_file;
  const bool token_flag = f.token || f.token_file;
  if (management_flag && token_flag)
    throw usage_error("give a management token or a tunnel access token (--token), not both");
  if (!token_flag) {
    if (auto m = secret_option(f.management_token, "management-token", f.management_token_file,
                               "management-token-file"))
      return tunnel::bearer_authorization(m->value);
  }
  if (!management_flag) {
    if (auto t = secret_option(f.token, "token", f.token_file, "token-file"))
      return tunnel::tunnel_authorization(t->value);
  }
  throw usage_error(
      "no credentials: pass --management-token, --management-token-file, --token or --token-file");
}

std::vector<std::string> parse_scopes(const sourced& v) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= v.value.size()) {
    auto comma = v.value.find(',', start);
    auto item = v.value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) {
      if (!known_scopes.count(item))
        throw usage_error(v.source + ": unknown scope '" + item +
                          "' (manage, manage:ports, host, inspect, connect)");
      if (std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (out.empty()) throw usage_error(v.source + " names no scope");
  return out;
}

tunnel_settings resolve(const tunnel_flags& f) {
  tunnel_settings s;
  s.action = f.action;
  if (s.action.empty()) throw usage_error("name an action: create, show, list, delete or token");
  if (!actions.count(s.action))
    throw usage_error("unknown action '" + s.action + "' (create, show, list, delete or token)");
  auto relay = flag_or_env(f.relay, "relay");
  if (!relay) throw usage_error("--relay URL is required (or SWITCHBOARD_RELAY)");
  auto url = tunnel::io::parse_url(relay->value);
  if (!url || (url->scheme != "http" && url->scheme != "https"))
    throw usage_error(relay->source + ": '" + relay->value + "' is not an http:// or https:// URL");
  s.target.base_url = relay->value;
  s.target.authorization = authorization(f);
  if (auto ca = flag_or_env(f.ca_file, "ca-file")) s.target.http.ca_file = ca->value;

  if (auto t = flag_or_env(f.tunnel, "tunnel")) {
    if (t->value.empty()) throw usage_error(t->source + " is empty");
    s.tunnel_id = t->value;
  }
  const bool needs_id = s.action == "show" || s.action == "delete" || s.action == "token";
  if (needs_id && s.tunnel_id.empty()) throw usage_error("'" + s.action + "' needs --tunnel ID");

  if (!f.ports.empty() && s.action != "create") throw usage_error("--port applies to 'create' only");
  for (const auto& p : f.ports) s.ports.push_back(parse_port({p, "--port"}, false));

  auto scopes = flag_or_env(f.scopes, "scopes");
  s.scopes = parse_scopes(scopes.value_or(sourced{default_scopes, "--scopes"}));
  s.json = f.json;
  return s;
}

int relay_error(const tunnel_settings& s, const tunnel::management_error& e) {
  if (e.status == 0)
    std::cerr << "switchboard tunnel " << s.action << ": cannot reach the relay at " << s.target.base_url
              << ": " << e.message() << std::endl;
  else
    std::cerr << "switchboard tunnel " << s.action << ": the relay answered " << e.message() << std::endl;
  return 1;
}

std::string port_list(const tunnel::tunnel_info& t) {
  if (t.ports.empty()) return "none";
  std::string out;
  for (const auto& p : t.ports) {
    out += (out.empty() ? "" : ", ") + std::to_string(p.port_number);
    if (!p.protocol.empty() && p.protocol != "auto") out += " (" + p.protocol + ")";
  }
  return out;
}

/// Tokens the relay issued, one line each, in the order asked for. A scope the credentials do not hold is
/// left out by the relay (TUNNEL.md); that is an error here, since the user asked for it.
int print_tokens(const tunnel_settings& s, const tunnel::tunnel_info& t) {
  std::vector<std::string> missing;
  for (const auto& scope : s.scopes)
    if (!t.access_tokens.count(scope)) missing.push_back(scope);
  if (s.json) {
    std::cout << json{{"tunnelId", t.tunnel_id}, {"accessTokens", t.access_tokens}}.dump(2) << std::endl;
  } else {
    for (const auto& scope : s.scopes)
      if (auto it = t.access_tokens.find(scope); it != t.access_tokens.end())
        std::cout << scope << " token: " << it->second << std::endl;
  }
  if (missing.empty()) return 0;
  std::string names;
  for (const auto& m : missing) names += (names.empty() ? "" : ", ") + m;
  std::cerr << "switchboard tunnel " << s.action << ": the relay issued no token for " << names
            << " (the credentials do not hold that scope)" << std::endl;
  return 1;
}

void print_tunnel(const tunnel::tunnel_info& t) {
  std::cout << "tunnel " << t.tunnel_id;
  if (!t.cluster_id.empty())
    std::cout << " (cluster " << t.cluster_id << (t.created.empty() ? "" : ", created " + t.created) << ")";
  std::cout << std::endl << "ports: " << port_list(t) << std::endl;
  if (t.endpoints.empty()) std::cout << "endpoints: none (no host has registered)" << std::endl;
  for (const auto& e : t.endpoints) {
    std::cout << "endpoint " << e.id << ": " << e.connection_mode << ", host " << e.host_id << ", "
              << e.host_public_keys.size() << " host key(s)" << std::endl;
    if (!e.host_relay_uri.empty()) std::cout << "  host relay: " << e.host_relay_uri << std::endl;
    if (!e.client_relay_uri.empty()) std::cout << "  client relay: " << e.client_relay_uri << std::endl;
  }
}

int run_action(const tunnel_settings& s) {
  if (s.action == "create") {
    const auto id = s.tunnel_id.empty() ? tunnel::generate_tunnel_id() : s.tunnel_id;
    auto r = tunnel::io::create_tunnel(s.target, id, s.ports, s.scopes);
    if (auto* e = std::get_if<tunnel::management_error>(&r)) return relay_error(s, *e);
    const auto& t = std::get<tunnel::tunnel_info>(r);
    if (s.json) {
      std::cout << t.json.dump(2) << std::endl;
      return 0;
    }
    std::cout << "tunnel " << t.tunnel_id << " created on " << s.target.base_url << std::endl;
    std::cout << "ports: " << port_list(t) << std::endl;
    return print_tokens(s, t);
  }
  if (s.action == "show") {
    auto r = tunnel::io::get_tunnel(s.target, s.tunnel_id);
    if (auto* e = std::get_if<tunnel::management_error>(&r)) return relay_error(s, *e);
    const auto& t = std::get<tunnel::tunnel_info>(r);
    if (s.json)
      std::cout << t.json.dump(2) << std::endl;
    else
      print_tunnel(t);
    return 0;
  }
  if (s.action == "list") {
    auto r = tunnel::io::list_tunnels(s.target);
    if (auto* e = std::get_if<tunnel::management_error>(&r)) return relay_error(s, *e);
    const auto& tunnels = std::get<std::vector<tunnel::tunnel_info>>(r);
    if (s.json) {
      json out = json::array();
      for (const auto& t : tunnels) out.push_back(t.json);
      std::cout << out.dump(2) << std::endl;
      return 0;
    }
    if (tunnels.empty()) std::cout << "no tunnels" << std::endl;
    for (const auto& t : tunnels)
      std::cout << t.tunnel_id << "  ports: " << port_list(t) << "  endpoints: " << t.endpoints.size()
                << std::endl;
    return 0;
  }
  if (s.action == "delete") {
    auto r = tunnel::io::delete_tunnel(s.target, s.tunnel_id);
    if (auto* e = std::get_if<tunnel::management_error>(&r)) return relay_error(s, *e);
    if (s.json)
      std::cout << json{{"tunnelId", s.tunnel_id}, {"deleted", true}}.dump(2) << std::endl;
    else
      std::cout << "tunnel " << s.tunnel_id << " deleted" << std::endl;
    return 0;
  }
  // token
  auto r = tunnel::io::get_tunnel(s.target, s.tunnel_id, s.scopes, false);
  if (auto* e = std::get_if<tunnel::management_error>(&r)) return relay_error(s, *e);
  return print_tokens(s, std::get<tunnel::tunnel_info>(r));
}

int run_tunnel(const tunnel_flags& flags, const CLI::App& command) {
  tunnel_settings s;
  try {
    reject_extras(command);
    s = resolve(flags);
  } catch (const usage_error& e) {
    std::cerr << "switchboard tunnel: " << e.what() << std::endl;
    return 2;
  }
  return run_action(s);
}

}  // namespace

std::function<int()> add_tunnel_command(CLI::App& app) {
  auto flags = std::make_shared<tunnel_flags>();
  auto* cmd = app.add_subcommand("tunnel", "Create, show, list and delete tunnels on a relay; issue tokens");
  cmd->allow_extras();
  cmd->add_option("action", flags->action, "create, show, list, delete or token");
  auto opt = [&](const char* name, std::optional<std::string>& target, const std::string& help,
                 const char* type) {
    cmd->add_option(std::string("--") + name, target, help + " [env " + env_name(name) + "]")
        ->type_name(type);
  };
  opt("relay", flags->relay, "the relay's base URL, e.g. http://127.0.0.1:8090", "URL");
  opt("management-token", flags->management_token, "the relay's management token (full access)", "TOKEN");
  opt("management-token-file", flags->management_token_file, "file holding the management token", "FILE");
  opt("token", flags->token, "a tunnel access token instead (show/token: what its scopes allow)", "JWT");
  opt("token-file", flags->token_file, "file holding a tunnel access token", "FILE");
  opt("tunnel", flags->tunnel, "tunnel id (create: generated when absent)", "ID");
  opt("scopes", flags->scopes, "tokens to issue, comma-separated (default host,connect)", "LIST");
  opt("ca-file", flags->ca_file, "PEM CA certificates to trust for an https relay, besides the system store",
      "FILE");
  cmd->add_option("--port", flags->ports, "create: a port the tunnel forwards (repeat, or comma-separated)")
      ->type_name("PORT")
      ->delimiter(',')
      ->allow_extra_args(false);
  cmd->add_flag("--json", flags->json, "print the relay's JSON instead of text");
  cmd->footer(
      "Exit codes: 0 done, 1 the relay refused or was unreachable, 2 usage. A flag beats its environment "
      "variable;\nin the environment a management token is preferred to SWITCHBOARD_TOKEN.");
  return [flags, cmd] { return run_tunnel(*flags, *cmd); };
}

}  // namespace sb::cli

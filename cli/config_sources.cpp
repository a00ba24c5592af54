#include "cli/config_sources.hpp"

#include <cstring>
#include <fstream>
#include <sstream>

#include "protocol/json_bounds.hpp"

namespace sb::cli {

namespace {

using nlohmann::json;

constexpr const char* env_prefix = "SWITCHBOARD_";
// Variables read elsewhere (`serve --config`, `admin`, and the tunnel commands' flags), not keys of `serve`:
// one environment may configure several subcommands.
constexpr const char* env_not_keys[] = {"SWITCHBOARD_CONFIG",
                                        "SWITCHBOARD_RELAY",
                                        "SWITCHBOARD_DATA_DIR",
                                        "SWITCHBOARD_MANAGEMENT_TOKEN",
                                        "SWITCHBOARD_MANAGEMENT_TOKEN_FILE",
                                        "SWITCHBOARD_SIGNING_KEY_FILE",
                                        "SWITCHBOARD_PUBLIC_URL",
                                        "SWITCHBOARD_TOKEN",
                                        "SWITCHBOARD_TOKEN_FILE",
                                        "SWITCHBOARD_TOKEN_COMMAND",
                                        "SWITCHBOARD_PROTOCOL",
                                        "SWITCHBOARD_MAP",
                                        "SWITCHBOARD_BACKOFF_INITIAL_MS",
                                        "SWITCHBOARD_BACKOFF_MAX_MS",
                                        "SWITCHBOARD_MAX_ATTEMPTS",
                                        "SWITCHBOARD_CA_FILE",
                                        "SWITCHBOARD_SCOPES",
                                        "SWITCHBOARD_JOBS"};

std::variant<json, std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "config file '" + path + "': cannot open";
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = protocol::parse_untrusted_json(text.str());
  if (!parsed.ok())
    return "config file '" + path +
           "': " + protocol::describe(parsed.error, protocol::default_max_json_depth);
  json doc = std::move(parsed.value);
  if (!doc.is_object()) return "config file '" + path + "': must hold a JSON object";
  return doc;
}

std::optional<std::string> overlay(json& merged, const std::string& key, const std::string& text,
                                   const std::string& source) {
  const auto* k = protocol::find_config_key(key);
  if (!k) return "unknown configuration key '" + key + "' (from " + source + ")";
  auto value = protocol::coerce_config_text(*k, text);
  if (auto* err = std::get_if<std::string>(&value)) return *err + " (from " + source + ")";
  merged[key] = std::get<json>(value);
  return std::nullopt;
}

/// SWITCHBOARD_MAX_PAYLOAD -> maxPayload, or nullopt for a name that is no key.
std::optional<std::string> key_of_env(const std::string& name) {
  for (const auto& k : protocol::gateway_config_keys())
    if (protocol::env_name(k.name) == name) return std::string(k.name);
  return std::nullopt;
}

}  // namespace

std::variant<protocol::gateway_config, std::string> load_gateway_config(
    const std::optional<std::string>& file, const std::map<std::string, std::string>& flags,
    char** environment) {
  json merged = json::object();
  if (file) {
    auto doc = read_file(*file);
    if (auto* err = std::get_if<std::string>(&doc)) return *err;
    merged = std::get<json>(doc);
    for (const auto& [key, _] : merged.items())
      if (!protocol::find_config_key(key)) return "unknown configuration key '" + key + "' in " + *file;
  }
  for (char** e = environment; e && *e; ++e) {
    std::string entry(*e);
    if (entry.rfind(env_prefix, 0) != 0) continue;
    auto eq = entry.find('=');
    auto name = entry.substr(0, eq);
    auto value = eq == std::string::npos ? std::string{} : entry.substr(eq + 1);
    if (std::any_of(std::begin(env_not_keys), std::end(env_not_keys),
                    [&](const char* n) { return name == n; }))
      continue;
    auto key = key_of_env(name);
    if (!key) return "unknown configuration variable '" + name + "' in the environment";
    if (auto err = overlay(merged, *key, value, "environment " + name)) return *err;
  }
  for (const auto& [key, text] : flags)
    if (auto err = overlay(merged, key, text, "flag --" + protocol::flag_name(key))) return *err;
  return protocol::parse_gateway_config(merged);
}

}  // namespace sb::cli

// Fuzz target: the gateway's configuration loader, every source of it: the JSON file
// (cli::load_gateway_config reads it, protocol::parse_gateway_config checks it), environment variables and
// flags (protocol::coerce_config_text). Input: the file's text, then optionally a NUL byte and NUL-separated
// entries: "SWITCHBOARD_NAME=value" goes to the environment, "key=value" to the flags.
// Properties: nothing throws; a configuration that loads has a well-formed origin list and one parsed CIDR
// per trustedProxies entry.
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "cli/config_sources.hpp"
#include "fuzz_input.hpp"
#include "protocol/json_bounds.hpp"
#include "protocol/origin.hpp"

using namespace sb;

namespace {

std::string& path_storage() {
  static std::string path;
  return path;
}

const std::string& file_path() {
  auto& path = path_storage();
  if (path.empty()) {
    std::string p =
        access("/dev/shm", W_OK) == 0 ? "/dev/shm/sb-fuzz-config-XXXXXX" : "/tmp/sb-fuzz-config-XXXXXX";
    const int fd = mkstemp(p.data());
    sb_fuzz::require(fd >= 0, "a temporary config file");
    close(fd);
    path = p;
    // libFuzzer leaves through exit(); `path` outlives this handler (constructed, so destroyed, earlier).
    std::atexit([] { std::remove(path_storage().c_str()); });
  }
  return path;
}

void write_file(std::string_view text) {
  std::FILE* f = std::fopen(file_path().c_str(), "wb");
  sb_fuzz::require(f != nullptr, "the temporary config file opens");
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
}

void check(const std::variant<protocol::gateway_config, std::string>& result) {
  auto* config = std::get_if<protocol::gateway_config>(&result);
  if (!config) return;
  for (const auto& origin : config->cors_origins)
    sb_fuzz::require(protocol::valid_origin_pattern(origin), "every accepted origin pattern is valid");
  sb_fuzz::require(config->trusted_proxies.size() == config->trusted_proxies_text.size(),
                   "one CIDR per trustedProxies entry");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto parts = sb_fuzz::split(sb_fuzz::as_view(data, size), '\0');
  const auto file_text = parts.front();

  std::vector<std::string> env_storage;
  std::map<std::string, std::string> flags;
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const std::string entry(parts[i]);
    if (entry.rfind("SWITCHBOARD_", 0) == 0) {
      env_storage.push_back(entry);
      continue;
    }
    const auto eq = entry.find('=');
    flags[entry.substr(0, eq)] = eq == std::string::npos ? std::string{} : entry.substr(eq + 1);
  }
  std::vector<char*> environment;
  for (auto& e : env_storage) environment.push_back(e.data());
  environment.push_back(nullptr);

  // The file as the loader reads it, with the other sources on top.
  write_file(file_text);
  check(cli::load_gateway_config(file_path(), flags, environment.data()));
  check(cli::load_gateway_config(std::nullopt, flags, environment.data()));

  // The checker directly, on any JSON value the text holds (an embedder may hand it one).
  auto doc = protocol::parse_untrusted_json(file_text);
  if (doc.ok()) check(protocol::parse_gateway_config(doc.value));

  // Every key's text coercion (flags and environment) on the file text.
  const std::string text(file_text.substr(0, 4096));
  for (const auto& key : protocol::gateway_config_keys()) (void)protocol::coerce_config_text(key, text);
  return 0;
}

#pragma once
// Gathers configuration from its three sources into one object of PROTOCOL.md keys:
// flag beats environment beats file beats default.
#include <map>
#include <optional>
#include <string>
#include <variant>

#include "protocol/config.hpp"

namespace sb::cli {

/// `flags` maps key names (camelCase) to the text given on the command line. `environment` is a
/// NULL-terminated `environ`-style array. Errors name the key and the source that set it.
std::variant<protocol::gateway_config, std::string> load_gateway_config(
    const std::optional<std::string>& file, const std::map<std::string, std::string>& flags,
    char** environment);

}  // namespace sb::cli

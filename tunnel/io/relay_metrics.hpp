#pragma once
// The relay's /metrics: what is connected, what the hub accepted, and every bound that refused something,
// under the flag that sets it (the relay's config keys are its flags).
#include <string>

#include "tunnel/io/relay_hub.hpp"
#include "tunnel/management.hpp"

namespace sb::tunnel::io {

std::string render_relay_metrics(const relay_hub& hub, const tunnel::management_api& api);

}  // namespace sb::tunnel::io

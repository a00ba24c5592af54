#pragma once
// Turns the `bind` setting into the address to listen on.
#include <string>

namespace sb::transport {

/// loopback -> 127.0.0.1, all -> every interface, lan -> this host's first private-range IPv4 address,
/// anything else is taken as a literal address. Throws std::runtime_error when lan finds none.
std::string resolve_bind_address(const std::string& bind);

}  // namespace sb::transport

#pragma once
#include <cstdint>

namespace sb::test {

/// A port on 127.0.0.1 that was free a moment ago (bound to 0, then released): for a child process or an
/// external tool that must be told its port, or for a port nothing listens on.
std::uint16_t free_port();

/// True when something accepts TCP connections on 127.0.0.1:`port`.
bool accepts(std::uint16_t port);

/// Waits until 127.0.0.1:`port` accepts; false after `timeout_ms`.
bool wait_accepting(std::uint16_t port, int timeout_ms = 10000);

}  // namespace sb::test

#pragma once
#include <cstdint>

namespace sb::test {

/// A port on 127.0.0.1 that was free a moment ago (bound to 0, then released): for a child process or an
/// external tool that must be told its port, or for a port nothing listens on.
std::uint16_t free_port();

}  // namespace sb::test

#pragma once
// The in-process bus: what a node uses when no NATS is configured. Same contract as the NATS bus (the bus
// contract tests run against both): callbacks on its own thread, in order, never inline.
#include <memory>

#include "cluster/bus.hpp"

namespace sb::cluster {

/// A bus whose every subscriber and bucket live in this process; always connected.
std::shared_ptr<bus> make_local_bus();

/// Where a bus runs its callbacks instead of its own thread: for CAF's deterministic test coordinator,
/// which must decide when each callback (and so each message it sends) happens. Request timeouts still
/// fire on the bus's thread.
using callback_runner = std::function<void(std::function<void()>)>;
std::shared_ptr<bus> make_local_bus(callback_runner run_callback);

}  // namespace sb::cluster

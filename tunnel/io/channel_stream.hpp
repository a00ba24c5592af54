#pragma once
// A byte stream carried by one channel of an SSH link: the V1 host runs each client's SSH session in its
// client-ssh-session-stream channel, and the relay its own session into a V1 host.
#include <cstdint>
#include <memory>

#include "tunnel/io/ssh_link.hpp"

namespace sb::tunnel::io {

/// Call on the outer link's strand: the stream attaches itself to `channel` there.
std::shared_ptr<byte_stream> make_channel_stream(const std::shared_ptr<ssh_link>& outer,
                                                 std::uint32_t channel);

}  // namespace sb::tunnel::io

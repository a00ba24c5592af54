#pragma once
// Joins two byte carriers across strands with flow control, for the relay: a channel of one SSH link with a
// channel of another (V2: client <-> host), or a raw byte stream with a channel (V1: the client's WebSocket
// piped into the host's client-ssh-session-stream). Credit goes back to the sender only when the receiving
// side has room (its queue under the high watermark), so neither side buffers without bound.
#include <memory>

#include "tunnel/io/ssh_link.hpp"

namespace sb::tunnel::io {

/// Splices channel `a_channel` of `a` with `b_channel` of `b`. Both channels must be open or opening. Call on
/// any thread; `done` runs once when both channels are closed.
void splice_channels(const std::shared_ptr<ssh_link>& a, std::uint32_t a_channel,
                     const std::shared_ptr<ssh_link>& b, std::uint32_t b_channel,
                     std::function<void()> done = {});

/// Opens a channel of `type` on `b` and splices it with `a_channel` of `a`. The new channel's end is attached
/// in the same step as the open, so no early data is lost. `on_b_confirmed` runs (on b's strand) with the
/// confirmation's extra data; if b refuses, `a_channel` is closed (or refused, when still unanswered).
void open_and_splice(const std::shared_ptr<ssh_link>& a, std::uint32_t a_channel,
                     const std::shared_ptr<ssh_link>& b, std::string type, tunnel::ssh::bytes open_data,
                     std::function<void(const tunnel::ssh::bytes&)> on_b_confirmed,
                     std::function<void()> done = {});

/// Opens a channel of `type` on `link` and splices `stream` with it (V1: a client's bytes into the host's
/// client-ssh-session-stream channel).
void open_and_splice_stream(const std::shared_ptr<byte_stream>& stream, const std::shared_ptr<ssh_link>& link,
                            std::string type, std::function<void()> done = {});

/// Splices a byte stream (its reads and writes) with channel `channel` of `link`; when either ends, both end.
/// `initial` is data already read from the stream that must go first.
void splice_stream(const std::shared_ptr<byte_stream>& stream, const std::shared_ptr<ssh_link>& link,
                   std::uint32_t channel, tunnel::ssh::bytes initial = {}, std::function<void()> done = {});

}  // namespace sb::tunnel::io

#pragma once
// Opening a TCP listener the same way for every server: address parsing, SO_REUSEADDR, and an error that says
// which address could not be bound.
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <chrono>
#include <cstdint>
#include <string>

namespace sb::transport {

/// Binds and listens; returns the bound port (the OS's pick for port 0). Throws std::runtime_error.
std::uint16_t open_listener(boost::asio::ip::tcp::acceptor& acceptor, const std::string& address,
                            std::uint16_t port);

/// After a failed accept (EMFILE, ENFILE, ENOBUFS), wait before accepting again: retrying at once would spin
/// on the same error while no descriptor is free.
inline constexpr auto accept_retry_delay = std::chrono::milliseconds(100);

}  // namespace sb::transport

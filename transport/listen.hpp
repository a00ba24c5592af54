#pragma once
// Opening a TCP listener the same way for every server: address parsing, SO_REUSEADDR, and an error that says
// which address could not be bound.
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <string>

namespace sb::transport {

/// Binds and listens; returns the bound port (the OS's pick for port 0). Throws std::runtime_error.
std::uint16_t open_listener(boost::asio::ip::tcp::acceptor& acceptor, const std::string& address,
                            std::uint16_t port);

}  // namespace sb::transport

#include "transport/listen.hpp"

#include <stdexcept>

namespace sb::transport {

namespace net = boost::asio;

std::uint16_t open_listener(net::ip::tcp::acceptor& acceptor, const std::string& address,
                            std::uint16_t port) {
  boost::system::error_code ec;
  auto ip = net::ip::make_address(address, ec);
  if (ec) throw std::runtime_error("bind: invalid address '" + address + "'");
  net::ip::tcp::endpoint endpoint{ip, port};
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("cannot listen on " + address + ":" + std::to_string(port) + ": " +
                             ec.message());
  return acceptor.local_endpoint().port();
}

}  // namespace sb::transport

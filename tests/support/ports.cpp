#include "support/ports.hpp"

#include <boost/asio.hpp>

namespace sb::test {

std::uint16_t free_port() {
  namespace net = boost::asio;
  net::io_context ioc;
  net::ip::tcp::acceptor a(ioc, net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

}  // namespace sb::test

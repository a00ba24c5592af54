#include "support/tunnel_fixture.hpp"

namespace sb::test {

namespace net = boost::asio;
using tcp = net::ip::tcp;

echo_service::echo_service(net::io_context& ioc)
    : acceptor_(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
      port_(acceptor_.local_endpoint().port()) {
  accept();
}

void echo_service::accept() {
  acceptor_.async_accept(
      net::make_strand(acceptor_.get_executor()), [this](boost::system::error_code ec, tcp::socket s) {
        if (ec) return;
        struct pump : std::enable_shared_from_this<pump> {
          tcp::socket socket;
          std::array<char, 16384> buf{};
          explicit pump(tcp::socket s) : socket(std::move(s)) {}
          void read() {
            socket.async_read_some(net::buffer(buf),
                                   [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                                     if (ec) {
                                       boost::system::error_code e;
                                       self->socket.shutdown(tcp::socket::shutdown_send, e);
                                       return;
                                     }
                                     net::async_write(self->socket, net::buffer(self->buf.data(), n),
                                                      [self](boost::system::error_code ec2, std::size_t) {
                                                        if (!ec2) self->read();
                                                      });
                                   });
          }
        };
        std::make_shared<pump>(std::move(s))->read();
        accept();
      });
}

relay_fixture::relay_fixture(transport::relay_limits limits) : limits_(limits) { start(0); }

relay_fixture::~relay_fixture() { stop(); }

void relay_fixture::start(std::uint16_t port) {
  if (!relay_key) relay_key = std::make_shared<tunnel::ssh::ecdsa_key>(tunnel::ssh::ecdsa_key::generate());
  transport::relay_server_options o;
  o.port = port;
  server = std::make_unique<transport::relay_server>(io.ioc, o);
  port_ = server->bind();
  store = std::make_unique<tunnel::tunnel_store>(data.path().string());
  api = std::make_unique<tunnel::management_api>(*store, management_token, base_url(), store->key());
  api->set_relay_host_public_keys({tunnel::ssh::base64_encode(relay_key->public_blob())});
  if (!store->find(tunnel_id)) {
    tunnel::tunnel_record t;
    t.tunnel_id = tunnel_id;
    store->put(t);
  }
  hub = std::make_shared<transport::relay_hub>(relay_key, limits_);
  server->serve(*api, hub);
}

void relay_fixture::stop() {
  if (!server) return;
  server->stop();
  hub->close_all();
  server.reset();
}

void relay_fixture::restart() {
  const auto port = port_;
  stop();
  // Give closing sessions a moment to leave the strands before the hub goes.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  start(port);
}

std::uint16_t free_port() {
  net::io_context ioc;
  tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

int concurrent_echo_check(std::uint16_t port, int streams, std::size_t bytes) {
  std::vector<std::future<bool>> results;
  for (int i = 0; i < streams; ++i) {
    results.push_back(std::async(std::launch::async, [port, bytes, i] {
      try {
        net::io_context ioc;
        tcp::socket s(ioc);
        s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
        std::string data(bytes, '\0');
        for (std::size_t k = 0; k < bytes; ++k)
          data[k] = static_cast<char>((k * 131 + static_cast<std::size_t>(i) * 7) & 0xff);
        std::thread writer([&] {
          boost::system::error_code ec;
          net::write(s, net::buffer(data), ec);
        });
        std::string back(bytes, '\0');
        boost::system::error_code ec;
        net::read(s, net::buffer(back), ec);
        writer.join();
        return !ec && back == data;
      } catch (...) {
        return false;
      }
    }));
  }
  int ok = 0;
  for (auto& r : results) ok += r.get() ? 1 : 0;
  return ok;
}

}  // namespace sb::test

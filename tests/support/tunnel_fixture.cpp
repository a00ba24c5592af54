#include "support/tunnel_fixture.hpp"

#include <catch2/catch.hpp>

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

relay_fixture::relay_fixture(tunnel::io::relay_limits limits) : limits_(limits) { start(0); }

relay_fixture::~relay_fixture() {
  stop();
  // As `switchboard relay` does: the connections' last handlers run before the actors go.
  io.stop();
  node.reset();
  stopped_nodes_.clear();
}

void relay_fixture::start(std::uint16_t port) {
  if (!relay_key) relay_key = std::make_shared<tunnel::ssh::ecdsa_key>(tunnel::ssh::ecdsa_key::generate());
  tunnel::io::relay_server_options o;
  o.port = port;
  server = std::make_unique<tunnel::io::relay_server>(io.ioc, o);
  port_ = server->bind();
  store = std::make_unique<tunnel::tunnel_store>(data.path().string());
  api = std::make_unique<tunnel::management_api>(*store, management_token, base_url(), store->key());
  api->set_relay_host_public_keys({tunnel::ssh::base64_encode(relay_key->public_blob())});
  if (!store->find(tunnel_id)) {
    tunnel::tunnel_record t;
    t.tunnel_id = tunnel_id;
    store->put(t);
  }
  node = std::make_unique<actors::relay_node>(relay_key, limits_);
  server->serve(*api, node->hub());
}

void relay_fixture::stop() {
  if (!server) return;
  server->stop();
  node->close_all();
  // Give the drops a moment to run before the actors go; a connection still open after it is dropped with
  // the io loop.
  for (int i = 0; i < 100 && !node->idle(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  server.reset();
}

void relay_fixture::restart() {
  const auto port = port_;
  stop();
  stopped_nodes_.push_back(std::move(node));
  // Give closing sessions a moment to leave the strands before the hub goes.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  start(port);
}

void start_host(relay_fixture& relay, peers& p, std::set<std::uint16_t> ports, tunnel::io::protocol_choice protocol) {
  auto events = p.events;
  tunnel::io::host_options h;
  h.relay_uri = relay.api->host_relay_uri(relay_fixture::tunnel_id);
  h.token = relay.token("host");
  h.protocol = protocol;
  h.ports = std::move(ports);
  h.host_key = p.host_key;
  tunnel::io::relay_peer_callbacks hc;
  hc.connected = [events](tunnel::protocol_version v) { events->host_connected.set_value(v); };
  hc.ended = [events](const tunnel::io::relay_outcome& o) {
    events->host_outcome = o;
    events->host_ended = true;
  };
  p.host = std::make_shared<tunnel::io::host_peer>(relay.io.ioc, h, hc);
  p.host->start();
  auto f = events->host_connected.get_future();
  REQUIRE(ready_within(f, 10s));
}

void start_client(relay_fixture& relay, peers& p, tunnel::io::protocol_choice protocol,
                  std::map<std::uint16_t, std::uint16_t> map) {
  auto events = p.events;
  tunnel::io::client_options c;
  c.relay_uri = relay.api->client_relay_uri(relay_fixture::tunnel_id);
  c.token = relay.token("connect");
  c.protocol = protocol;
  c.port_map = std::move(map);
  // A V1 client checks the key it meets: the host's own (V1 host piped end to end) or the relay's.
  c.host_public_keys = {tunnel::ssh::base64_encode(p.host_key->public_blob()),
                        tunnel::ssh::base64_encode(relay.relay_key->public_blob())};
  tunnel::io::relay_peer_callbacks cc;
  cc.connected = [events](tunnel::protocol_version v) { events->client_connected.set_value(v); };
  cc.ended = [events](const tunnel::io::relay_outcome& o) {
    events->client_outcome = o;
    events->client_ended = true;
  };
  p.client = std::make_shared<tunnel::io::client_peer>(relay.io.ioc, c, cc);
  p.client->start();
  auto g = events->client_connected.get_future();
  REQUIRE(ready_within(g, 10s));
}

std::unique_ptr<peers> start_peers(relay_fixture& relay, std::set<std::uint16_t> ports,
                                   tunnel::io::protocol_choice host_protocol, tunnel::io::protocol_choice client_protocol,
                                   std::map<std::uint16_t, std::uint16_t> map) {
  auto p = std::make_unique<peers>();
  start_host(relay, *p, std::move(ports), host_protocol);
  start_client(relay, *p, client_protocol, std::move(map));
  return p;
}

std::uint16_t local_port_for(peers& p, std::uint16_t remote) { return listening_port(*p.client, remote); }

std::uint16_t listening_port(tunnel::io::client_peer& client, std::uint16_t remote) {
  std::uint16_t local = 0;
  eventually(
      [&] {
        auto l = client.listening();
        auto it = l.find(remote);
        if (it == l.end()) return false;
        local = it->second;
        return true;
      },
      10s);
  return local;
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

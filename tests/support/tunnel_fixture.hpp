#pragma once
// A relay (management API + relay WebSockets) on 127.0.0.1 with a port the OS picked, an echo service, and
// helpers to start our host and client against it.
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <future>
#include <thread>

#include "actors/relay_node.hpp"
#include "support/gateway_fixture.hpp"
#include "support/ports.hpp"
#include "transport/io_pool.hpp"
#include "tunnel/io/relay_server.hpp"
#include "tunnel/io/tunnel_peers.hpp"

namespace sb::test {

/// An io_context with two threads for the duration of a test.
struct io_threads {
  boost::asio::io_context ioc;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{
      boost::asio::make_work_guard(ioc)};
  std::vector<std::thread> threads;
  io_threads() {
    for (int i = 0; i < 2; ++i) threads.emplace_back([this] { ioc.run(); });
  }
  ~io_threads() { stop(); }
  /// Joins the threads; idempotent.
  void stop() {
    if (threads.empty()) return;
    guard.reset();
    ioc.stop();
    for (auto& t : threads) t.join();
    threads.clear();
    sb::transport::run_ready_handlers(ioc);  // closes posted by stop() calls run: nothing is left to leak
  }
};

/// Echoes every byte back on 127.0.0.1:port().
class echo_service {
 public:
  explicit echo_service(boost::asio::io_context& ioc);
  std::uint16_t port() const { return port_; }

 private:
  void accept();
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_;
};

class relay_fixture {
 public:
  static constexpr const char* management_token = "test-management-token";
  static constexpr const char* tunnel_id = "tunnel-one";

  explicit relay_fixture(tunnel::io::relay_limits limits = {});
  ~relay_fixture();

  std::uint16_t port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string token(const std::string& scope) const { return api->issue_tunnel_token(tunnel_id, {scope}); }
  /// Restarts the relay on the same port and data directory (tunnels and keys persist).
  void restart();
  void stop();

  io_threads io;
  temp_dir data;
  std::shared_ptr<tunnel::ssh::ecdsa_key> relay_key;
  std::unique_ptr<tunnel::tunnel_store> store;
  std::unique_ptr<tunnel::management_api> api;
  std::unique_ptr<actors::relay_node> node;  // its hub() serves the relay WebSockets
  std::unique_ptr<tunnel::io::relay_server> server;

 private:
  /// Nodes replaced by restart(): ended only once the io threads are joined (see relay_node::stop).
  std::vector<std::unique_ptr<actors::relay_node>> stopped_nodes_;
  void start(std::uint16_t port);
  tunnel::io::relay_limits limits_;
  std::uint16_t port_ = 0;
};

/// What the peers' callbacks report. Shared with the callbacks: a peer's io thread may still report an end
/// after the test dropped its `peers`, so the callbacks must not point into that object.
struct peer_events {
  std::promise<tunnel::protocol_version> host_connected, client_connected;
  std::atomic<bool> host_ended{false}, client_ended{false};
  tunnel::io::relay_outcome host_outcome, client_outcome;
};

struct peers {
  std::shared_ptr<tunnel::io::host_peer> host;
  std::shared_ptr<tunnel::io::client_peer> client;
  std::shared_ptr<peer_events> events = std::make_shared<peer_events>();
  std::shared_ptr<tunnel::ssh::ecdsa_key> host_key =
      std::make_shared<tunnel::ssh::ecdsa_key>(tunnel::ssh::ecdsa_key::generate());
};

/// Our host on the fixture's tunnel, connected (REQUIREd within 10 s), forwarding `ports`.
void start_host(relay_fixture& relay, peers& p, std::set<std::uint16_t> ports,
                tunnel::io::protocol_choice protocol);
/// Our client of the fixture's tunnel, connected, trusting the host's and the relay's key.
void start_client(relay_fixture& relay, peers& p, tunnel::io::protocol_choice protocol,
                  std::map<std::uint16_t, std::uint16_t> map);
/// The host first, connected, then the client.
std::unique_ptr<peers> start_peers(relay_fixture& relay, std::set<std::uint16_t> ports,
                                   tunnel::io::protocol_choice host_protocol,
                                   tunnel::io::protocol_choice client_protocol,
                                   std::map<std::uint16_t, std::uint16_t> map);
/// The local port the client listens on for `remote`, once it does (0 after 10 s).
std::uint16_t local_port_for(peers& p, std::uint16_t remote);
/// The local port `client` listens on for `remote`, once it does (0 after 10 s).
std::uint16_t listening_port(tunnel::io::client_peer& client, std::uint16_t remote);

/// Waits for a future with a timeout; false when it did not become ready.
template <class T>
bool ready_within(std::future<T>& f, std::chrono::milliseconds t) {
  return f.wait_for(t) == std::future_status::ready;
}

/// Opens `streams` concurrent connections to 127.0.0.1:port, each sending `bytes` of its own pattern and
/// checking the echo; returns how many came back intact.
int concurrent_echo_check(std::uint16_t port, int streams, std::size_t bytes);

}  // namespace sb::test

#pragma once
// A relay (management API + relay WebSockets) on 127.0.0.1 with a port the OS picked, an echo service, and
// helpers to start our host and client against it.
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <future>
#include <thread>

#include "support/gateway_fixture.hpp"
#include "transport/io_pool.hpp"
#include "transport/relay_server.hpp"
#include "transport/tunnel_peers.hpp"

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
  ~io_threads() {
    guard.reset();
    ioc.stop();
    for (auto& t : threads) t.join();
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

  explicit relay_fixture(transport::relay_limits limits = {});
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
  std::shared_ptr<transport::relay_hub> hub;
  std::unique_ptr<transport::relay_server> server;

 private:
  void start(std::uint16_t port);
  transport::relay_limits limits_;
  std::uint16_t port_ = 0;
};

/// A port on 127.0.0.1 that was free a moment ago (bound to 0, then released): for a child process or an
/// external tool that must be told its port, or for a port nothing listens on.
std::uint16_t free_port();

/// Waits for a future with a timeout; false when it did not become ready.
template <class T>
bool ready_within(std::future<T>& f, std::chrono::milliseconds t) {
  return f.wait_for(t) == std::future_status::ready;
}

/// Opens `streams` concurrent connections to 127.0.0.1:port, each sending `bytes` of its own pattern and
/// checking the echo; returns how many came back intact.
int concurrent_echo_check(std::uint16_t port, int streams, std::size_t bytes);

}  // namespace sb::test

#pragma once
// The admin Unix socket (PROTOCOL.md "Admin socket"): one JSON object per line each way, mode 0600.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace sb::transport {

/// Answers one request; `respond` may be called from any thread, exactly once.
using admin_handler =
    std::function<void(nlohmann::json request, std::function<void(nlohmann::json)> respond)>;

class admin_server {
 public:
  admin_server(boost::asio::io_context& ioc, std::string path, admin_handler handler);
  ~admin_server();
  /// Binds (replacing a stale socket file) and accepts; throws std::runtime_error on failure.
  void start();
  /// Stops accepting, from any thread while the io_context runs (the close runs on the acceptor's
  /// executor), so that a draining loop is not kept busy by the listener. stop() still removes the file.
  void stop_accepting();
  /// Removes the socket file and closes the listener: at once when the io_context no longer runs, else on
  /// the acceptor's executor (the destructor calls it, from whatever thread destroys the server).
  void stop();
  const std::string& path() const;
  /// Accepts that failed (EMFILE and friends); each one waited accept_retry_delay before the next try.
  std::uint64_t accept_failures() const;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

/// Client side: sends one request and waits for its line. Throws std::runtime_error on connection failure or
/// timeout.
nlohmann::json admin_call(const std::string& path, const nlohmann::json& request,
                          std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace sb::transport

#pragma once
// A WebSocket test client on its own io thread: an inbox of received messages, a write queue, and blocking
// waits with timeouts for the test thread. Reading can be paused to play a consumer that falls behind or a
// peer that never answers pings.
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

namespace sb::test {

using json = nlohmann::json;
using namespace std::chrono_literals;

struct client_options {
  std::string path = "/ws";
  std::map<std::string, std::string> headers;  // e.g. Origin, X-Forwarded-For
  bool deflate = false;
  bool read = true;  // false: no read is outstanding, so neither data nor pings are answered
};

/// Thrown when the upgrade is refused; carries the HTTP status.
struct upgrade_refused : std::runtime_error {
  int status;
  explicit upgrade_refused(int s) : std::runtime_error("upgrade refused: " + std::to_string(s)), status(s) {}
};

class ws_client {
 public:
  static constexpr auto default_timeout = 5s;

  ws_client(std::uint16_t port, client_options options = {});
  ~ws_client();

  void send_text(std::string text);
  void send_binary(std::string data);
  void send(const json& msg) { send_text(msg.dump()); }

  /// Sends {type, id, sessionId?, payload} and waits for the message whose replyTo is that id. Messages
  /// without that replyTo stay in the inbox for next()/event().
  json request(const std::string& type, json payload = json::object(),
               std::optional<std::string> session_id = std::nullopt,
               std::chrono::milliseconds timeout = default_timeout);
  /// Sends a raw object and waits for the reply to `msg["id"]`.
  json request_raw(const json& msg, std::chrono::milliseconds timeout = default_timeout);
  /// The next message of any kind.
  std::optional<json> next(std::chrono::milliseconds timeout = default_timeout);
  /// The first message matching `pred`, removed from the inbox; others stay.
  std::optional<json> wait_for(const std::function<bool(const json&)>& pred,
                               std::chrono::milliseconds timeout = default_timeout);
  /// The first server-initiated message (no replyTo) of `type`.
  std::optional<json> event(const std::string& type, std::chrono::milliseconds timeout = default_timeout);
  /// Whether no message matching `pred` arrives within `window`.
  bool none_within(const std::function<bool(const json&)>& pred, std::chrono::milliseconds window);

  /// The close code once the connection ended (1006 when it ended without a close frame).
  std::optional<std::uint16_t> wait_closed(std::chrono::milliseconds timeout = default_timeout);
  bool closed();
  void close(std::uint16_t code = 1000);
  void resume_reading();
  bool deflate_negotiated() const { return deflate_; }
  std::string next_id() { return "m-" + std::to_string(++ids_); }

 private:
  void do_read();
  void do_write();

  boost::asio::io_context ioc_;
  // Keeps run() going while reading is paused and nothing is being written.
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  boost::beast::flat_buffer buffer_;
  std::thread thread_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<json> inbox_;
  std::deque<std::pair<std::string, bool>> outbox_;  // data, is text
  bool writing_ = false;
  bool reading_ = false;
  bool read_enabled_ = true;
  std::optional<std::uint16_t> close_code_;
  bool deflate_ = false;
  std::uint64_t ids_ = 0;
};

/// One HTTP GET against 127.0.0.1; returns status and body.
std::pair<int, std::string> http_get(std::uint16_t port, const std::string& target,
                                     const std::map<std::string, std::string>& headers = {});

}  // namespace sb::test

#include "support/ws_client.hpp"

#include <boost/beast/websocket/stream.hpp>

namespace sb::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

namespace {

// Beast 1.74 does not hand back the refusing response, so ask again with a plain HTTP upgrade request.
int probe_upgrade_status(std::uint16_t port, const client_options& options) {
  std::map<std::string, std::string> headers = options.headers;
  headers["Connection"] = "Upgrade";
  headers["Upgrade"] = "websocket";
  headers["Sec-WebSocket-Version"] = "13";
  headers["Sec-WebSocket-Key"] = "dGhlIHNhbXBsZSBub25jZQ==";
  return http_get(port, options.path, headers).first;
}

}  // namespace

ws_client::ws_client(std::uint16_t port, client_options options)
    : work_(net::make_work_guard(ioc_)), ws_(ioc_) {
  read_enabled_ = options.read;
  beast::get_lowest_layer(ws_).expires_after(5s);
  beast::get_lowest_layer(ws_).connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  beast::get_lowest_layer(ws_).expires_never();
  if (options.deflate) {
    websocket::permessage_deflate pmd;
    pmd.client_enable = true;
    ws_.set_option(pmd);
  }
  auto headers = options.headers;
  ws_.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
    for (const auto& [k, v] : headers) req.set(k, v);
  }));
  ws_.read_message_max(64 * 1024 * 1024);
  websocket::response_type res;
  beast::error_code ec;
  ws_.handshake(res, "127.0.0.1:" + std::to_string(port), options.path, ec);
  if (ec == websocket::error::upgrade_declined) throw upgrade_refused(probe_upgrade_status(port, options));
  if (ec) throw std::runtime_error("handshake failed: " + ec.message());
  deflate_ =
      res[http::field::sec_websocket_extensions].find("permessage-deflate") != beast::string_view::npos;
  if (read_enabled_) net::post(ioc_, [this] { do_read(); });
  thread_ = std::thread([this] { ioc_.run(); });
}

ws_client::~ws_client() {
  // The socket closes when ws_ is destroyed, after the io thread has stopped touching it.
  ioc_.stop();
  if (thread_.joinable()) thread_.join();
}

void ws_client::do_read() {
  reading_ = true;
  ws_.async_read(buffer_, [this](beast::error_code ec, std::size_t) {
    reading_ = false;
    std::lock_guard<std::mutex> guard(mtx_);
    if (ec) {
      close_code_ = ec == websocket::error::closed ? static_cast<std::uint16_t>(ws_.reason().code) : 1006;
      cv_.notify_all();
      return;
    }
    auto text = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    auto msg = json::parse(text, nullptr, false);
    inbox_.push_back(msg.is_discarded() ? json{{"_raw", text}} : std::move(msg));
    cv_.notify_all();
    if (read_enabled_) net::post(ioc_, [this] { do_read(); });
  });
}

void ws_client::resume_reading() {
  net::post(ioc_, [this] {
    read_enabled_ = true;
    if (!reading_) do_read();
  });
}

void ws_client::send_text(std::string text) {
  net::post(ioc_, [this, text = std::move(text)]() mutable {
    outbox_.emplace_back(std::move(text), true);
    if (!writing_) do_write();
  });
}

void ws_client::send_binary(std::string data) {
  net::post(ioc_, [this, data = std::move(data)]() mutable {
    outbox_.emplace_back(std::move(data), false);
    if (!writing_) do_write();
  });
}

void ws_client::do_write() {
  writing_ = true;
  ws_.text(outbox_.front().second);
  ws_.async_write(net::buffer(outbox_.front().first), [this](beast::error_code ec, std::size_t) {
    writing_ = false;
    outbox_.pop_front();
    if (!ec && !outbox_.empty()) do_write();
  });
}

std::optional<json> ws_client::wait_for(const std::function<bool(const json&)>& pred,
                                        std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mtx_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (auto it = inbox_.begin(); it != inbox_.end(); ++it) {
      if (pred(*it)) {
        auto found = std::move(*it);
        inbox_.erase(it);
        return found;
      }
    }
    if (close_code_) return std::nullopt;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      for (auto it = inbox_.begin(); it != inbox_.end(); ++it)
        if (pred(*it)) {
          auto found = std::move(*it);
          inbox_.erase(it);
          return found;
        }
      return std::nullopt;
    }
  }
}

std::optional<json> ws_client::next(std::chrono::milliseconds timeout) {
  return wait_for([](const json&) { return true; }, timeout);
}

std::optional<json> ws_client::event(const std::string& type, std::chrono::milliseconds timeout) {
  return wait_for([&](const json& m) { return m.value("type", "") == type && !m.contains("replyTo"); },
                  timeout);
}

bool ws_client::none_within(const std::function<bool(const json&)>& pred, std::chrono::milliseconds window) {
  return !wait_for(pred, window).has_value();
}

json ws_client::request_raw(const json& msg, std::chrono::milliseconds timeout) {
  const auto id = msg.value("id", std::string{});
  send(msg);
  auto reply = wait_for([&](const json& m) { return m.contains("replyTo") && m["replyTo"] == id; }, timeout);
  if (!reply) throw std::runtime_error("no reply to " + msg.dump());
  return *reply;
}

json ws_client::request(const std::string& type, json payload, std::optional<std::string> session_id,
                        std::chrono::milliseconds timeout) {
  json msg = {{"type", type}, {"id", next_id()}, {"payload", std::move(payload)}};
  if (session_id) msg["sessionId"] = *session_id;
  return request_raw(msg, timeout);
}

std::optional<std::uint16_t> ws_client::wait_closed(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mtx_);
  cv_.wait_for(lock, timeout, [this] { return close_code_.has_value(); });
  return close_code_;
}

bool ws_client::closed() {
  std::lock_guard<std::mutex> guard(mtx_);
  return close_code_.has_value();
}

void ws_client::close(std::uint16_t code) {
  net::post(ioc_, [this, code] {
    websocket::close_reason reason;
    reason.code = code;
    ws_.async_close(reason, [](beast::error_code) {});
  });
}

std::pair<int, std::string> http_get(std::uint16_t port, const std::string& target,
                                     const std::map<std::string, std::string>& headers) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.expires_after(5s);
  stream.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers) req.set(k, v);
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  beast::error_code ec;
  stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
  return {res.result_int(), res.body()};
}

}  // namespace sb::test

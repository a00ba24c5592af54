#include "tunnel/io/channel_stream.hpp"

#include <boost/asio/post.hpp>
#include <deque>

namespace sb::tunnel::io {

namespace net = boost::asio;
namespace ssh = tunnel::ssh;

namespace {

/// Reads hand out what the peer sent, one chunk each, and grant the peer window as they do; writes go into
/// the channel at once (the outer session queues them under its own window).
struct channel_stream : byte_stream, channel_endpoint, std::enable_shared_from_this<channel_stream> {
  std::weak_ptr<ssh_link> outer;
  std::uint32_t channel = 0;
  net::any_io_executor ex;
  std::deque<ssh::bytes> inbox;
  std::function<void(boost::system::error_code, ssh::bytes)> waiting;
  bool ended = false;

  net::any_io_executor executor() override { return ex; }

  void deliver() {
    if (!waiting) return;
    if (!inbox.empty()) {
      // Take the reader first: driving the outer link below may deliver more data into this stream.
      auto done = std::move(waiting);
      waiting = nullptr;
      auto data = std::move(inbox.front());
      inbox.pop_front();
      const auto n = data.size();
      net::post(ex, [done, data = std::move(data)]() mutable { done({}, std::move(data)); });
      if (auto l = outer.lock()) {
        l->session().consumed(channel, n);
        l->drive();
      }
    } else if (ended) {
      auto done = std::move(waiting);
      waiting = nullptr;
      net::post(ex, [done] { done(net::error::eof, {}); });
    }
  }

  void read(std::function<void(boost::system::error_code, ssh::bytes)> done) override {
    waiting = std::move(done);
    deliver();
  }
  void write(ssh::bytes data, std::function<void(boost::system::error_code)> done) override {
    auto l = outer.lock();
    if (!l || ended) return net::post(ex, [done] { done(net::error::broken_pipe); });
    l->send(channel, data);
    l->drive();
    net::post(ex, [done] { done({}); });
  }
  void close() override {
    if (auto l = outer.lock()) {
      l->session().close_channel(channel);
      l->drive();
    }
  }
  void on_data(ssh_link&, std::uint32_t, ssh::bytes data) override {
    inbox.push_back(std::move(data));
    deliver();
  }
  void on_eof(ssh_link&, std::uint32_t) override {
    ended = true;
    deliver();
  }
  void on_closed(ssh_link&, std::uint32_t) override {
    ended = true;
    deliver();
  }
};

}  // namespace

std::shared_ptr<byte_stream> make_channel_stream(const std::shared_ptr<ssh_link>& outer,
                                                 std::uint32_t channel) {
  auto s = std::make_shared<channel_stream>();
  s->outer = outer;
  s->channel = channel;
  s->ex = outer->executor();
  outer->attach(channel, s);
  return s;
}

}  // namespace sb::tunnel::io

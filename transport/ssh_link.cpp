#include "transport/ssh_link.hpp"

#include <array>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

namespace sb::transport {

namespace net = boost::asio;
namespace ssh = tunnel::ssh;
using tcp = net::ip::tcp;

namespace {

constexpr std::size_t read_chunk = 64 * 1024;

class tcp_byte_stream : public byte_stream, public std::enable_shared_from_this<tcp_byte_stream> {
 public:
  explicit tcp_byte_stream(tcp::socket socket) : socket_(std::move(socket)) {
    boost::system::error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
  }
  net::any_io_executor executor() override { return socket_.get_executor(); }
  void read(std::function<void(boost::system::error_code, ssh::bytes)> done) override {
    auto buf = std::make_shared<ssh::bytes>(read_chunk);
    socket_.async_read_some(net::buffer(*buf), [self = shared_from_this(), buf, done](boost::system::error_code ec,
                                                                                      std::size_t n) {
      buf->resize(n);
      done(ec, std::move(*buf));
    });
  }
  void write(ssh::bytes data, std::function<void(boost::system::error_code)> done) override {
    auto buf = std::make_shared<ssh::bytes>(std::move(data));
    net::async_write(socket_, net::buffer(*buf), [self = shared_from_this(), buf, done](boost::system::error_code ec,
                                                                                       std::size_t) { done(ec); });
  }
  void close() override {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

 private:
  tcp::socket socket_;
};

}  // namespace

std::shared_ptr<byte_stream> make_tcp_stream(tcp::socket socket) {
  return std::make_shared<tcp_byte_stream>(std::move(socket));
}

// -- default handler behaviour: refuse what nobody asked for ---------------------------------------------------

void ssh_link_handler::on_global_request(ssh_link& link, const ssh::ev::global_request& req) {
  if (req.want_reply) link.session().global_reply(false);
}

void ssh_link_handler::on_channel_open(ssh_link& link, const ssh::ev::channel_open& open) {
  link.session().reject_channel(open.id, ssh::open_failure::unknown_channel_type, "channel type not supported");
}

void ssh_link_handler::on_channel_request(ssh_link& link, const ssh::ev::channel_request& req) {
  if (req.want_reply) link.session().channel_reply(req.id, false);
}

// -- the link -------------------------------------------------------------------------------------------------

struct ssh_link::tcp_bridge {
  std::uint32_t channel = 0;
  tcp::socket socket;
  std::function<void()> done;
  std::deque<ssh::bytes> to_socket;
  bool writing = false;
  bool reading = false;
  bool read_paused = false;
  bool socket_eof = false;   // the socket will send no more
  bool channel_eof = false;  // the peer will send no more
  bool shutdown_sent = false;
  bool close_requested = false;
  bool finished = false;
  std::array<std::uint8_t, 32 * 1024> buf{};

  explicit tcp_bridge(tcp::socket s) : socket(std::move(s)) {}
};

ssh_link::ssh_link(std::shared_ptr<byte_stream> stream, ssh::session_config config, ssh_link_handler& handler)
    : stream_(std::move(stream)), session_(std::move(config)), handler_(handler) {}

ssh_link::~ssh_link() = default;

void ssh_link::post(std::function<void()> fn) {
  net::post(stream_->executor(), [self = shared_from_this(), fn = std::move(fn)] { fn(); });
}

void ssh_link::start() {
  post([this] {
    session_.start();
    flush();
    do_read();
  });
}

void ssh_link::close(std::uint32_t reason, const std::string& why) {
  post([this, reason, why] {
    if (closed_) return;
    session_.disconnect(reason, why);
    drive();
  });
}

void ssh_link::do_read() {
  if (closed_) return;
  stream_->read([self = shared_from_this()](boost::system::error_code ec, ssh::bytes data) {
    if (self->closed_) return;
    if (ec) return self->finish(ssh::disconnect_reason::connection_lost, ec.message());
    self->session_.receive(data);
    self->drive();
    if (!self->session_.closed()) self->do_read();
  });
}

void ssh_link::drive() {
  while (auto e = session_.poll()) dispatch(*e);
  flush();
}

void ssh_link::flush() {
  auto out = session_.take_output();
  if (!out.empty()) writes_.push_back(std::move(out));
  if (!writing_) do_write();
}

void ssh_link::do_write() {
  if (writes_.empty()) {
    if (close_after_flush_) {
      stream_->close();
      close_after_flush_ = false;
    }
    return;
  }
  writing_ = true;
  auto data = std::move(writes_.front());
  writes_.pop_front();
  stream_->write(std::move(data), [self = shared_from_this()](boost::system::error_code ec) {
    self->writing_ = false;
    if (ec) return self->finish(ssh::disconnect_reason::connection_lost, ec.message());
    self->do_write();
  });
}

void ssh_link::finish(std::uint32_t reason, const std::string& message) {
  if (closed_) return;
  closed_ = true;
  auto bridges = std::move(bridges_);
  for (auto& [_, b] : bridges) {
    boost::system::error_code ec;
    b->socket.close(ec);
    b->finished = true;
    if (b->done) b->done();
  }
  handler_.on_closed(*this, reason, message);
  // Let the DISCONNECT reach the peer before the stream goes.
  if (writing_ || !writes_.empty())
    close_after_flush_ = true;
  else
    stream_->close();
}

void ssh_link::send(std::uint32_t channel, const ssh::bytes& data) {
  counters_.bytes_out += data.size();
  session_.send(channel, data);
}

void ssh_link::dispatch(ssh::event& e) {
  auto bridged = [this](std::uint32_t id) -> std::shared_ptr<tcp_bridge> {
    auto it = bridges_.find(id);
    return it == bridges_.end() ? nullptr : it->second;
  };
  std::visit(
      [&](auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, ssh::ev::ready>) {
          handler_.on_ready(*this);
        } else if constexpr (std::is_same_v<T, ssh::ev::global_request>) {
          handler_.on_global_request(*this, x);
        } else if constexpr (std::is_same_v<T, ssh::ev::global_reply>) {
          handler_.on_global_reply(*this, x);
        } else if constexpr (std::is_same_v<T, ssh::ev::channel_open>) {
          ++counters_.channels_opened;
          handler_.on_channel_open(*this, x);
        } else if constexpr (std::is_same_v<T, ssh::ev::channel_confirmed>) {
          handler_.on_channel_confirmed(*this, x);
        } else if constexpr (std::is_same_v<T, ssh::ev::channel_failed>) {
          if (auto b = bridged(x.id)) {
            bridges_.erase(x.id);
            boost::system::error_code ec;
            b->socket.close(ec);
            b->finished = true;
            if (b->done) b->done();
          }
          handler_.on_channel_failed(*this, x);
        } else if constexpr (std::is_same_v<T, ssh::ev::channel_data>) {
          counters_.bytes_in += x.data.size();
          if (auto b = bridged(x.id)) {
            b->to_socket.push_back(std::move(x.data));
            bridge_write(b);
          } else {
            handler_.on_channel_data(*this, x.id, x.data);
          }
        } else if constexpr (std::is_same_v<T, ssh::ev::channel_eof>) {
          if (auto b = bridged(x.id)) {
            b->channel_eof = true;
            bridge_write(b);
          } else {
            handler_.on_channel_eof(*this, x.id);
          }
        } else if constexpr (std::is_same_v<T, ssh::ev::channel_closed>) {
          if (auto b = bridged(x.id)) {
            bridges_.erase(x.id);
            boost::system::error_code ec;
            b->socket.close(ec);
            b->finished = true;
            if (b->done) b->done();
          } else {
            handler_.on_channel_closed(*this, x.id);
          }
        } else if constexpr (std::is_same_v<T, ssh::ev::channel_request>) {
          handler_.on_channel_request(*this, x);
        } else if constexpr (std::is_same_v<T, ssh::ev::channel_writable>) {
          if (auto b = bridged(x.id)) {
            if (b->read_paused && session_.pending(x.id) <= high_watermark / 2) {
              b->read_paused = false;
              bridge_read(b);
            }
          }
        } else if constexpr (std::is_same_v<T, ssh::ev::disconnected>) {
          finish(x.reason, x.message);
        }
      },
      e);
}

void ssh_link::bridge(std::uint32_t channel, tcp::socket socket, std::function<void()> done) {
  auto b = std::make_shared<tcp_bridge>(std::move(socket));
  b->channel = channel;
  b->done = std::move(done);
  boost::system::error_code ec;
  b->socket.set_option(tcp::no_delay(true), ec);
  bridges_[channel] = b;
  bridge_read(b);
}

void ssh_link::bridge_read(const std::shared_ptr<tcp_bridge>& b) {
  if (b->reading || b->read_paused || b->socket_eof || b->finished) return;
  b->reading = true;
  b->socket.async_read_some(net::buffer(b->buf), [self = shared_from_this(), b](boost::system::error_code ec, std::size_t n) {
    b->reading = false;
    if (b->finished || self->closed_) return;
    if (ec) {
      // EOF or reset: the socket sends no more; tell the peer after what is queued.
      b->socket_eof = true;
      self->session_.send_eof(b->channel);
      if (ec != net::error::eof) {
        b->channel_eof = true;
        b->to_socket.clear();
      }
      self->bridge_finish_if_done(b);
      self->drive();
      return;
    }
    self->counters_.bytes_out += n;
    const auto waiting = self->session_.send(b->channel, b->buf.data(), n);
    if (waiting > high_watermark) b->read_paused = true;
    self->drive();
    self->bridge_read(b);
  });
}

void ssh_link::bridge_write(const std::shared_ptr<tcp_bridge>& b) {
  if (b->writing || b->finished) return;
  if (b->to_socket.empty()) {
    if (b->channel_eof && !b->shutdown_sent) {
      b->shutdown_sent = true;
      boost::system::error_code ec;
      b->socket.shutdown(tcp::socket::shutdown_send, ec);
      bridge_finish_if_done(b);
      drive();
    }
    return;
  }
  b->writing = true;
  auto data = std::make_shared<ssh::bytes>(std::move(b->to_socket.front()));
  b->to_socket.pop_front();
  net::async_write(b->socket, net::buffer(*data), [self = shared_from_this(), b, data](boost::system::error_code ec, std::size_t) {
    b->writing = false;
    if (b->finished || self->closed_) return;
    if (ec) {
      // The local side is gone: stop both directions.
      b->to_socket.clear();
      b->channel_eof = b->socket_eof = true;
      self->session_.close_channel(b->channel);
      self->drive();
      return;
    }
    // Only now may the peer send this much more: its data is out of our memory.
    self->session_.consumed(b->channel, data->size());
    self->drive();
    self->bridge_write(b);
  });
}

void ssh_link::bridge_finish_if_done(const std::shared_ptr<tcp_bridge>& b) {
  if (b->close_requested) return;
  if (b->socket_eof && b->channel_eof && b->to_socket.empty() && !b->writing) {
    b->close_requested = true;
    session_.close_channel(b->channel);
  }
}

}  // namespace sb::transport

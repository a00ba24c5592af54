#include "tunnel/io/splice.hpp"

#include <atomic>
#include <boost/asio/post.hpp>
#include <deque>

namespace sb::tunnel::io {

namespace net = boost::asio;
namespace ssh = tunnel::ssh;

namespace {

constexpr std::size_t high = ssh_link::high_watermark;

// -- channel <-> channel
// --------------------------------------------------------------------------------------

struct channel_splice : std::enable_shared_from_this<channel_splice> {
  std::weak_ptr<ssh_link> link[2];
  std::uint32_t ch[2] = {0, 0};
  std::size_t owed[2] = {0, 0};  // owed[j]: bytes put into side j, not yet credited back to the other side
  std::atomic<int> open_ends{2};
  std::function<void()> done;

  void on(int side, std::function<void(ssh_link&)> fn) {
    if (auto l = link[side].lock()) l->post([l, fn] { fn(*l); });
  }

  void credit(int to_side, std::size_t n) {
    on(to_side, [this, self = shared_from_this(), to_side, n](ssh_link& l) {
      l.session().consumed(ch[to_side], n);
      l.drive();
    });
  }

  void forward(int from, ssh::bytes data) {
    const int to = 1 - from;
    const auto n = data.size();
    on(to, [this, self = shared_from_this(), from, to, n, data = std::move(data)](ssh_link& l) {
      if (l.closed()) return;
      const auto waiting = l.send(ch[to], data);
      l.drive();
      if (waiting <= high)
        credit(from, n);
      else
        owed[to] += n;
    });
  }

  void writable(int side, ssh_link& l) {
    if (owed[side] && l.session().pending(ch[side]) <= high / 2) {
      const auto n = owed[side];
      owed[side] = 0;
      credit(1 - side, n);
    }
  }

  void eof(int from) {
    const int to = 1 - from;
    on(to, [this, self = shared_from_this(), to](ssh_link& l) {
      l.session().send_eof(ch[to]);
      l.drive();
    });
  }

  void closed(int from) {
    const int to = 1 - from;
    on(to, [this, self = shared_from_this(), to](ssh_link& l) {
      l.session().close_channel(ch[to]);
      l.drive();
    });
    if (--open_ends == 0 && done) done();
  }
};

struct channel_end : channel_endpoint {
  std::shared_ptr<channel_splice> s;
  int side;
  std::function<void(const ssh::bytes&)> confirmed;
  channel_end(std::shared_ptr<channel_splice> sp, int sd) : s(std::move(sp)), side(sd) {}
  void on_confirmed(ssh_link&, std::uint32_t, const ssh::bytes& data) override {
    if (confirmed) confirmed(data);
  }
  void on_data(ssh_link&, std::uint32_t, ssh::bytes data) override { s->forward(side, std::move(data)); }
  void on_eof(ssh_link&, std::uint32_t) override { s->eof(side); }
  void on_closed(ssh_link&, std::uint32_t) override { s->closed(side); }
  void on_writable(ssh_link& l, std::uint32_t) override { s->writable(side, l); }
};

// -- stream <-> channel
// ---------------------------------------------------------------------------------------

struct stream_splice : std::enable_shared_from_this<stream_splice>, channel_endpoint {
  std::shared_ptr<byte_stream> stream;
  std::weak_ptr<ssh_link> link;
  std::uint32_t ch = 0;
  std::function<void()> done;
  // stream strand
  std::deque<std::pair<ssh::bytes, bool>> writes;  // data, or (empty, true) = close after what is queued
  bool writing = false;
  bool stream_ended = false;
  // link strand
  bool read_paused = false;
  bool channel_ended = false;

  void on_stream(std::function<void()> fn) { net::post(stream->executor(), std::move(fn)); }
  void on_link(std::function<void(ssh_link&)> fn) {
    if (auto l = link.lock()) l->post([l, fn] { fn(*l); });
  }

  /// The stream read or write failed: it is done, and so is its channel.
  void stream_failed() {
    stream_ended = true;
    on_link([self = shared_from_this()](ssh_link& l) {
      l.session().close_channel(self->ch);
      l.drive();
    });
  }

  void read_next() {
    if (stream_ended) return;
    stream->read([self = shared_from_this()](boost::system::error_code ec, ssh::bytes data) {
      if (ec) {
        self->stream_failed();
        return;
      }
      self->on_link([self, data = std::move(data)](ssh_link& l) {
        if (self->channel_ended) return;
        const auto waiting = l.send(self->ch, data);
        l.drive();
        if (waiting > high)
          self->read_paused = true;
        else
          self->on_stream([self] { self->read_next(); });
      });
    });
  }

  void write_next() {
    if (writing || writes.empty()) return;
    auto [data, close_marker] = std::move(writes.front());
    writes.pop_front();
    if (close_marker) {
      stream_ended = true;
      stream->close();
      if (done) done();
      return;
    }
    writing = true;
    const auto n = data.size();
    stream->write(std::move(data), [self = shared_from_this(), n](boost::system::error_code ec) {
      self->writing = false;
      if (ec) {
        self->stream_failed();
        return;
      }
      self->on_link([self, n](ssh_link& l) {
        l.session().consumed(self->ch, n);
        l.drive();
      });
      self->write_next();
    });
  }

  void on_data(ssh_link&, std::uint32_t, ssh::bytes data) override {
    on_stream([self = shared_from_this(), data = std::move(data)]() mutable {
      self->writes.emplace_back(std::move(data), false);
      self->write_next();
    });
  }
  void on_eof(ssh_link& l, std::uint32_t) override {
    // A raw stream cannot half-close: the V1 peer's session ends with the channel.
    on_closed(l, ch);
  }
  void on_closed(ssh_link&, std::uint32_t) override {
    if (channel_ended) return;
    channel_ended = true;
    on_stream([self = shared_from_this()] {
      self->writes.emplace_back(ssh::bytes{}, true);
      self->write_next();
    });
  }
  void on_writable(ssh_link& l, std::uint32_t) override {
    if (read_paused && l.session().pending(ch) <= high / 2) {
      read_paused = false;
      on_stream([self = shared_from_this()] { self->read_next(); });
    }
  }
};

}  // namespace

void splice_channels(const std::shared_ptr<ssh_link>& a, std::uint32_t a_channel,
                     const std::shared_ptr<ssh_link>& b, std::uint32_t b_channel,
                     std::function<void()> done) {
  auto s = std::make_shared<channel_splice>();
  s->link[0] = a;
  s->link[1] = b;
  s->ch[0] = a_channel;
  s->ch[1] = b_channel;
  s->done = std::move(done);
  a->post([a, s, a_channel] { a->attach(a_channel, std::make_shared<channel_end>(s, 0)); });
  b->post([b, s, b_channel] { b->attach(b_channel, std::make_shared<channel_end>(s, 1)); });
}

void open_and_splice(const std::shared_ptr<ssh_link>& a, std::uint32_t a_channel,
                     const std::shared_ptr<ssh_link>& b, std::string type, ssh::bytes open_data,
                     std::function<void(const ssh::bytes&)> on_b_confirmed, std::function<void()> done) {
  auto s = std::make_shared<channel_splice>();
  s->link[0] = a;
  s->link[1] = b;
  s->ch[0] = a_channel;
  s->done = std::move(done);
  b->post([a, b, s, a_channel, type = std::move(type), open_data = std::move(open_data),
           on_b_confirmed = std::move(on_b_confirmed)] {
    if (b->closed()) {
      a->post([a, a_channel] {
        a->session().close_channel(a_channel);
        a->drive();
      });
      return;
    }
    s->ch[1] = b->session().open_channel(type, open_data);
    auto end = std::make_shared<channel_end>(s, 1);
    end->confirmed = on_b_confirmed;
    b->attach(s->ch[1], end);
    b->drive();
    a->post([a, s, a_channel] { a->attach(a_channel, std::make_shared<channel_end>(s, 0)); });
  });
}

void open_and_splice_stream(const std::shared_ptr<byte_stream>& stream, const std::shared_ptr<ssh_link>& link,
                            std::string type, std::function<void()> done) {
  auto s = std::make_shared<stream_splice>();
  s->stream = stream;
  s->link = link;
  s->done = std::move(done);
  link->post([link, s, type = std::move(type)] {
    if (link->closed())
      return s->on_stream([s] {
        s->stream->close();
        if (s->done) s->done();
      });
    s->ch = link->session().open_channel(type);
    link->attach(s->ch, s);
    link->drive();
    s->on_stream([s] { s->read_next(); });
  });
}

void splice_stream(const std::shared_ptr<byte_stream>& stream, const std::shared_ptr<ssh_link>& link,
                   std::uint32_t channel, ssh::bytes initial, std::function<void()> done) {
  auto s = std::make_shared<stream_splice>();
  s->stream = stream;
  s->link = link;
  s->ch = channel;
  s->done = std::move(done);
  link->post([link, s, channel, initial = std::move(initial)] {
    link->attach(channel, s);
    if (!initial.empty()) {
      link->send(channel, initial);
      link->drive();
    }
    s->on_stream([s] { s->read_next(); });
  });
}

}  // namespace sb::tunnel::io

#pragma once
// Runs a sans-I/O ssh::session over a byte stream (a TCP socket or a WebSocket carrying binary frames), on
// one strand, and bridges its channels to TCP sockets with back-pressure: a channel's data is granted back to
// the peer only once the socket took it, and a socket is read only while the channel's queue is below its
// high watermark (Envoy's watermark model: resume at half).
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <deque>
#include <functional>
#include <map>
#include <memory>

#include "tunnel/ssh/session.hpp"

namespace sb::tunnel::io {

/// A reliable, ordered byte stream; all calls and callbacks on the stream's executor.
class byte_stream {
 public:
  virtual ~byte_stream() = default;
  virtual boost::asio::any_io_executor executor() = 0;
  /// Delivers some bytes; an empty result with an error ends the stream.
  virtual void read(std::function<void(boost::system::error_code, tunnel::ssh::bytes)> done) = 0;
  virtual void write(tunnel::ssh::bytes data, std::function<void(boost::system::error_code)> done) = 0;
  virtual void close() = 0;
};

std::shared_ptr<byte_stream> make_tcp_stream(boost::asio::ip::tcp::socket socket);

class ssh_link;

/// What the link's owner does with session events. Called on the link's strand.
class ssh_link_handler {
 public:
  virtual ~ssh_link_handler() = default;
  virtual void on_ready(ssh_link&) {}
  virtual void on_global_request(ssh_link& link, const tunnel::ssh::ev::global_request& req);
  virtual void on_global_reply(ssh_link&, const tunnel::ssh::ev::global_reply&) {}
  /// Default: refuse. Accept with link.session().accept_channel and then bridge or handle the data.
  virtual void on_channel_open(ssh_link& link, const tunnel::ssh::ev::channel_open& open);
  virtual void on_channel_confirmed(ssh_link&, const tunnel::ssh::ev::channel_confirmed&) {}
  virtual void on_channel_failed(ssh_link&, const tunnel::ssh::ev::channel_failed&) {}
  /// Data for channels that are not bridged to a socket.
  virtual void on_channel_data(ssh_link&, std::uint32_t, tunnel::ssh::bytes&) {}
  virtual void on_channel_eof(ssh_link&, std::uint32_t) {}
  virtual void on_channel_closed(ssh_link&, std::uint32_t) {}
  virtual void on_channel_request(ssh_link& link, const tunnel::ssh::ev::channel_request& req);
  virtual void on_closed(ssh_link&, std::uint32_t reason, const std::string& message) {}
};

/// Receives one channel's events on its link's strand: a TCP bridge, or one end of a splice.
class channel_endpoint {
 public:
  virtual ~channel_endpoint() = default;
  virtual void on_data(ssh_link& link, std::uint32_t channel, tunnel::ssh::bytes data) = 0;
  virtual void on_eof(ssh_link& link, std::uint32_t channel) = 0;
  /// The channel is gone: closed by the peer, refused, or its link ended.
  virtual void on_closed(ssh_link& link, std::uint32_t channel) = 0;
  virtual void on_writable(ssh_link&, std::uint32_t) {}
  virtual void on_confirmed(ssh_link&, std::uint32_t, const tunnel::ssh::bytes&) {}
};

/// Written on the link's strand, read from anywhere (the admin socket's stats, a liveness watchdog).
struct link_counters {
  std::atomic<std::uint64_t> bytes_in{0};   // channel payload bytes received from the peer
  std::atomic<std::uint64_t> bytes_out{0};  // channel payload bytes sent to the peer
  std::atomic<std::uint64_t> channels_opened{0};
  std::atomic<std::uint64_t> wire_bytes_in{0};  // every byte the stream delivered, SSH framing included
};

class ssh_link : public std::enable_shared_from_this<ssh_link> {
 public:
  static constexpr std::size_t high_watermark = 1024 * 1024;

  ssh_link(std::shared_ptr<byte_stream> stream, tunnel::ssh::session_config config,
           ssh_link_handler& handler);
  ~ssh_link();

  /// Starts the session; everything after runs on the stream's executor.
  void start();
  /// Keeps `owner` (usually the handler) alive until the link has ended.
  void hold(std::shared_ptr<void> owner) { owner_ = std::move(owner); }
  /// Runs `fn` on the link's executor (use for every call from elsewhere).
  void post(std::function<void()> fn);
  void close(std::uint32_t reason = tunnel::ssh::disconnect_reason::by_application,
             const std::string& why = "closing");
  /// Drops the connection without a DISCONNECT, as a crash would: the peer sees connectionLost and retries.
  void abort(const std::string& why = "aborted");

  tunnel::ssh::session& session() { return session_; }
  boost::asio::any_io_executor executor() { return stream_->executor(); }
  /// Sends what the session queued; call after driving the session directly.
  void flush();
  /// Pumps bytes both ways between `channel` and `socket` until both ends finished; the channel must be open
  /// (or opening: data waits for the confirmation). `done` runs when the bridge ended.
  /// `done` gets the bytes moved each way: (peer -> socket, socket -> peer).
  void bridge(std::uint32_t channel, boost::asio::ip::tcp::socket socket,
              std::function<void(std::uint64_t, std::uint64_t)> done = {});
  /// Routes a channel's events to `endpoint` instead of the handler.
  void attach(std::uint32_t channel, std::shared_ptr<channel_endpoint> endpoint);
  void detach(std::uint32_t channel);
  /// Sends channel data and counts it; returns the bytes still waiting for the peer's window.
  std::size_t send(std::uint32_t channel, const tunnel::ssh::bytes& data);
  const link_counters& counters() const { return counters_; }
  bool closed() const { return closed_; }
  std::size_t attached() const { return endpoints_.size(); }

 private:
  struct tcp_bridge;
  friend struct tcp_bridge;
  void do_read();
  void do_write();
  void dispatch(tunnel::ssh::event& e);
  void finish(std::uint32_t reason, const std::string& message);
  std::shared_ptr<channel_endpoint> endpoint_of(std::uint32_t channel);

 public:
  /// Delivers pending session events and sends its output; call after driving the session directly.
  void drive();

 private:
  std::shared_ptr<byte_stream> stream_;
  tunnel::ssh::session session_;
  ssh_link_handler& handler_;
  std::deque<tunnel::ssh::bytes> writes_;
  bool writing_ = false;
  bool closed_ = false;
  bool close_after_flush_ = false;
  std::map<std::uint32_t, std::shared_ptr<channel_endpoint>> endpoints_;
  std::shared_ptr<void> owner_;
  link_counters counters_;
};

}  // namespace sb::tunnel::io

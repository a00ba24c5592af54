#pragma once
// What host_peer and client_peer share, private to tunnel/io/host_peer.cpp and client_peer.cpp: offering and
// reading the relay subprotocol, typed outcomes, bridging a channel to a local port, the relay watchdog, and
// relay_peer_core (the WebSocket, the published link, the one `ended` report).
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <mutex>

#include "tunnel/io/tunnel_peers.hpp"
#include "tunnel/io/ws_stream.hpp"
#include "tunnel/management_client.hpp"

namespace sb::tunnel::io::relay_peer_detail {

namespace net = boost::asio;
namespace ssh = tunnel::ssh;
using tcp = net::ip::tcp;
using tunnel::protocol_version;

/// 127.0.0.1:port, where forwarded streams connect and the client listens.
tcp::endpoint loopback(std::uint16_t port);

/// The subprotocols to offer for a choice, V2 first.
std::vector<std::string> offered(protocol_choice choice, const char* v2, const char* v1);
/// The version the relay picked (`protocol` is its Sec-WebSocket-Protocol answer, empty if none).
protocol_version chosen(const std::string& protocol, protocol_choice choice, const char* v1);
/// Why a relay WebSocket could not be opened: an HTTP refusal, or a network failure when no status came back.
relay_outcome refusal_of(const websocket_connect_result& r);
/// The outcome of a session that ended, for the retry rules.
relay_outcome ending_of(std::uint32_t reason, bool was_connected, const std::string& message);
websocket_connect_options relay_websocket(const std::string& uri, const std::string& token,
                                          protocol_choice choice, const char* v2, const char* v1);
/// Connects to 127.0.0.1:port and, on the link's strand, accepts and bridges the channel or refuses it.
void connect_local_and_bridge(net::io_context& ioc, const std::shared_ptr<ssh_link>& link,
                              std::uint32_t channel, std::uint16_t port, ssh::bytes confirmation,
                              std::function<void()> on_open,
                              std::function<void(std::uint64_t, std::uint64_t)> on_done);

/// The keepalive the relay must answer (any answer will do: a refusal is traffic too), as OpenSSH sends it.
inline constexpr const char* keepalive_request = "keepalive@openssh.com";

/// Watches a relay link on its strand: every tick without a byte from the relay counts, any byte resets the
/// count, and `ping` (on the strand) provokes an answer. At the limit the link is aborted, which ends the
/// connection with connectionLost, so its owner reconnects. Holds the link only weakly: it stops with it.
void watch_relay_link(const std::shared_ptr<ssh_link>& link, std::chrono::milliseconds idle_timeout,
                      std::function<void(ssh_link&)> ping);

/// What the host and the client peer share: the relay WebSocket offering V2 and V1, the SSH link published
/// to other threads (stop(), port changes) under one lock, and the one `ended` report.
template <class Derived>
struct relay_peer_core : ssh_link_handler, std::enable_shared_from_this<Derived> {
  net::io_context& ioc;
  relay_peer_callbacks cb;
  std::shared_ptr<ssh_link> link;
  protocol_version version = protocol_version::v2;
  bool ready = false;
  bool ended = false;
  std::atomic<bool> stopping{false};  // set by stop() on any thread, read on the strand
  std::mutex link_mtx;                // orders publishing the link against stop(): one of them sees the other

  relay_peer_core(net::io_context& io, relay_peer_callbacks c) : ioc(io), cb(std::move(c)) {}

  /// Makes the link visible to stop() and port changes on other threads; false once stopping.
  bool publish(const std::shared_ptr<ssh_link>& l) {
    std::lock_guard<std::mutex> g(link_mtx);
    if (stopping) return false;
    std::atomic_store(&link, l);
    return true;
  }
  /// Marks the peer stopping and returns the link to close, if one was published.
  std::shared_ptr<ssh_link> begin_stop() {
    std::lock_guard<std::mutex> g(link_mtx);
    stopping = true;
    return std::atomic_load(&link);
  }

  /// Opens the relay WebSocket; Derived::on_connected gets the result.
  void open_websocket(const std::string& uri, const std::string& token, protocol_choice choice, const char* v2,
                      const char* v1, const std::string& ca_file) {
    auto w = relay_websocket(uri, token, choice, v2, v1);
    w.ca_file = ca_file;
    connect_websocket(ioc, w, [self = this->shared_from_this()](websocket_connect_result r) {
      self->on_connected(std::move(r));
    });
  }

  /// Runs the SSH session over the relay WebSocket, kept alive by the link until it ends, with the idle
  /// watchdog sending `keepalive` once the session is ready.
  void start_link(const std::shared_ptr<byte_stream>& stream, ssh::session_config cfg,
                  std::chrono::milliseconds idle_timeout, std::function<void(Derived&, ssh_link&)> keepalive) {
    auto l = std::make_shared<ssh_link>(stream, std::move(cfg), *this);
    if (!publish(l)) return stream->close();
    l->hold(this->shared_from_this());
    l->start();
    watch_relay_link(l, idle_timeout, [w = this->weak_from_this(), keepalive](ssh_link& on) {
      auto self = w.lock();
      if (!self || !self->ready) return;  // before ready the handshake itself is the traffic
      keepalive(*self, on);
    });
  }

  /// Reports the end to the owner, once; false when it was reported already.
  bool report_end(const relay_outcome& o) {
    if (ended) return false;
    ended = true;
    if (cb.ended) cb.ended(o);
    return true;
  }
};

}  // namespace sb::tunnel::io::relay_peer_detail

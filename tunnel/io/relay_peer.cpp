#include "tunnel/io/relay_peer.hpp"

namespace sb::tunnel::io::relay_peer_detail {

namespace {

/// Silent ticks (a third of the idle timeout each) before the relay counts as gone: one overdue tick, as
/// after this process itself was stopped and continued, does not drop a healthy connection.
constexpr unsigned silent_ticks_limit = 3;

}  // namespace

tcp::endpoint loopback(std::uint16_t port) { return {net::ip::make_address("127.0.0.1"), port}; }

std::vector<std::string> offered(protocol_choice choice, const char* v2, const char* v1) {
  switch (choice) {
    case protocol_choice::v2:
      return {v2};
    case protocol_choice::v1:
      return {v1};
    default:
      return {v2, v1};
  }
}

protocol_version chosen(const std::string& protocol, protocol_choice choice, const char* v1) {
  if (protocol.empty()) return choice == protocol_choice::v1 ? protocol_version::v1 : protocol_version::v2;
  return protocol == v1 ? protocol_version::v1 : protocol_version::v2;
}


/// Why a relay WebSocket could not be opened: an HTTP refusal, or a network failure when no status came back.
relay_outcome refusal_of(const websocket_connect_result& r) {
  relay_outcome o;
  o.http_status = r.http_status;
  o.network = r.http_status == 0;
  o.message = r.error;
  return o;
}

/// The outcome of a session that ended, for the retry rules.
relay_outcome ending_of(std::uint32_t reason, bool was_connected, const std::string& message) {
  relay_outcome o;
  o.ssh_reason = reason;
  o.was_connected = was_connected;
  o.network = reason == ssh::disconnect_reason::connection_lost;
  o.message = message;
  return o;
}

websocket_connect_options relay_websocket(const std::string& uri, const std::string& token,
                                          protocol_choice choice, const char* v2, const char* v1) {
  websocket_connect_options w;
  w.url = uri;
  w.subprotocols = offered(choice, v2, v1);
  w.authorization = tunnel::authorization_for(token);
  return w;
}

/// Connects to 127.0.0.1:port and, on the link's strand, accepts and bridges the channel or refuses it.
void connect_local_and_bridge(net::io_context& ioc, const std::shared_ptr<ssh_link>& link,
                              std::uint32_t channel, std::uint16_t port, ssh::bytes confirmation,
                              std::function<void()> on_open,
                              std::function<void(std::uint64_t, std::uint64_t)> on_done) {
  auto socket = std::make_shared<tcp::socket>(net::make_strand(ioc));
  socket->async_connect(loopback(port), [link, socket, channel, port, confirmation, on_open,
                                         on_done](boost::system::error_code ec) {
    link->post([link, socket, channel, port, ec, confirmation, on_open, on_done] {
      if (ec) {
        spdlog::info("tunnel: local port {} refused a stream: {}", port, ec.message());
        link->session().reject_channel(channel, ssh::open_failure::connect_failed, ec.message());
      } else {
        link->session().accept_channel(channel, confirmation);
        link->bridge(channel, std::move(*socket), on_done);
        if (on_open) on_open();
      }
      link->drive();
    });
  });
}


/// Watches a relay link on its strand: every tick without a byte from the relay counts, any byte resets the
/// count, and `ping` (on the strand) provokes an answer. At the limit the link is aborted, which ends the
/// connection with connectionLost, so its owner reconnects. Holds the link only weakly: it stops with it.
void watch_relay_link(const std::shared_ptr<ssh_link>& link, std::chrono::milliseconds idle_timeout,
                      std::function<void(ssh_link&)> ping) {
  if (idle_timeout.count() <= 0) return;
  struct watch {
    std::weak_ptr<ssh_link> link;
    net::steady_timer timer;
    std::chrono::milliseconds idle, tick;
    std::function<void(ssh_link&)> ping;
    std::uint64_t seen = 0;
    unsigned silent = 0;
    watch(const std::shared_ptr<ssh_link>& l, std::chrono::milliseconds i, std::function<void(ssh_link&)> p)
        : link(l),
          timer(l->executor()),
          idle(i),
          tick(std::max<std::chrono::milliseconds>(i / silent_ticks_limit, std::chrono::milliseconds(1))),
          ping(std::move(p)) {}
    static void arm(const std::shared_ptr<watch>& w) {
      w->timer.expires_after(w->tick);
      w->timer.async_wait([w](boost::system::error_code ec) {
        auto l = w->link.lock();
        if (ec || !l || l->closed()) return;
        const auto now = l->counters().wire_bytes_in.load();
        if (now != w->seen) {
          w->seen = now;
          w->silent = 0;
        } else if (++w->silent >= silent_ticks_limit) {
          spdlog::warn("tunnel: nothing from the relay for {} ms: dropping the connection", w->idle.count());
          return l->abort("relay silent for " + std::to_string(w->idle.count()) + " ms");
        }
        if (w->ping) w->ping(*l);
        arm(w);
      });
    }
  };
  auto w = std::make_shared<watch>(link, idle_timeout, std::move(ping));
  w->seen = link->counters().wire_bytes_in.load();
  // The timer's executor is the link's: every tick runs on its strand.
  net::post(link->executor(), [w] { watch::arm(w); });
}

}  // namespace sb::tunnel::io::relay_peer_detail

// Channel flow control (RFC 4254 §5.2): a sender stays within the peer's window and maximum packet size, the
// receiver grants window back in half-window steps, a peer that overruns the window is disconnected, and many
// interleaved channels keep their bytes apart. Raw cases play the peer by hand over a `none` key exchange.
#include <catch2/catch.hpp>
#include <map>
#include <random>

#include "ssh_harness.hpp"
#include "tunnel/ssh/session.hpp"

using namespace sb::tunnel::ssh;
using namespace ssh_test;

namespace {

/// One side of a session played by hand: cleartext framing after a V2-style KEXINIT that lists `none` first.
class raw_peer {
 public:
  explicit raw_peer(session& s) : s_(s) {}

  /// Our version line and KEXINIT; the session under test must offer `none` as well.
  void start() {
    s_.start();
    bytes out = to_bytes("SSH-2.0-raw_1.0\r\n");
    writer kexinit;
    kexinit.u8(msg::kexinit).raw(bytes(16, 0x42));
    kexinit.name_list({"none", "ecdh-sha2-nistp384"}).name_list({"ecdsa-sha2-nistp384"});
    kexinit.name_list({"aes256-ctr"})
        .name_list({"aes256-ctr"})
        .name_list({"hmac-sha2-256"})
        .name_list({"hmac-sha2-256"});
    kexinit.name_list({"none"}).name_list({"none"}).name_list({}).name_list({}).boolean(false).u32(0);
    const auto w = sealer_.seal(kexinit.data());
    out.insert(out.end(), w.begin(), w.end());
    s_.receive(out);
  }

  void send(const bytes& payload) { s_.receive(sealer_.seal(payload)); }

  /// Everything the session wrote since the last call, as payloads.
  std::vector<bytes> read() {
    auto out = s_.take_output();
    std::size_t from = 0;
    if (!version_seen_) {
      const std::string text(out.begin(), out.end());
      const auto eol = text.find("\r\n");
      REQUIRE(eol != std::string::npos);
      version_seen_ = true;
      from = eol + 2;
    }
    opener_.feed(out.data() + from, out.size() - from);
    std::vector<bytes> packets;
    for (;;) {
      bytes p;
      const auto st = opener_.next(p);
      REQUIRE(st != packet_opener::status::error);
      if (st == packet_opener::status::need_more) break;
      packets.push_back(std::move(p));
    }
    return packets;
  }

  std::vector<bytes> read_type(std::uint8_t type) {
    std::vector<bytes> out;
    for (auto& p : read())
      if (!p.empty() && p[0] == type) out.push_back(std::move(p));
    return out;
  }

 private:
  session& s_;
  packet_sealer sealer_;
  packet_opener opener_;
  bool version_seen_ = false;
};

session_config none_server(std::uint32_t window, std::uint32_t max_packet = 32 * 1024) {
  session_config c;
  c.role = role::server;
  c.kex = {"none"};
  c.window = window;
  c.max_packet = max_packet;
  return c;
}

std::vector<event> drain(session& s) {
  std::vector<event> out;
  while (auto e = s.poll()) out.push_back(std::move(*e));
  return out;
}

struct raw_channel {
  std::uint32_t ours = 7;  // the raw peer's channel number
  std::uint32_t theirs = 0;
  std::uint32_t window = 0, max_packet = 0;
};

/// The raw peer opens a channel announcing `window` and `max_packet`; the session accepts it.
raw_channel open_raw(session& s, raw_peer& peer, std::uint32_t window, std::uint32_t max_packet) {
  raw_channel ch;
  peer.send(writer()
                .u8(msg::channel_open)
                .string(std::string_view("direct-tcpip"))
                .u32(ch.ours)
                .u32(window)
                .u32(max_packet)
                .string(std::string_view("127.0.0.1"))
                .u32(80)
                .string(std::string_view("127.0.0.1"))
                .u32(5000)
                .take());
  std::optional<std::uint32_t> id;
  for (auto& e : drain(s))
    if (auto* o = std::get_if<ev::channel_open>(&e)) id = o->id;
  REQUIRE(id);
  s.accept_channel(*id);
  auto confirmations = peer.read_type(msg::channel_open_confirmation);
  REQUIRE(confirmations.size() == 1);
  reader r(confirmations[0].data() + 1, confirmations[0].size() - 1);
  CHECK(r.u32() == ch.ours);
  ch.theirs = r.u32();
  ch.window = r.u32();
  ch.max_packet = r.u32();
  REQUIRE(r.ok());
  CHECK(ch.theirs == *id);
  return ch;
}

bytes data_packet(std::uint32_t recipient, const bytes& data) {
  return writer().u8(msg::channel_data).u32(recipient).string(data).take();
}

std::size_t delivered(std::vector<event>& events, std::uint32_t id, bytes* into = nullptr) {
  std::size_t n = 0;
  for (auto it = events.begin(); it != events.end();) {
    auto* d = std::get_if<ev::channel_data>(&*it);
    if (d && d->id == id) {
      n += d->data.size();
      if (into) into->insert(into->end(), d->data.begin(), d->data.end());
      it = events.erase(it);
    } else {
      ++it;
    }
  }
  return n;
}

}  // namespace

TEST_CASE("a sender never has more bytes in flight than the window the receiver granted") {
  for (const std::uint32_t window : {10000u, 65536u, 100001u}) {
    INFO("window " << window);
    auto c = client_cfg();
    c.window = window;
    auto s = server_cfg();
    s.window = window;
    pair_harness h(c, s);
    auto [cid, sid] = open_pair(h);
    const auto up = pattern(400000, 3);
    const auto down = pattern(300000, 9);
    h.client.send(cid, up);
    h.server.send(sid, down);
    h.pump();

    std::mt19937 rng(window);
    bytes got_up, got_down;
    std::size_t consumed_up = 0, consumed_down = 0;
    // Nothing was consumed yet: exactly one window arrived each way.
    std::size_t arrived_up = delivered(h.server_events, sid, &got_up);
    std::size_t arrived_down = delivered(h.client_events, cid, &got_down);
    CHECK(arrived_up == window);
    CHECK(arrived_down == window);
    for (int round = 0; round < 10000 && (got_up.size() < up.size() || got_down.size() < down.size());
         ++round) {
      // Consume a random part of what arrived, then let the bytes move.
      const auto take_up = std::uniform_int_distribution<std::size_t>(0, got_up.size() - consumed_up)(rng);
      const auto take_down =
          std::uniform_int_distribution<std::size_t>(0, got_down.size() - consumed_down)(rng);
      h.server.consumed(sid, take_up);
      h.client.consumed(cid, take_down);
      consumed_up += take_up;
      consumed_down += take_down;
      h.pump();
      delivered(h.server_events, sid, &got_up);
      delivered(h.client_events, cid, &got_down);
      // The receiver granted at most what it consumed, so this bounds every byte on the wire.
      REQUIRE(got_up.size() <= consumed_up + window);
      REQUIRE(got_down.size() <= consumed_down + window);
    }
    CHECK(got_up == up);
    CHECK(got_down == down);
  }
}

TEST_CASE("a raw peer receives no more than the window it announced, and more only after its window adjust") {
  session s(none_server(64 * 1024));
  raw_peer peer(s);
  peer.start();
  REQUIRE(s.ready());
  auto ch = open_raw(s, peer, 2500, 32 * 1024);
  const auto data = pattern(10000);
  s.send(ch.theirs, data);
  bytes got;
  auto collect = [&] {
    for (const auto& p : peer.read_type(msg::channel_data)) {
      reader r(p.data() + 1, p.size() - 1);
      CHECK(r.u32() == ch.ours);
      const auto d = r.string_bytes();
      REQUIRE(r.ok());
      got.insert(got.end(), d.begin(), d.end());
    }
  };
  collect();
  CHECK(got.size() == 2500);
  CHECK(s.pending(ch.theirs) == 7500);
  peer.send(writer().u8(msg::channel_window_adjust).u32(ch.theirs).u32(5000).take());
  collect();
  CHECK(got.size() == 7500);
  peer.send(writer().u8(msg::channel_window_adjust).u32(ch.theirs).u32(1000000).take());
  collect();
  CHECK(got == data);
  CHECK(s.pending(ch.theirs) == 0);
  bool writable = false;
  for (auto& e : drain(s)) writable |= std::holds_alternative<ev::channel_writable>(e);
  CHECK(writable);
}

TEST_CASE("a window adjust is sent only once half of the window was consumed") {
  constexpr std::uint32_t window = 4096;
  session s(none_server(window));
  raw_peer peer(s);
  peer.start();
  auto ch = open_raw(s, peer, 1 << 20, 32 * 1024);
  CHECK(ch.window == window);
  for (int i = 0; i < 4; ++i) peer.send(data_packet(ch.theirs, pattern(1024)));
  auto events = drain(s);
  CHECK(delivered(events, ch.theirs) == window);
  REQUIRE_FALSE(s.closed());

  auto adjusts = [&] {
    std::vector<std::uint32_t> out;
    for (const auto& p : peer.read_type(msg::channel_window_adjust)) {
      reader r(p.data() + 1, p.size() - 1);
      CHECK(r.u32() == ch.ours);
      out.push_back(r.u32());
    }
    return out;
  };
  s.consumed(ch.theirs, 1000);
  s.consumed(ch.theirs, window / 2 - 1 - 1000);
  CHECK(adjusts().empty());
  s.consumed(ch.theirs, 1);
  CHECK(adjusts() == std::vector<std::uint32_t>{window / 2});
  s.consumed(ch.theirs, window / 2 - 1);
  CHECK(adjusts().empty());
  s.consumed(ch.theirs, 1);
  CHECK(adjusts() == std::vector<std::uint32_t>{window / 2});

  // The peer may now fill the whole window again, but not a byte more.
  peer.send(data_packet(ch.theirs, pattern(window)));
  CHECK_FALSE(s.closed());
  peer.send(data_packet(ch.theirs, bytes{1}));
  CHECK(s.closed());
}

TEST_CASE("a peer that sends beyond the window is disconnected with a protocol error") {
  constexpr std::uint32_t window = 3000;
  auto expect_protocol_error = [](session& s, raw_peer& peer) {
    CHECK(s.closed());
    bool seen = false;
    for (auto& e : drain(s)) {
      if (auto* d = std::get_if<ev::disconnected>(&e)) {
        seen = true;
        CHECK(d->reason == disconnect_reason::protocol_error);
        CHECK_FALSE(d->by_peer);
      }
    }
    CHECK(seen);
    auto disconnects = peer.read_type(msg::disconnect);
    REQUIRE(disconnects.size() == 1);
    reader r(disconnects[0].data() + 1, disconnects[0].size() - 1);
    CHECK(r.u32() == disconnect_reason::protocol_error);
  };
  SECTION("in one packet") {
    session s(none_server(window));
    raw_peer peer(s);
    peer.start();
    auto ch = open_raw(s, peer, 1 << 20, 32 * 1024);
    peer.send(data_packet(ch.theirs, pattern(window + 1)));
    expect_protocol_error(s, peer);
  }
  SECTION("summed over packets") {
    session s(none_server(window));
    raw_peer peer(s);
    peer.start();
    auto ch = open_raw(s, peer, 1 << 20, 32 * 1024);
    peer.send(data_packet(ch.theirs, pattern(2000)));
    peer.send(data_packet(ch.theirs, pattern(1000)));
    REQUIRE_FALSE(s.closed());
    drain(s);
    peer.read();
    peer.send(data_packet(ch.theirs, pattern(1)));
    expect_protocol_error(s, peer);
  }
  SECTION("extended data counts against the same window") {
    session s(none_server(window));
    raw_peer peer(s);
    peer.start();
    auto ch = open_raw(s, peer, 1 << 20, 32 * 1024);
    peer.send(data_packet(ch.theirs, pattern(2999)));
    peer.send(writer().u8(msg::channel_extended_data).u32(ch.theirs).u32(1).string(pattern(2)).take());
    expect_protocol_error(s, peer);
  }
}

TEST_CASE("channel data chunks respect the peer's maximum packet size") {
  SECTION("a raw peer announcing 1000 bytes") {
    session s(none_server(1 << 20));
    raw_peer peer(s);
    peer.start();
    auto ch = open_raw(s, peer, 1 << 20, 1000);
    const auto data = pattern(25000);
    s.send(ch.theirs, data);
    bytes got;
    std::size_t packets = 0;
    for (const auto& p : peer.read_type(msg::channel_data)) {
      reader r(p.data() + 1, p.size() - 1);
      r.u32();
      const auto d = r.string_bytes();
      CHECK(d.size() <= 1000);
      CHECK(d.size() > 0);
      got.insert(got.end(), d.begin(), d.end());
      ++packets;
    }
    CHECK(got == data);
    CHECK(packets == 25);
  }
  SECTION("two sessions with different maximum packet sizes") {
    auto c = client_cfg();
    c.max_packet = 777;
    auto s = server_cfg();
    s.max_packet = 4096;
    pair_harness h(c, s);
    auto [cid, sid] = open_pair(h);
    h.server.send(sid, pattern(20000));
    h.client.send(cid, pattern(20000));
    h.pump();
    std::size_t down = 0, up = 0;
    for (const auto& d : pair_harness::of<ev::channel_data>(h.client_events)) {
      CHECK(d.data.size() <= 777);
      down += d.data.size();
    }
    for (const auto& d : pair_harness::of<ev::channel_data>(h.server_events)) {
      CHECK(d.data.size() <= 4096);
      up += d.data.size();
    }
    CHECK(down == 20000);
    CHECK(up == 20000);
  }
}

TEST_CASE("many interleaved channels keep their bytes separate in both directions") {
  auto c = client_cfg();
  c.window = 8 * 1024;
  c.max_packet = 1000;
  auto s = server_cfg();
  s.window = 16 * 1024;
  s.max_packet = 1500;
  pair_harness h(c, s);
  constexpr int n = 16;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> ids;
  for (int i = 0; i < n; ++i) ids.push_back(open_pair(h));
  std::map<std::uint32_t, bytes> want_at_server, want_at_client, got_at_server, got_at_client;
  std::mt19937 rng(5);
  std::vector<bytes> up(n), down(n);
  for (int i = 0; i < n; ++i) {
    up[i] = pattern(std::uniform_int_distribution<std::size_t>(0, 60000)(rng), static_cast<std::uint8_t>(i));
    down[i] = pattern(std::uniform_int_distribution<std::size_t>(0, 60000)(rng),
                      static_cast<std::uint8_t>(100 + i));
    want_at_server[ids[i].second] = up[i];
    want_at_client[ids[i].first] = down[i];
  }
  // Hand the data over in small interleaved pieces while the peers consume what arrives.
  std::vector<std::size_t> up_off(n, 0), down_off(n, 0);
  auto consume = [&](session& side, std::vector<event>& events, std::map<std::uint32_t, bytes>& into) {
    for (auto it = events.begin(); it != events.end();) {
      if (auto* d = std::get_if<ev::channel_data>(&*it)) {
        into[d->id].insert(into[d->id].end(), d->data.begin(), d->data.end());
        side.consumed(d->id, d->data.size());
        it = events.erase(it);
      } else {
        ++it;
      }
    }
  };
  for (int round = 0; round < 100000; ++round) {
    bool more = false;
    for (int i = 0; i < n; ++i) {
      const auto piece = std::uniform_int_distribution<std::size_t>(1, 3000)(rng);
      if (up_off[i] < up[i].size()) {
        const auto k = std::min(piece, up[i].size() - up_off[i]);
        h.client.send(ids[i].first, up[i].data() + up_off[i], k);
        up_off[i] += k;
      }
      if (down_off[i] < down[i].size()) {
        const auto k = std::min(piece, down[i].size() - down_off[i]);
        h.server.send(ids[i].second, down[i].data() + down_off[i], k);
        down_off[i] += k;
      }
      more |= up_off[i] < up[i].size() || down_off[i] < down[i].size();
    }
    h.pump();
    consume(h.server, h.server_events, got_at_server);
    consume(h.client, h.client_events, got_at_client);
    bool all = !more;
    for (int i = 0; i < n && all; ++i)
      all = got_at_server[ids[i].second].size() == up[i].size() &&
            got_at_client[ids[i].first].size() == down[i].size();
    if (all) break;
  }
  for (int i = 0; i < n; ++i) {
    INFO("channel " << i);
    CHECK(got_at_server[ids[i].second] == up[i]);
    CHECK(got_at_client[ids[i].first] == down[i]);
  }
  CHECK_FALSE(h.client.closed());
  CHECK_FALSE(h.server.closed());
}

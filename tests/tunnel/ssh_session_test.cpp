// The sans-I/O SSH session against itself: key exchanges (none, V1's static none, ECDH with each cipher),
// authentication, channels with flow control, requests, re-keying and hostile input.
#include <catch2/catch.hpp>

#include "ssh_harness.hpp"
#include "tunnel/ssh/session.hpp"

using namespace sb::tunnel::ssh;
using namespace ssh_test;

TEST_CASE("a V2 peer that lists none first gets the none key exchange and no authentication") {
  auto c = client_cfg();
  c.kex = {"none", "ecdh-sha2-nistp384"};
  auto s = server_cfg();
  s.kex = {"none", "ecdh-sha2-nistp384", "ecdh-sha2-nistp256"};
  pair_harness h(c, s);
  CHECK(h.client.ready());
  CHECK(h.server.ready());
  CHECK(h.client.negotiated_kex() == "none");
  CHECK(h.client.session_id().empty());
}

TEST_CASE("V1's static none session needs no host key and goes straight to channels") {
  auto c = client_cfg();
  c.static_none = true;
  session_config s;
  s.role = role::server;
  s.static_none = true;
  pair_harness h(c, s);
  REQUIRE(h.client.ready());
  REQUIRE(h.server.ready());
  auto [cid, sid] = open_pair(h, "client-ssh-session-stream");
  CHECK(transfer(h, h.server, sid, h.client, h.client_events, pattern(1000)) == pattern(1000));
}

TEST_CASE("ECDH key exchange with each cipher and MAC reaches ready and moves data intact") {
  const std::vector<std::pair<std::string, std::string>> suites = {
      {"aes256-gcm@openssh.com", "hmac-sha2-256"},
      {"aes256-ctr", "hmac-sha2-256"},
      {"aes256-ctr", "hmac-sha2-512"},
      {"aes256-ctr", "hmac-sha2-256-etm@openssh.com"},
      {"aes256-ctr", "hmac-sha2-512-etm@openssh.com"}};
  for (const auto& kex : {"ecdh-sha2-nistp384", "ecdh-sha2-nistp256"}) {
    for (const auto& [cipher, mac] : suites) {
      INFO(kex << " " << cipher << " " << mac);
      auto c = client_cfg();
      c.kex = {kex};
      c.ciphers = {cipher};
      c.macs = {mac};
      auto s = server_cfg();
      pair_harness h(c, s);
      REQUIRE(h.client.ready());
      REQUIRE(h.server.ready());
      CHECK(h.client.session_id() == h.server.session_id());
      CHECK(h.client.negotiated_kex() == kex);
      auto [cid, sid] = open_pair(h);
      const auto data = pattern(200000);
      CHECK(transfer(h, h.client, cid, h.server, h.server_events, data) == data);
    }
  }
}

TEST_CASE("the client refuses a host key its check rejects") {
  auto c = client_cfg();
  c.accept_host_key = [](const bytes&) { return false; };
  pair_harness h(c, server_cfg());
  CHECK_FALSE(h.client.ready());
  CHECK(h.client.closed());
  auto d = pair_harness::of<ev::disconnected>(h.client_events);
  REQUIRE(d.size() == 1);
  CHECK(d[0].reason == disconnect_reason::host_key_not_verifiable);
}

TEST_CASE("the client accepts exactly the published host key") {
  auto s = server_cfg();
  const auto published = s.host_key->public_blob();
  auto c = client_cfg();
  c.accept_host_key = [published](const bytes& k) { return k == published; };
  pair_harness h(c, s);
  CHECK(h.client.ready());
}

TEST_CASE("a server that refuses none falls back to publickey with the client's key") {
  auto key = std::make_shared<ecdsa_key>(ecdsa_key::generate());
  auto c = client_cfg();
  c.client_key = key;
  auto s = server_cfg();
  const auto allowed = key->public_blob();
  s.accept_auth = [allowed](const std::string& user, const std::string& method, const bytes& blob) {
    return user == "tunnel" && method == "publickey" && blob == allowed;
  };
  pair_harness h(c, s);
  CHECK(h.client.ready());
  CHECK(h.server.ready());

  auto other = client_cfg();
  other.client_key = std::make_shared<ecdsa_key>(ecdsa_key::generate());
  pair_harness refused(other, s);
  CHECK_FALSE(refused.client.ready());
  CHECK(refused.client.closed());
}

TEST_CASE("channel data beyond the peer's window waits until the window is granted again") {
  auto c = client_cfg();
  c.window = 64 * 1024;
  auto s = server_cfg();
  s.window = 64 * 1024;
  pair_harness h(c, s);
  auto [cid, sid] = open_pair(h);
  const auto data = pattern(300000);
  CHECK(h.client.send(cid, data) > 0);  // most of it cannot go yet
  h.pump();
  std::size_t received = 0;
  for (const auto& d : pair_harness::of<ev::channel_data>(h.server_events)) received += d.data.size();
  CHECK(received == 64 * 1024);  // exactly one window, nothing more until consumed
  h.server_events.clear();
  h.server.consumed(sid, received);
  auto rest = receive_all(h, h.server, h.server_events, data.size() - received);
  CHECK(received + rest.size() == data.size());
  CHECK(!pair_harness::of<ev::channel_writable>(h.client_events).empty());
}

TEST_CASE("open requests and confirmations carry extra fields both ways") {
  pair_harness h(client_cfg(), server_cfg());
  const auto cid = h.client.open_channel("forwarded-tcpip",
                                         writer().string(std::string_view("127.0.0.1")).u32(8080).take());
  h.pump();
  auto opens = pair_harness::of<ev::channel_open>(h.server_events);
  REQUIRE(opens.size() == 1);
  CHECK(opens[0].type == "forwarded-tcpip");
  reader r(opens[0].data);
  CHECK(r.string() == "127.0.0.1");
  CHECK(r.u32() == 8080);
  h.server.accept_channel(opens[0].id, writer().boolean(true).take());
  h.pump();
  auto confirmed = pair_harness::of<ev::channel_confirmed>(h.client_events);
  REQUIRE(confirmed.size() == 1);
  CHECK(confirmed[0].id == cid);
  CHECK(confirmed[0].data == bytes{1});
}

TEST_CASE("a rejected channel open reports the reason") {
  pair_harness h(client_cfg(), server_cfg());
  const auto cid = h.client.open_channel("x11");
  h.pump();
  auto opens = pair_harness::of<ev::channel_open>(h.server_events);
  REQUIRE(opens.size() == 1);
  h.server.reject_channel(opens[0].id, open_failure::unknown_channel_type, "no x11");
  h.pump();
  auto failed = pair_harness::of<ev::channel_failed>(h.client_events);
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].id == cid);
  CHECK(failed[0].reason == open_failure::unknown_channel_type);
}

TEST_CASE("eof and close travel after the queued data") {
  pair_harness h(client_cfg(), server_cfg());
  auto [cid, sid] = open_pair(h);
  h.client.send(cid, pattern(10));
  h.client.send_eof(cid);
  h.client.close_channel(cid);
  h.pump();
  std::vector<int> order;
  for (const auto& e : h.server_events) {
    if (std::holds_alternative<ev::channel_data>(e)) order.push_back(1);
    if (std::holds_alternative<ev::channel_eof>(e)) order.push_back(2);
    if (std::holds_alternative<ev::channel_closed>(e)) order.push_back(3);
  }
  CHECK(order == std::vector<int>{1, 2, 3});
  CHECK(pair_harness::of<ev::channel_closed>(h.client_events).size() == 1);
  CHECK_FALSE(h.client.channel_open(cid));
}

TEST_CASE("global requests and replies arrive with their payloads") {
  pair_harness h(client_cfg(), server_cfg());
  h.client.global_request("tcpip-forward", true,
                          writer().string(std::string_view("127.0.0.1")).u32(0).take());
  h.pump();
  auto reqs = pair_harness::of<ev::global_request>(h.server_events);
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].name == "tcpip-forward");
  CHECK(reqs[0].want_reply);
  h.server.global_reply(true, writer().u32(4242).take());
  h.pump();
  auto replies = pair_harness::of<ev::global_reply>(h.client_events);
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].success);
  CHECK(reader(replies[0].data).u32() == 4242);
}

TEST_CASE("a re-key in the middle of a transfer keeps the stream intact") {
  pair_harness h(client_cfg(), server_cfg());
  auto [cid, sid] = open_pair(h);
  const auto before = h.client.session_id();
  h.client.send(cid, pattern(50000));
  h.client.rekey();
  h.client.send(cid, pattern(50000));
  auto got = receive_all(h, h.server, h.server_events, 100000);
  bytes expected = pattern(50000);
  auto second = pattern(50000);
  expected.insert(expected.end(), second.begin(), second.end());
  CHECK(got == expected);
  CHECK(h.client.session_id() == before);
  CHECK(h.client.ready());
  CHECK(h.server.ready());
}

TEST_CASE("garbage, a wrong version and a corrupted packet end the session with an error, not a crash") {
  {
    session s(server_cfg());
    s.start();
    s.receive(to_bytes("SSH-1.5-old\r\n"));
    CHECK(s.closed());
  }
  {
    session s(server_cfg());
    s.start();
    s.receive(bytes(9000, 'x'));
    CHECK(s.closed());
  }
  {
    pair_harness h(client_cfg(), server_cfg());
    auto [cid, sid] = open_pair(h);
    h.client.send(cid, pattern(100));
    auto wire = h.client.take_output();
    REQUIRE(wire.size() > 20);
    wire[wire.size() / 2] ^= 0x40;
    h.server.receive(wire);
    CHECK(h.server.closed());
    auto d = h.server.poll();
    while (d && !std::holds_alternative<ev::disconnected>(*d)) d = h.server.poll();
    REQUIRE(d);
  }
  {
    session s(server_cfg());
    s.start();
    bytes evil = to_bytes("SSH-2.0-x\r\n");
    const std::uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    evil.insert(evil.end(), huge, huge + 8);
    s.receive(evil);
    CHECK(s.closed());
  }
}

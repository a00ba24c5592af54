// Dev Tunnels relay messages (devtunnels-protocol.md §3), byte for byte against hand-built layouts: the
// tcpip-forward payload with and without the V2 access token, the port-forward success reply, forwarded-tcpip
// open data in the standard and the V2-extended form, the E2E open confirmation, and hostile inputs.
#include "tunnel/relay_messages.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <initializer_list>
#include <string>

using namespace sb::tunnel;
using sb::tunnel::ssh::bytes;

namespace {

// Hand-made wire pieces, deliberately not using ssh::writer.
bytes u32be(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
          static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}
bytes str(const std::string& s) {
  bytes out(4 + s.size());
  const auto len = u32be(static_cast<std::uint32_t>(s.size()));
  std::copy(len.begin(), len.end(), out.begin());
  std::copy(s.begin(), s.end(), out.begin() + 4);
  return out;
}
bytes cat(std::initializer_list<bytes> parts) {
  bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

const std::string token = "eyJhbGciOiJFUzI1NiJ9.eyJzY3AiOiJob3N0In0.c2ln";

}  // namespace

TEST_CASE("a plain tcpip-forward payload is the address string followed by the port") {
  port_forward_request r;
  r.address = "127.0.0.1";
  r.port = 8080;
  const bytes expected = {0, 0, 0, 9, '1', '2', '7', '.', '0', '.', '0', '.', '1', 0x00, 0x00, 0x1f, 0x90};
  CHECK(encode(r) == expected);
  auto back = decode_port_forward_request(expected);
  REQUIRE(back);
  CHECK(back->address == "127.0.0.1");
  CHECK(back->port == 8080);
  CHECK_FALSE(back->access_token.has_value());
}

TEST_CASE("a V2 tcpip-forward payload appends the access token as a string") {
  port_forward_request r;
  r.address = "127.0.0.2";
  r.port = 65535;
  r.access_token = token;
  const bytes expected = cat({str("127.0.0.2"), {0x00, 0x00, 0xff, 0xff}, str(token)});
  CHECK(encode(r) == expected);
  auto back = decode_port_forward_request(expected);
  REQUIRE(back);
  CHECK(back->address == "127.0.0.2");
  CHECK(back->port == 65535);
  REQUIRE(back->access_token.has_value());
  CHECK(*back->access_token == token);
}

TEST_CASE("an empty access token is still encoded, as a zero-length string") {
  port_forward_request r;
  r.port = 1;
  r.access_token = "";
  CHECK(encode(r) == cat({str("127.0.0.1"), u32be(1), u32be(0)}));
  auto back = decode_port_forward_request(encode(r));
  REQUIRE(back);
  REQUIRE(back->access_token.has_value());
  CHECK(back->access_token->empty());
}

TEST_CASE("decoding a tcpip-forward payload tolerates a missing access token") {
  auto back = decode_port_forward_request(cat({str("localhost"), u32be(443)}));
  REQUIRE(back);
  CHECK(back->address == "localhost");
  CHECK(back->port == 443);
  CHECK_FALSE(back->access_token);
}

TEST_CASE("malformed tcpip-forward payloads are rejected, never misread") {
  const bytes good = cat({str("127.0.0.1"), u32be(80), str(token)});
  SECTION("every truncation of a payload with a token is rejected") {
    // A cut inside the token or the port is malformed; a cut exactly after the port is the tokenless form.
    const std::size_t tokenless = str("127.0.0.1").size() + 4;
    for (std::size_t n = 0; n < good.size(); ++n) {
      INFO("length " << n);
      const bytes cut(good.begin(), good.begin() + static_cast<long>(n));
      if (n == tokenless)
        CHECK(decode_port_forward_request(cut).has_value());
      else
        CHECK_FALSE(decode_port_forward_request(cut).has_value());
    }
  }
  SECTION("a string length beyond the data is rejected") {
    CHECK_FALSE(decode_port_forward_request(cat({u32be(1000), {'a', 'b'}})));
    CHECK_FALSE(decode_port_forward_request(cat({u32be(0xffffffffu), u32be(80)})));
    CHECK_FALSE(decode_port_forward_request(cat({str("127.0.0.1"), u32be(80), u32be(0x7fffffff), {'x'}})));
  }
  SECTION("a port above 65535 is rejected") {
    CHECK(decode_port_forward_request(cat({str("127.0.0.1"), u32be(65535)})));
    CHECK_FALSE(decode_port_forward_request(cat({str("127.0.0.1"), u32be(65536)})));
    CHECK_FALSE(decode_port_forward_request(cat({str("127.0.0.1"), u32be(0xffffffffu), str(token)})));
  }
  SECTION("trailing bytes that are not a whole token string are rejected") {
    CHECK_FALSE(decode_port_forward_request(cat({str("127.0.0.1"), u32be(80), {0x00}})));
    CHECK_FALSE(decode_port_forward_request(cat({str("127.0.0.1"), u32be(80), {0x00, 0x00, 0x00}})));
    CHECK_FALSE(
        decode_port_forward_request(cat({str("127.0.0.1"), u32be(80), {0x00, 0x00, 0x00, 0x05, 'a'}})));
  }
  SECTION("an empty payload is rejected") { CHECK_FALSE(decode_port_forward_request(bytes{})); }
}

TEST_CASE("the port-forward success reply carries the port as a uint32") {
  CHECK(encode_port_success(8080) == bytes{0x00, 0x00, 0x1f, 0x90});
  CHECK(encode_port_success(0) == bytes{0, 0, 0, 0});
  auto port = decode_port_success(bytes{0x00, 0x00, 0xab, 0xcd});
  REQUIRE(port);
  CHECK(*port == 0xabcd);
}

TEST_CASE("a port-forward success reply without the port decodes as absent, and a short one as absent too") {
  CHECK_FALSE(decode_port_success(bytes{}).has_value());
  CHECK_FALSE(decode_port_success(bytes{0x00}).has_value());
  CHECK_FALSE(decode_port_success(bytes{0x00, 0x00, 0x1f}).has_value());
}

TEST_CASE("standard forwarded-tcpip open data is host, port, originator address and originator port") {
  forwarded_channel_open o;
  o.host = "localhost";
  o.port = 3000;
  o.originator_ip = "10.1.2.3";
  o.originator_port = 51234;
  const bytes expected =
      cat({str("localhost"), {0x00, 0x00, 0x0b, 0xb8}, str("10.1.2.3"), {0x00, 0x00, 0xc8, 0x22}});
  CHECK(encode(o) == expected);
  auto back = decode_forwarded_channel_open(expected);
  REQUIRE(back);
  CHECK(back->host == "localhost");
  CHECK(back->port == 3000);
  CHECK(back->originator_ip == "10.1.2.3");
  CHECK(back->originator_port == 51234);
  CHECK_FALSE(back->extended);
  CHECK(back->access_token.empty());
  CHECK_FALSE(back->e2e_requested);
}

TEST_CASE("extended forwarded-tcpip open data appends the access token and the E2E request flag") {
  forwarded_channel_open o;
  o.host = "127.0.0.1";
  o.port = 8080;
  o.originator_ip = "127.0.0.1";
  o.originator_port = 40000;
  o.extended = true;
  o.access_token = token;
  SECTION("with E2E requested") {
    o.e2e_requested = true;
    const bytes expected =
        cat({str("127.0.0.1"), u32be(8080), str("127.0.0.1"), {0x00, 0x00, 0x9c, 0x40}, str(token), {0x01}});
    CHECK(encode(o) == expected);
    auto back = decode_forwarded_channel_open(expected);
    REQUIRE(back);
    CHECK(back->extended);
    CHECK(back->access_token == token);
    CHECK(back->e2e_requested);
    CHECK(back->port == 8080);
    CHECK(back->originator_port == 40000);
  }
  SECTION("without E2E and with an empty token (the SDK allows \"\")") {
    o.e2e_requested = false;
    o.access_token = "";
    const bytes expected =
        cat({str("127.0.0.1"), u32be(8080), str("127.0.0.1"), u32be(40000), u32be(0), {0x00}});
    CHECK(encode(o) == expected);
    auto back = decode_forwarded_channel_open(expected);
    REQUIRE(back);
    CHECK(back->extended);
    CHECK(back->access_token.empty());
    CHECK_FALSE(back->e2e_requested);
  }
  SECTION("any non-zero boolean byte means true (RFC 4251 §5)") {
    auto back = decode_forwarded_channel_open(
        cat({str("127.0.0.1"), u32be(8080), str("127.0.0.1"), u32be(40000), str(token), {0x7f}}));
    REQUIRE(back);
    CHECK(back->e2e_requested);
  }
}

TEST_CASE("malformed forwarded-tcpip open data is rejected, never misread") {
  const bytes extended =
      cat({str("127.0.0.1"), u32be(8080), str("127.0.0.1"), u32be(40000), str(token), {0x01}});
  SECTION("every truncation inside a field is rejected") {
    const std::size_t standard_end = str("127.0.0.1").size() * 2 + 8;
    const std::size_t token_end = standard_end + str(token).size();
    for (std::size_t n = 0; n < extended.size(); ++n) {
      INFO("length " << n);
      const bytes cut(extended.begin(), extended.begin() + static_cast<long>(n));
      auto decoded = decode_forwarded_channel_open(cut);
      if (n == standard_end) {
        REQUIRE(decoded);
        CHECK_FALSE(decoded->extended);
      } else if (n == token_end) {
        // The E2E flag missing: tolerated as "not requested".
        REQUIRE(decoded);
        CHECK(decoded->extended);
        CHECK_FALSE(decoded->e2e_requested);
      } else {
        CHECK_FALSE(decoded.has_value());
      }
    }
  }
  SECTION("a port above 65535 is rejected") {
    CHECK_FALSE(
        decode_forwarded_channel_open(cat({str("127.0.0.1"), u32be(65536), str("127.0.0.1"), u32be(1)})));
    CHECK_FALSE(decode_forwarded_channel_open(
        cat({str("127.0.0.1"), u32be(0x80000000u), str("127.0.0.1"), u32be(1), str(token), {0x01}})));
  }
  SECTION("string lengths beyond the data are rejected") {
    CHECK_FALSE(decode_forwarded_channel_open(cat({u32be(0xfffffff0u), u32be(8080)})));
    CHECK_FALSE(decode_forwarded_channel_open(cat({str("127.0.0.1"), u32be(8080), u32be(20), {'1', '2'}})));
    CHECK_FALSE(decode_forwarded_channel_open(
        cat({str("127.0.0.1"), u32be(8080), str("127.0.0.1"), u32be(1), u32be(0x00100000u), {'a'}})));
  }
  SECTION("trailing bytes after the standard fields that are not a token string are rejected") {
    const bytes standard = cat({str("127.0.0.1"), u32be(8080), str("127.0.0.1"), u32be(40000)});
    for (const bytes& tail :
         {bytes{0x00}, bytes{0x00, 0x00}, bytes{0x00, 0x00, 0x00}, bytes{0x00, 0x00, 0x00, 0x09, 'a'}}) {
      CAPTURE(tail.size());
      CHECK_FALSE(decode_forwarded_channel_open(cat({standard, tail})));
    }
  }
  SECTION("an empty payload is rejected") { CHECK_FALSE(decode_forwarded_channel_open(bytes{})); }
}

TEST_CASE("the V2 open confirmation appends a single E2E boolean") {
  CHECK(encode_open_confirmation(true) == bytes{0x01});
  CHECK(encode_open_confirmation(false) == bytes{0x00});
  CHECK(decode_open_confirmation(bytes{0x01}));
  CHECK_FALSE(decode_open_confirmation(bytes{0x00}));
  // A V1 or standard confirmation has no extra field: E2E is off.
  CHECK_FALSE(decode_open_confirmation(bytes{}));
}

TEST_CASE("random bytes never crash the relay message decoders") {
  std::uint32_t state = 12345;
  auto next = [&] {
    state = state * 1103515245u + 12345u;
    return static_cast<std::uint8_t>(state >> 16);
  };
  std::size_t accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    bytes b(next() % 48);
    for (auto& x : b) x = next();
    if (round % 2 == 0) {
      // Half the inputs look almost right: a short address string and a small port, then a random tail
      // (empty every other time), so that decoding gets past the first fields.
      const std::size_t len = next() % 8;
      const std::size_t tail = round % 4 == 0 ? 0 : next() % 16;
      b.assign(4 + len + 4 + tail, 0);
      for (auto& x : b) x = next();
      b[0] = b[1] = b[2] = 0;
      b[3] = static_cast<std::uint8_t>(len);
      b[4 + len] = b[5 + len] = 0;
    }
    auto a = decode_port_forward_request(b);
    auto f = decode_forwarded_channel_open(b);
    if (a) {
      ++accepted;
      CHECK(a->port <= 65535);
    }
    if (f) CHECK(f->port <= 65535);
    (void)decode_port_success(b);
    (void)decode_open_confirmation(b);
  }
  CHECK(accepted > 0);
}

TEST_CASE("a global request reads as a port change only when it is tcpip-forward or its cancel") {
  const auto payload = encode(port_forward_request{"127.0.0.1", 8080, {}});
  auto added = read_port_forward(tcpip_forward, payload);
  REQUIRE(added);
  CHECK(added->add);
  REQUIRE(added->request);
  CHECK(added->request->port == 8080);
  auto removed = read_port_forward(cancel_tcpip_forward, payload);
  REQUIRE(removed);
  CHECK_FALSE(removed->add);
  CHECK_FALSE(read_port_forward("keepalive@openssh.com", payload));
  // Port 0 and a malformed payload are port changes to refuse.
  auto zero = read_port_forward(tcpip_forward, encode(port_forward_request{"127.0.0.1", 0, {}}));
  REQUIRE(zero);
  CHECK_FALSE(zero->request);
  auto junk = read_port_forward(tcpip_forward, bytes{1, 2, 3});
  REQUIRE(junk);
  CHECK_FALSE(junk->request);
}

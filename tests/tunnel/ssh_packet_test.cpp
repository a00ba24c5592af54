// The SSH binary packet protocol (RFC 4253 §6, RFC 5647, OpenSSH's PROTOCOL for -etm and aes-gcm): sealer ->
// opener round trips for every cipher and MAC, the framing rules checked by an independent decoder built
// from the primitives, integrity (any flipped bit is an error), length limits and the exact `none` framing.
#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "tunnel/ssh/packet.hpp"

using namespace sb::tunnel::ssh;

namespace {

struct suite {
  std::string cipher, mac;
};

const std::vector<suite>& all_suites() {
  static const std::vector<suite> s = {
      {"none", "none"},
      {"aes256-ctr", "hmac-sha2-256"},
      {"aes256-ctr", "hmac-sha2-512"},
      {"aes256-ctr", "hmac-sha2-256-etm@openssh.com"},
      {"aes256-ctr", "hmac-sha2-512-etm@openssh.com"},
      {"aes256-gcm@openssh.com", "none"},
  };
  return s;
}

cipher_keys keys_for(const suite& s) {
  cipher_keys k;
  k.cipher = s.cipher;
  k.mac = s.mac;
  k.iv = random_bytes(cipher_iv_size(s.cipher));
  k.key = random_bytes(cipher_key_size(s.cipher));
  k.mac_key = random_bytes(mac_key_size(s.mac));
  return k;
}

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}

bytes be32_bytes(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
          static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}

bytes random_payload(std::mt19937& rng, std::size_t n) {
  bytes b(n);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

bool is_etm(const std::string& mac) { return mac.find("-etm@openssh.com") != std::string::npos; }
hash_kind mac_hash(const std::string& mac) {
  return mac.rfind("hmac-sha2-512", 0) == 0 ? hash_kind::sha512 : hash_kind::sha256;
}

/// Decodes a stream of sealed packets on its own, from the primitives and the RFC text rather than
/// packet_opener, and checks every framing rule on the way: length alignment, padding bounds, MAC with the
/// sequence number, zero padding for `none`.
class independent_decoder {
 public:
  independent_decoder(const suite& s, const cipher_keys& k, std::uint32_t first_seq = 0)
      : s_(s), k_(k), seq_(first_seq) {
    if (s.cipher == "aes256-ctr")
      ctr_ = std::make_unique<aes_cipher>(aes_cipher::mode::ctr, true, k.key, k.iv);
    if (s.cipher == "aes256-gcm@openssh.com")
      gcm_ = std::make_unique<aes_cipher>(aes_cipher::mode::gcm, false, k.key, k.iv);
  }

  /// Decodes exactly one packet that fills `wire`; returns its payload.
  bytes decode(const bytes& wire) {
    const bool etm = ctr_ && is_etm(s_.mac);
    const std::size_t mac_len = gcm_ ? 16 : ctr_ ? digest_size(mac_hash(s_.mac)) : 0;
    REQUIRE(wire.size() >= 4 + mac_len);
    bytes plain;  // uint32 length || padlen || payload || padding
    std::uint32_t len = be32(wire.data());
    if (!ctr_ && !gcm_) {
      plain = wire;
      CHECK((4 + len) % 8 == 0);  // RFC 4253 §6: multiple of 8 (the cipher block size, or 8)
    } else if (gcm_) {
      CHECK(len % 16 == 0);  // RFC 5647 §7.2: the length is not encrypted and not part of the alignment
      bytes aad(wire.begin(), wire.begin() + 4);
      bytes body(wire.begin() + 4, wire.end());
      REQUIRE(gcm_->gcm_open(aad, body));
      plain = aad;
      plain.insert(plain.end(), body.begin(), body.end());
    } else if (etm) {
      CHECK(len % 16 == 0);  // OpenSSH PROTOCOL: ETM leaves the length in clear, aligns the rest
      REQUIRE(wire.size() == 4 + len + mac_len);
      bytes mac_input = be32_bytes(seq_);
      mac_input.insert(mac_input.end(), wire.begin(), wire.begin() + 4 + len);
      CHECK(hmac(mac_hash(s_.mac), k_.mac_key, mac_input) == bytes(wire.begin() + 4 + len, wire.end()));
      plain = wire;
      plain.resize(4 + len);
      ctr_->ctr_apply(plain.data() + 4, len);
    } else {
      plain.assign(wire.begin(), wire.end() - static_cast<long>(mac_len));
      ctr_->ctr_apply(plain.data(), plain.size());
      len = be32(plain.data());
      CHECK((4 + len) % 16 == 0);  // the whole packet is encrypted: aligned to the AES block
      bytes mac_input = be32_bytes(seq_);
      mac_input.insert(mac_input.end(), plain.begin(), plain.end());
      CHECK(hmac(mac_hash(s_.mac), k_.mac_key, mac_input) ==
            bytes(wire.end() - static_cast<long>(mac_len), wire.end()));
    }
    REQUIRE(plain.size() == 4 + len);
    REQUIRE(wire.size() == 4 + len + mac_len);
    const std::size_t pad = plain[4];
    const std::size_t block = (ctr_ || gcm_) ? 16 : 8;
    CHECK(pad >= 4);
    CHECK(pad < 4 + block);  // the least padding that aligns
    REQUIRE(pad + 1 <= len);
    if (!ctr_ && !gcm_)
      CHECK(std::all_of(plain.end() - static_cast<long>(pad), plain.end(),
                        [](std::uint8_t b) { return b == 0; }));
    ++seq_;
    return bytes(plain.begin() + 5, plain.end() - static_cast<long>(pad));
  }

  /// The on-wire size a sealed packet with a `payload`-byte payload must have: minimal padding (4..block+3)
  /// plus the MAC or tag.
  static std::size_t wire_size(const suite& s, std::size_t payload) {
    const bool clear_len = s.cipher == "aes256-gcm@openssh.com" || is_etm(s.mac);
    const std::size_t block = s.cipher == "none" ? 8 : 16;
    const std::size_t aligned = clear_len ? 1 + payload : 5 + payload;
    std::size_t pad = block - aligned % block;
    if (pad < 4) pad += block;
    const std::size_t mac = s.cipher == "aes256-gcm@openssh.com" ? 16
                            : s.cipher == "none"                 ? 0
                                                                 : digest_size(mac_hash(s.mac));
    return 4 + 1 + payload + pad + mac;
  }

 private:
  suite s_;
  cipher_keys k_;
  std::uint32_t seq_;
  std::unique_ptr<aes_cipher> ctr_, gcm_;
};

}  // namespace

TEST_CASE("every cipher and MAC survives a sealer to opener round trip fed in random small pieces") {
  std::mt19937 rng(20240601);
  for (const auto& s : all_suites()) {
    INFO(s.cipher << " " << s.mac);
    const auto keys = keys_for(s);
    packet_sealer sealer;
    packet_opener opener;
    sealer.set_keys(keys);
    opener.set_keys(keys);

    std::vector<bytes> sent;
    bytes stream;
    std::vector<std::size_t> sizes = {0, 1, 40000, 15, 16, 17};
    for (int i = 0; i < 40; ++i) sizes.push_back(std::uniform_int_distribution<std::size_t>(0, 40000)(rng));
    for (const auto n : sizes) {
      sent.push_back(random_payload(rng, n));
      const auto wire = sealer.seal(sent.back());
      CHECK(wire.size() == independent_decoder::wire_size(s, n));
      stream.insert(stream.end(), wire.begin(), wire.end());
      CHECK(sealer.sequence() == sent.size());
    }

    std::vector<bytes> received;
    std::size_t offset = 0;
    bool error = false;
    while (offset < stream.size() && !error) {
      const std::size_t n = std::min<std::size_t>(std::uniform_int_distribution<std::size_t>(1, 100)(rng),
                                                  stream.size() - offset);
      opener.feed(stream.data() + offset, n);
      offset += n;
      for (;;) {
        bytes payload;
        const auto st = opener.next(payload);
        if (st == packet_opener::status::need_more) break;
        if (st == packet_opener::status::error) {
          error = true;
          break;
        }
        received.push_back(std::move(payload));
        CHECK(opener.sequence() == received.size());
      }
    }
    CHECK_FALSE(error);
    REQUIRE(received.size() == sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
      INFO("packet " << i << " of " << sent[i].size() << " bytes");
      CHECK(received[i] == sent[i]);
    }
    CHECK(opener.take_buffered().empty());
  }
}

TEST_CASE(
    "sealed packets follow the RFC framing: padding of at least 4, aligned lengths, MAC over the sequence "
    "number") {
  std::mt19937 rng(7);
  for (const auto& s : all_suites()) {
    INFO(s.cipher << " " << s.mac);
    const auto keys = keys_for(s);
    packet_sealer sealer;
    sealer.set_keys(keys);
    independent_decoder decoder(s, keys);
    for (std::size_t n = 0; n < 70; ++n) {
      INFO("payload " << n);
      const auto payload = random_payload(rng, n);
      CHECK(decoder.decode(sealer.seal(payload)) == payload);
    }
    for (int i = 0; i < 20; ++i) {
      const auto payload = random_payload(rng, std::uniform_int_distribution<std::size_t>(0, 40000)(rng));
      CHECK(decoder.decode(sealer.seal(payload)) == payload);
    }
  }
}

TEST_CASE("sequence numbers keep counting across a key change, in the sealer and in the opener") {
  for (const auto& s : all_suites()) {
    if (s.cipher == "none") continue;
    INFO(s.cipher << " " << s.mac);
    packet_sealer sealer;
    packet_opener opener;
    bytes stream;
    for (int i = 0; i < 3; ++i) {
      const auto w = sealer.seal(bytes{20, static_cast<std::uint8_t>(i)});
      stream.insert(stream.end(), w.begin(), w.end());
    }
    CHECK(sealer.sequence() == 3);
    const auto keys = keys_for(s);
    sealer.set_keys(keys);
    CHECK(sealer.sequence() == 3);
    const auto encrypted = sealer.seal(to_bytes("after newkeys"));
    CHECK(sealer.sequence() == 4);
    // The MAC (or GCM nonce) of the first encrypted packet uses sequence number 3, not 0.
    independent_decoder decoder(s, keys, 3);
    CHECK(decoder.decode(encrypted) == to_bytes("after newkeys"));

    // The opener gets the clear packets and the first encrypted one in one read, as after NEWKEYS.
    stream.insert(stream.end(), encrypted.begin(), encrypted.end());
    opener.feed(stream.data(), stream.size());
    bytes payload;
    for (int i = 0; i < 3; ++i) {
      REQUIRE(opener.next(payload) == packet_opener::status::packet);
      CHECK(payload == bytes{20, static_cast<std::uint8_t>(i)});
    }
    CHECK(opener.sequence() == 3);
    opener.set_keys(keys);
    REQUIRE(opener.next(payload) == packet_opener::status::packet);
    CHECK(payload == to_bytes("after newkeys"));
    CHECK(opener.sequence() == 4);
  }
}

TEST_CASE("a packet sealed for one sequence number does not open at another") {
  for (const auto& s : all_suites()) {
    if (s.cipher == "none") continue;
    INFO(s.cipher << " " << s.mac);
    const auto keys = keys_for(s);
    packet_sealer sealer;
    sealer.set_keys(keys);
    const auto first = sealer.seal(to_bytes("first"));
    const auto second = sealer.seal(to_bytes("second"));
    packet_opener opener;
    opener.set_keys(keys);
    opener.feed(second.data(), second.size());  // the first one was dropped
    bytes payload;
    CHECK(opener.next(payload) == packet_opener::status::error);
  }
}

TEST_CASE("a flipped bit anywhere in an encrypted packet is an error, never a packet") {
  std::mt19937 rng(99);
  for (const auto& s : all_suites()) {
    if (s.cipher == "none") continue;  // no integrity to check
    INFO(s.cipher << " " << s.mac);
    const auto keys = keys_for(s);
    const auto first_payload = random_payload(rng, 33);
    const auto target_payload = random_payload(rng, 100);
    std::size_t target_size = 0;
    {
      packet_sealer probe;
      probe.set_keys(keys);
      probe.seal(first_payload);
      target_size = probe.seal(target_payload).size();
    }
    for (std::size_t bit = 0; bit < target_size * 8; ++bit) {
      INFO("byte " << bit / 8 << " bit " << bit % 8);
      packet_sealer sealer;
      packet_opener opener;
      sealer.set_keys(keys);
      opener.set_keys(keys);
      const auto first = sealer.seal(first_payload);
      auto target = sealer.seal(target_payload);
      REQUIRE(target.size() == target_size);
      target[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      opener.feed(first.data(), first.size());
      opener.feed(target.data(), target.size());
      bytes payload;
      REQUIRE(opener.next(payload) == packet_opener::status::packet);  // the intact packet before it
      auto st = opener.next(payload);
      if (st == packet_opener::status::need_more) {
        // A flipped length bit can announce a longer (still aligned) packet: the opener waits for it, and
        // must reject it once the bytes are there.
        while (st == packet_opener::status::need_more) {
          const auto filler = sealer.seal(random_payload(rng, 30000));
          opener.feed(filler.data(), filler.size());
          st = opener.next(payload);
        }
      }
      CHECK(st == packet_opener::status::error);
      if (st != packet_opener::status::error) break;  // one report per suite is enough
    }
  }
}

TEST_CASE("a length field beyond 256 KiB is an error before any data arrives") {
  SECTION("none: the largest aligned length is accepted, the next aligned one is not") {
    packet_opener ok;
    const bytes largest = {0x00, 0x03, 0xff, 0xfc, 4, 0, 0, 0};  // 262140, (4 + len) % 8 == 0
    ok.feed(largest.data(), largest.size());
    bytes payload;
    CHECK(ok.next(payload) == packet_opener::status::need_more);

    packet_opener too_long;
    const bytes over = {0x00, 0x04, 0x00, 0x04, 4, 0, 0, 0};  // 262148, aligned but over the limit
    too_long.feed(over.data(), over.size());
    CHECK(too_long.next(payload) == packet_opener::status::error);

    packet_opener huge;
    const bytes max = {0xff, 0xff, 0xff, 0xfc, 4, 0, 0, 0};
    huge.feed(max.data(), max.size());
    CHECK(huge.next(payload) == packet_opener::status::error);
  }
  SECTION("encrypted: the same limit applies to the length in clear and to the encrypted length") {
    for (const auto& s : all_suites()) {
      if (s.cipher == "none") continue;
      INFO(s.cipher << " " << s.mac);
      const bool clear_len = s.cipher == "aes256-gcm@openssh.com" || is_etm(s.mac);
      // Aligned lengths right at and just over the limit.
      const std::uint32_t at_limit = clear_len ? 262144 : 262140;
      const std::uint32_t over = clear_len ? 262160 : 262156;
      for (const auto len : {at_limit, over}) {
        const auto keys = keys_for(s);
        bytes first_block = be32_bytes(len);
        first_block.resize(16, 0);
        first_block[4] = 8;
        if (!clear_len)
          aes_cipher(aes_cipher::mode::ctr, true, keys.key, keys.iv).ctr_apply(first_block.data(), 16);
        packet_opener opener;
        opener.set_keys(keys);
        opener.feed(first_block.data(), first_block.size());
        bytes payload;
        CHECK(opener.next(payload) ==
              (len == over ? packet_opener::status::error : packet_opener::status::need_more));
      }
    }
  }
}

TEST_CASE("an opener rejects too little padding, a padding longer than the packet and a misaligned length") {
  auto open = [](const bytes& wire) {
    packet_opener opener;
    opener.feed(wire.data(), wire.size());
    bytes payload;
    return opener.next(payload);
  };
  // uint32 12, padlen, 11 bytes (payload + padding): only the padding length varies.
  auto packet = [](std::uint8_t pad) {
    bytes w = {0, 0, 0, 12, pad};
    w.resize(16, 0);
    w[5] = 94;
    return w;
  };
  CHECK(open(packet(4)) == packet_opener::status::packet);
  CHECK(open(packet(11)) == packet_opener::status::packet);  // empty payload
  CHECK(open(packet(3)) == packet_opener::status::error);
  CHECK(open(packet(12)) == packet_opener::status::error);
  CHECK(open(packet(255)) == packet_opener::status::error);
  CHECK(open(bytes{0, 0, 0, 13, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) == packet_opener::status::error);
  CHECK(open(bytes{0, 0, 0, 4, 4, 0, 0, 0}) == packet_opener::status::error);  // shorter than any packet
}

TEST_CASE(
    "the none framing is byte-exact: length, padding length, payload, zero padding to a multiple of 8") {
  packet_sealer sealer;
  // 4 + 1 + 4 = 9 bytes before padding: 7 bytes of padding make 16.
  CHECK(sealer.seal(bytes{0x5e, 0xde, 0xad, 0x01}) ==
        bytes{0x00, 0x00, 0x00, 0x0c, 0x07, 0x5e, 0xde, 0xad, 0x01, 0, 0, 0, 0, 0, 0, 0});
  // 4 + 1 + 3 = 8 is already aligned, but padding must be at least 4: a whole block of 8.
  CHECK(sealer.seal(bytes{0x02, 0x41, 0x42}) ==
        bytes{0x00, 0x00, 0x00, 0x0c, 0x08, 0x02, 0x41, 0x42, 0, 0, 0, 0, 0, 0, 0, 0});
  // An empty payload: 5 bytes, padding 3 is too little, so 11.
  CHECK(sealer.seal(bytes{}) == bytes{0x00, 0x00, 0x00, 0x0c, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  // 4 + 1 + 6 = 11: padding 5.
  CHECK(sealer.seal(bytes{1, 2, 3, 4, 5, 6}) ==
        bytes{0x00, 0x00, 0x00, 0x0c, 0x05, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0});
  CHECK(sealer.sequence() == 4);

  packet_opener opener;
  const bytes hand = {0x00, 0x00, 0x00, 0x0c, 0x07, 0x5e, 0xde, 0xad, 0x01, 0, 0, 0, 0, 0, 0, 0};
  opener.feed(hand.data(), hand.size());
  bytes payload;
  REQUIRE(opener.next(payload) == packet_opener::status::packet);
  CHECK(payload == bytes{0x5e, 0xde, 0xad, 0x01});
  CHECK(opener.sequence() == 1);
}

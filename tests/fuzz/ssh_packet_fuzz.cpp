// Fuzz target: the SSH binary packet layer (tunnel/ssh/packet.hpp), the first thing a relay or host parses
// from a peer. Input: byte 0 picks the algorithms (none; aes256-ctr + hmac-sha2-256; the -etm variant;
// aes256-gcm), byte 1 the size of the pieces the bytes arrive in, the rest is the byte stream.
// Two properties:
//   1. hostile bytes fed to a packet_opener give packets or a final error, never a crash or a hang;
//   2. the same bytes sealed as one payload by a packet_sealer with equal keys open to exactly that payload,
//      however the sealed bytes are cut up (this drives the decrypting paths with valid MACs).
#include <algorithm>
#include <cstdint>

#include "fuzz_input.hpp"
#include "tunnel/ssh/packet.hpp"

using namespace sb::tunnel::ssh;

namespace {

cipher_keys keys_for(std::uint8_t choice) {
  cipher_keys k;
  switch (choice % 4) {
    case 0:
      return k;  // none: the Dev Tunnels V1 and negotiated-none sessions
    case 1:
      k.cipher = "aes256-ctr";
      k.mac = "hmac-sha2-256";
      break;
    case 2:
      k.cipher = "aes256-ctr";
      k.mac = "hmac-sha2-512-etm@openssh.com";
      break;
    default:
      k.cipher = "aes256-gcm@openssh.com";
      break;
  }
  k.key = bytes(cipher_key_size(k.cipher), 0x11);
  k.iv = bytes(cipher_iv_size(k.cipher), 0x22);
  k.mac_key = bytes(mac_key_size(k.mac), 0x33);
  return k;
}

// Feeds `stream` in pieces of `piece` bytes, draining packets after each; returns the payloads seen.
std::vector<bytes> open_all(packet_opener& opener, const std::uint8_t* stream, std::size_t n,
                            std::size_t piece, bool& failed) {
  std::vector<bytes> out;
  failed = false;
  for (std::size_t at = 0; at < n && !failed; at += piece) {
    opener.feed(stream + at, std::min(piece, n - at));
    bytes payload;
    while (true) {
      const auto st = opener.next(payload);
      if (st == packet_opener::status::need_more) break;
      if (st == packet_opener::status::error) {
        failed = true;
        break;
      }
      sb_fuzz::require(payload.size() <= max_packet_length, "a payload fits the largest packet");
      out.push_back(payload);
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const auto keys = keys_for(data[0]);
  const std::size_t piece = 1 + data[1];
  const std::uint8_t* stream = data + 2;
  const std::size_t n = size - 2;

  {
    packet_opener hostile;
    hostile.set_keys(keys);
    bool failed = false;
    (void)open_all(hostile, stream, n, piece, failed);
    (void)hostile.take_buffered();
  }

  if (n <= max_packet_length - 64) {
    packet_sealer sealer;
    sealer.set_keys(keys);
    const bytes payload(stream, stream + n);
    const auto sealed = sealer.seal(payload);
    packet_opener opener;
    opener.set_keys(keys);
    bool failed = false;
    const auto got = open_all(opener, sealed.data(), sealed.size(), piece, failed);
    sb_fuzz::require(!failed, "a sealed packet opens");
    sb_fuzz::require(got.size() == 1 && got.front() == payload, "a sealed payload opens unchanged");
  }
  return 0;
}

#include "tunnel/ssh/packet.hpp"

#include <openssl/crypto.h>

namespace sb::tunnel::ssh {

namespace {

bool is_etm(const std::string& mac) {
  return mac.size() > 16 && mac.compare(mac.size() - 16, 16, "-etm@openssh.com") == 0;
}

hash_kind mac_hash(const std::string& mac) {
  return mac.rfind("hmac-sha2-512", 0) == 0 ? hash_kind::sha512 : hash_kind::sha256;
}

void put_u32(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}

std::uint32_t get_u32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}

bytes seq_prefixed(std::uint32_t seq, const std::uint8_t* data, std::size_t n) {
  bytes out(4 + n);
  put_u32(out.data(), seq);
  std::copy(data, data + n, out.begin() + 4);
  return out;
}

}  // namespace

std::size_t cipher_key_size(const std::string& cipher) { return cipher == "none" ? 0 : 32; }
std::size_t cipher_iv_size(const std::string& cipher) {
  if (cipher == "aes256-gcm@openssh.com") return 12;
  return cipher == "aes256-ctr" ? 16 : 0;
}
std::size_t mac_key_size(const std::string& mac) {
  if (mac == "none") return 0;
  return mac_hash(mac) == hash_kind::sha512 ? 64 : 32;
}
bool cipher_is_aead(const std::string& cipher) { return cipher == "aes256-gcm@openssh.com"; }

// One direction's algorithms; shared shape for sealing and opening.
struct direction {
  cipher_keys keys;
  std::unique_ptr<aes_cipher> aes;
  bool gcm = false, ctr = false, etm = false;
  std::size_t mac_len = 0;
  std::size_t block = 8;

  void configure(const cipher_keys& k, bool encrypt) {
    keys = k;
    gcm = k.cipher == "aes256-gcm@openssh.com";
    ctr = k.cipher == "aes256-ctr";
    aes.reset();
    if (gcm) aes = std::make_unique<aes_cipher>(aes_cipher::mode::gcm, encrypt, k.key, k.iv);
    if (ctr) aes = std::make_unique<aes_cipher>(aes_cipher::mode::ctr, encrypt, k.key, k.iv);
    block = (gcm || ctr) ? 16 : 8;
    etm = ctr && is_etm(k.mac);
    mac_len = gcm ? 16 : (ctr && k.mac != "none") ? digest_size(mac_hash(k.mac)) : 0;
  }
  bytes mac(std::uint32_t seq, const std::uint8_t* data, std::size_t n) const {
    return hmac(mac_hash(keys.mac), keys.mac_key, seq_prefixed(seq, data, n));
  }
  // GCM and ETM leave the length in clear, so only the rest must fill whole blocks.
  bool length_in_clear() const { return gcm || etm; }
};

struct packet_sealer::state : direction {};
struct packet_opener::state : direction {
  bool first_block_open = false;  // CTR: the first block is already decrypted in place
};

packet_sealer::packet_sealer() : st_(std::make_unique<state>()) { st_->configure({}, true); }
packet_sealer::~packet_sealer() = default;
void packet_sealer::set_keys(const cipher_keys& keys) { st_->configure(keys, true); }

bytes packet_sealer::seal(const bytes& payload) {
  auto& d = *st_;
  const std::size_t aligned = d.length_in_clear() ? 1 + payload.size() : 5 + payload.size();
  std::size_t pad = d.block - aligned % d.block;
  if (pad < 4) pad += d.block;
  const std::uint32_t packet_len = static_cast<std::uint32_t>(1 + payload.size() + pad);
  bytes pkt(4 + packet_len);
  put_u32(pkt.data(), packet_len);
  pkt[4] = static_cast<std::uint8_t>(pad);
  std::copy(payload.begin(), payload.end(), pkt.begin() + 5);
  auto padding = d.gcm || d.ctr ? random_bytes(pad) : bytes(pad, 0);
  std::copy(padding.begin(), padding.end(), pkt.begin() + 5 + static_cast<long>(payload.size()));

  if (d.gcm) {
    bytes aad(pkt.begin(), pkt.begin() + 4);
    bytes body(pkt.begin() + 4, pkt.end());
    d.aes->gcm_seal(aad, body);
    aad.insert(aad.end(), body.begin(), body.end());
    pkt = std::move(aad);
  } else if (d.etm) {
    d.aes->ctr_apply(pkt.data() + 4, packet_len);
    auto tag = d.mac(seq_, pkt.data(), pkt.size());
    pkt.insert(pkt.end(), tag.begin(), tag.end());
  } else if (d.ctr) {
    bytes tag = d.mac_len ? d.mac(seq_, pkt.data(), pkt.size()) : bytes{};
    d.aes->ctr_apply(pkt.data(), pkt.size());
    pkt.insert(pkt.end(), tag.begin(), tag.end());
  }
  ++seq_;
  return pkt;
}

packet_opener::packet_opener() : st_(std::make_unique<state>()) { st_->configure({}, false); }
packet_opener::~packet_opener() = default;
void packet_opener::set_keys(const cipher_keys& keys) {
  st_->configure(keys, false);
  st_->first_block_open = false;
}

void packet_opener::feed(const std::uint8_t* data, std::size_t n) { in_.insert(in_.end(), data, data + n); }

bytes packet_opener::take_buffered() { return std::move(in_); }

packet_opener::status packet_opener::next(bytes& payload) {
  auto& d = *st_;
  const std::size_t first = d.length_in_clear() ? 4 : d.block;
  if (in_.size() < first) return status::need_more;
  if (d.ctr && !d.etm && !d.first_block_open) {
    d.aes->ctr_apply(in_.data(), d.block);
    d.first_block_open = true;
  }
  const std::uint32_t packet_len = get_u32(in_.data());
  const std::size_t aligned = d.length_in_clear() ? packet_len : packet_len + 4;
  if (packet_len < 5 || packet_len > max_packet_length || aligned % d.block != 0) return status::error;
  const std::size_t total = 4 + packet_len + d.mac_len;
  if (in_.size() < total) return status::need_more;

  bytes body;
  if (d.gcm) {
    bytes aad(in_.begin(), in_.begin() + 4);
    body.assign(in_.begin() + 4, in_.begin() + static_cast<long>(total));
    if (!d.aes->gcm_open(aad, body)) return status::error;
  } else if (d.etm) {
    auto tag = d.mac(seq_, in_.data(), 4 + packet_len);
    if (CRYPTO_memcmp(tag.data(), in_.data() + 4 + packet_len, d.mac_len) != 0) return status::error;
    body.assign(in_.begin() + 4, in_.begin() + 4 + packet_len);
    d.aes->ctr_apply(body.data(), body.size());
  } else {
    if (d.ctr && packet_len + 4 > d.block) d.aes->ctr_apply(in_.data() + d.block, packet_len + 4 - d.block);
    if (d.mac_len) {
      auto tag = d.mac(seq_, in_.data(), 4 + packet_len);
      if (CRYPTO_memcmp(tag.data(), in_.data() + 4 + packet_len, d.mac_len) != 0) return status::error;
    }
    body.assign(in_.begin() + 4, in_.begin() + 4 + packet_len);
  }
  d.first_block_open = false;
  in_.erase(in_.begin(), in_.begin() + static_cast<long>(total));
  const std::size_t pad = body[0];
  if (pad < 4 || pad + 1 > body.size()) return status::error;
  payload.assign(body.begin() + 1, body.end() - static_cast<long>(pad));
  ++seq_;
  return status::packet;
}

}  // namespace sb::tunnel::ssh

#pragma once
// The SSH binary packet protocol (RFC 4253 §6) for one direction: framing, padding, encryption and MAC.
// Ciphers: none, aes256-ctr with hmac-sha2-256/512 (plain or -etm@openssh.com), aes256-gcm@openssh.com.
#include <memory>
#include <optional>
#include <string>

#include "tunnel/ssh/crypto.hpp"

namespace sb::tunnel::ssh {

/// Largest packet accepted from a peer (RFC 4253 asks for 35000 at least).
inline constexpr std::size_t max_packet_length = 256 * 1024;

struct cipher_keys {
  std::string cipher = "none";  // none, aes256-ctr, aes256-gcm@openssh.com
  std::string mac = "none";     // ignored for GCM
  bytes iv, key, mac_key;
};

/// Key and IV sizes an algorithm needs, for key derivation.
std::size_t cipher_key_size(const std::string& cipher);
std::size_t cipher_iv_size(const std::string& cipher);
std::size_t mac_key_size(const std::string& mac);
bool cipher_is_aead(const std::string& cipher);

class packet_sealer {
 public:
  packet_sealer();
  ~packet_sealer();
  void set_keys(const cipher_keys& keys);
  bytes seal(const bytes& payload);
  std::uint32_t sequence() const { return seq_; }

 private:
  struct state;
  std::unique_ptr<state> st_;
  std::uint32_t seq_ = 0;
};

class packet_opener {
 public:
  enum class status { need_more, packet, error };
  packet_opener();
  ~packet_opener();
  void set_keys(const cipher_keys& keys);
  void feed(const std::uint8_t* data, std::size_t n);
  /// The next payload, once enough bytes arrived. `error` is final (bad MAC, bad length).
  status next(bytes& payload);
  std::uint32_t sequence() const { return seq_; }
  /// Bytes received but not yet consumed as packets.
  bytes take_buffered();

 private:
  struct state;
  std::unique_ptr<state> st_;
  bytes in_;
  std::uint32_t seq_ = 0;
};

}  // namespace sb::tunnel::ssh

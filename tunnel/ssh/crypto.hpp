#pragma once
// The cryptography SSH needs, on OpenSSL 3: ECDH on nistp256/384, ECDSA nistp384 host keys, SHA-2 hashes,
// AES-256 (GCM and CTR) and HMAC-SHA2. Each failure is reported as a value; nothing here throws on peer
// input.
#include <memory>
#include <optional>
#include <string>

#include "tunnel/ssh/wire.hpp"

typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace sb::tunnel::ssh {

enum class hash_kind { sha256, sha384, sha512 };
bytes digest(hash_kind kind, const bytes& data);
std::size_t digest_size(hash_kind kind);
bytes hmac(hash_kind kind, const bytes& key, const bytes& data);
bytes random_bytes(std::size_t n);

struct pkey_deleter {
  void operator()(EVP_PKEY* k) const;
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;

/// An ephemeral ECDH key for ecdh-sha2-nistp256/384 (RFC 5656).
class ecdh_key {
 public:
  static std::optional<ecdh_key> generate(int curve_nid);
  /// A key from a known private scalar (big-endian), for known-answer tests; nullopt when the curve is not
  /// supported or the scalar is not in [1, order-1].
  static std::optional<ecdh_key> from_private(int curve_nid, const bytes& private_scalar);
  /// The public point Q in uncompressed form (0x04 || X || Y).
  const bytes& public_point() const { return point_; }
  /// The shared secret's magnitude, or nullopt when `peer_point` is not a valid point of the curve.
  std::optional<bytes> shared_secret(const bytes& peer_point) const;

 private:
  int nid_ = 0;
  pkey_ptr key_;
  bytes point_;
};

/// An ecdsa-sha2-nistp384 key: the Dev Tunnels host key and our SSH server key.
class ecdsa_key {
 public:
  static ecdsa_key generate();
  /// Reads a PEM private key (PKCS#8 or SEC1); nullopt when it is not an EC P-384 key.
  static std::optional<ecdsa_key> from_pem(const std::string& pem);
  std::string to_pem() const;

  /// The SSH public key blob: string "ecdsa-sha2-nistp384", string "nistp384", string Q.
  const bytes& public_blob() const { return blob_; }
  /// The SSH signature blob over `data`: string "ecdsa-sha2-nistp384", string (mpint r, mpint s).
  bytes sign(const bytes& data) const;
  /// OpenSSH's authorized_keys / known_hosts line: "ecdsa-sha2-nistp384 <base64> <comment>".
  std::string openssh_public_line(const std::string& comment = "switchboard") const;

 private:
  pkey_ptr key_;
  bytes blob_;
};

inline constexpr const char* ecdsa_p384_name = "ecdsa-sha2-nistp384";

/// Checks an SSH signature blob against a public key blob (ecdsa-sha2-nistp256/384 supported).
bool verify_signature(const bytes& public_blob, const bytes& data, const bytes& signature_blob);

std::string base64_encode(const bytes& data);
std::optional<bytes> base64_decode(std::string_view text);

/// AES-256 in CTR (stream) or GCM (AEAD, OpenSSH's framing) mode, one direction.
class aes_cipher {
 public:
  enum class mode { ctr, gcm };
  aes_cipher(mode m, bool encrypt, const bytes& key, const bytes& iv);
  ~aes_cipher();
  aes_cipher(const aes_cipher&) = delete;
  aes_cipher& operator=(const aes_cipher&) = delete;

  /// CTR: transforms in place, keeping the keystream position across calls.
  bool ctr_apply(std::uint8_t* data, std::size_t n);
  /// GCM: encrypts `data` in place with `aad` authenticated, appends the 16-byte tag; then advances the IV.
  bool gcm_seal(const bytes& aad, bytes& data);
  /// GCM: checks the trailing 16-byte tag of `data`, decrypts in place and drops the tag.
  bool gcm_open(const bytes& aad, bytes& data);

 private:
  mode mode_;
  bool encrypt_;
  bytes key_;
  bytes iv_;
  EVP_CIPHER_CTX* ctx_ = nullptr;
};

}  // namespace sb::tunnel::ssh

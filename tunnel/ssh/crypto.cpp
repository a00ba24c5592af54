#include "tunnel/ssh/crypto.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace sb::tunnel::ssh {

namespace {

const EVP_MD* md_of(hash_kind kind) {
  switch (kind) {
    case hash_kind::sha256:
      return EVP_sha256();
    case hash_kind::sha384:
      return EVP_sha384();
    case hash_kind::sha512:
      return EVP_sha512();
  }
  return EVP_sha256();
}

const char* curve_name(int nid) {
  switch (nid) {
    case NID_X9_62_prime256v1:
      return "P-256";
    case NID_secp384r1:
      return "P-384";
    default:
      return nullptr;
  }
}

bytes bn_bytes(const BIGNUM* bn) {
  bytes out(static_cast<std::size_t>(BN_num_bytes(bn)));
  BN_bn2bin(bn, out.data());
  return out;
}

pkey_ptr generate_ec(int nid) {
  EVP_PKEY* key = EVP_EC_gen(curve_name(nid));
  return pkey_ptr(key);
}

bytes encoded_point(EVP_PKEY* key) {
  std::size_t len = 0;
  EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, nullptr, 0, &len);
  bytes out(len);
  EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out.data(), out.size(), &len);
  out.resize(len);
  return out;
}

// A public-only EVP_PKEY from an uncompressed point; nullptr when the point is not on the curve.
pkey_ptr public_key_from_point(int nid, const bytes& point) {
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, OBJ_nid2sn(nid), 0);
  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size());
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* key = nullptr;
  if (ctx && EVP_PKEY_fromdata_init(ctx) == 1) EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  if (!key) return nullptr;
  // fromdata does not check the point: do it, or a hostile peer could send an invalid-curve point.
  EVP_PKEY_CTX* check = EVP_PKEY_CTX_new(key, nullptr);
  const bool valid = check && EVP_PKEY_public_check(check) == 1;
  EVP_PKEY_CTX_free(check);
  if (!valid) {
    EVP_PKEY_free(key);
    return nullptr;
  }
  return pkey_ptr(key);
}

bytes ssh_blob_for(const char* alg, const char* curve, const bytes& point) {
  writer w;
  w.string(std::string_view(alg)).string(std::string_view(curve)).string(point);
  return w.take();
}

}  // namespace

void pkey_deleter::operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }

bytes digest(hash_kind kind, const bytes& data) {
  bytes out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, md_of(kind), nullptr);
  out.resize(len);
  return out;
}

std::size_t digest_size(hash_kind kind) { return static_cast<std::size_t>(EVP_MD_get_size(md_of(kind))); }

bytes hmac(hash_kind kind, const bytes& key, const bytes& data) {
  bytes out(EVP_MAX_MD_SIZE);
  unsigned int len = 0;
  HMAC(md_of(kind), key.data(), static_cast<int>(key.size()), data.data(), data.size(), out.data(), &len);
  out.resize(len);
  return out;
}

bytes random_bytes(std::size_t n) {
  bytes out(n);
  if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) throw std::runtime_error("RAND_bytes failed");
  return out;
}

std::optional<ecdh_key> ecdh_key::generate(int curve_nid) {
  if (!curve_name(curve_nid)) return std::nullopt;
  ecdh_key k;
  k.nid_ = curve_nid;
  k.key_ = generate_ec(curve_nid);
  if (!k.key_) return std::nullopt;
  k.point_ = encoded_point(k.key_.get());
  return k;
}

std::optional<ecdh_key> ecdh_key::from_private(int curve_nid, const bytes& private_scalar) {
  if (!curve_name(curve_nid) || private_scalar.empty()) return std::nullopt;
  EC_GROUP* group = EC_GROUP_new_by_curve_name(curve_nid);
  BN_CTX* bn_ctx = BN_CTX_new();
  BIGNUM* priv = BN_bin2bn(private_scalar.data(), static_cast<int>(private_scalar.size()), nullptr);
  EC_POINT* pub = group ? EC_POINT_new(group) : nullptr;
  bytes point;
  const BIGNUM* order = group ? EC_GROUP_get0_order(group) : nullptr;
  if (group && bn_ctx && priv && pub && order && !BN_is_zero(priv) && BN_cmp(priv, order) < 0 &&
      EC_POINT_mul(group, pub, priv, nullptr, nullptr, bn_ctx) == 1) {
    const std::size_t len = EC_POINT_point2oct(group, pub, POINT_CONVERSION_UNCOMPRESSED, nullptr, 0, bn_ctx);
    point.resize(len);
    if (len == 0 ||
        EC_POINT_point2oct(group, pub, POINT_CONVERSION_UNCOMPRESSED, point.data(), len, bn_ctx) != len)
      point.clear();
  }
  EVP_PKEY* key = nullptr;
  if (!point.empty()) {
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM* params = nullptr;
    if (bld &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, OBJ_nid2sn(curve_nid), 0) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) == 1)
      params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX* ctx = params ? EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr) : nullptr;
    if (ctx && EVP_PKEY_fromdata_init(ctx) == 1) EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
  }
  EC_POINT_free(pub);
  BN_clear_free(priv);
  BN_CTX_free(bn_ctx);
  EC_GROUP_free(group);
  if (!key) return std::nullopt;
  ecdh_key k;
  k.nid_ = curve_nid;
  k.key_.reset(key);
  k.point_ = encoded_point(key);
  return k;
}

std::optional<bytes> ecdh_key::shared_secret(const bytes& peer_point) const {
  auto peer = public_key_from_point(nid_, peer_point);
  if (!peer) return std::nullopt;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key_.get(), nullptr);
  std::optional<bytes> out;
  std::size_t len = 0;
  if (ctx && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, peer.get()) == 1 &&
      EVP_PKEY_derive(ctx, nullptr, &len) == 1) {
    bytes secret(len);
    if (EVP_PKEY_derive(ctx, secret.data(), &len) == 1) {
      secret.resize(len);
      out = std::move(secret);
    }
  }
  EVP_PKEY_CTX_free(ctx);
  return out;
}

ecdsa_key ecdsa_key::generate() {
  ecdsa_key k;
  k.key_ = generate_ec(NID_secp384r1);
  if (!k.key_) throw std::runtime_error("cannot generate an ECDSA P-384 key");
  k.blob_ = ssh_blob_for(ecdsa_p384_name, "nistp384", encoded_point(k.key_.get()));
  return k;
}

std::optional<ecdsa_key> ecdsa_key::from_pem(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!key) return std::nullopt;
  char group[64] = {0};
  std::size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1 ||
      std::string(group) != "secp384r1") {
    EVP_PKEY_free(key);
    return std::nullopt;
  }
  ecdsa_key k;
  k.key_.reset(key);
  k.blob_ = ssh_blob_for(ecdsa_p384_name, "nistp384", encoded_point(key));
  return k;
}

std::string ecdsa_key::to_pem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key_.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(len));
  BIO_free(bio);
  return out;
}

bytes ecdsa_key::sign(const bytes& data) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::size_t len = 0;
  bytes der;
  if (EVP_DigestSignInit(ctx, nullptr, EVP_sha384(), nullptr, key_.get()) == 1 &&
      EVP_DigestSign(ctx, nullptr, &len, data.data(), data.size()) == 1) {
    der.resize(len);
    if (EVP_DigestSign(ctx, der.data(), &len, data.data(), data.size()) == 1) der.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  const unsigned char* p = der.data();
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  if (!sig) throw std::runtime_error("ECDSA signing failed");
  writer inner;
  inner.mpint(bn_bytes(ECDSA_SIG_get0_r(sig))).mpint(bn_bytes(ECDSA_SIG_get0_s(sig)));
  ECDSA_SIG_free(sig);
  writer out;
  out.string(std::string_view(ecdsa_p384_name)).string(inner.data());
  return out.take();
}

std::string ecdsa_key::openssh_public_line(const std::string& comment) const {
  return std::string(ecdsa_p384_name) + " " + base64_encode(blob_) + " " + comment;
}

bool verify_signature(const bytes& public_blob, const bytes& data, const bytes& signature_blob) {
  reader key(public_blob);
  const auto alg = key.string();
  const auto curve = key.string();
  const auto point = key.string_bytes();
  if (!key.ok()) return false;
  int nid = 0;
  const EVP_MD* md = nullptr;
  if (alg == "ecdsa-sha2-nistp384" && curve == "nistp384") {
    nid = NID_secp384r1;
    md = EVP_sha384();
  } else if (alg == "ecdsa-sha2-nistp256" && curve == "nistp256") {
    nid = NID_X9_62_prime256v1;
    md = EVP_sha256();
  } else {
    return false;
  }
  reader sig(signature_blob);
  if (sig.string() != alg) return false;
  const bytes inner = sig.string_bytes();
  reader rs(inner);
  auto r = rs.mpint();
  auto s = rs.mpint();
  if (!sig.ok() || !rs.ok()) return false;
  auto pub = public_key_from_point(nid, point);
  if (!pub) return false;
  ECDSA_SIG* esig = ECDSA_SIG_new();
  ECDSA_SIG_set0(esig, BN_bin2bn(r.data(), static_cast<int>(r.size()), nullptr),
                 BN_bin2bn(s.data(), static_cast<int>(s.size()), nullptr));
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(esig, &der);
  ECDSA_SIG_free(esig);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      der_len > 0 && EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, pub.get()) == 1 &&
      EVP_DigestVerify(ctx, der, static_cast<std::size_t>(der_len), data.data(), data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  return ok;
}

std::string base64_encode(const bytes& data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data.data(),
                                static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<bytes> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  bytes out(text.size() / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t len = static_cast<std::size_t>(n);
  if (!text.empty() && text.back() == '=') --len;
  if (text.size() > 1 && text[text.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

aes_cipher::aes_cipher(mode m, bool encrypt, const bytes& key, const bytes& iv)
    : mode_(m), encrypt_(encrypt), key_(key), iv_(iv), ctx_(EVP_CIPHER_CTX_new()) {
  if (mode_ == mode::ctr)
    EVP_CipherInit_ex(ctx_, EVP_aes_256_ctr(), nullptr, key_.data(), iv_.data(), encrypt ? 1 : 0);
}

aes_cipher::~aes_cipher() { EVP_CIPHER_CTX_free(ctx_); }

bool aes_cipher::ctr_apply(std::uint8_t* data, std::size_t n) {
  int out = 0;
  return EVP_CipherUpdate(ctx_, data, &out, data, static_cast<int>(n)) == 1 &&
         static_cast<std::size_t>(out) == n;
}

namespace {

// OpenSSH's aes-gcm increments the low 64 bits of the 12-byte IV after every packet (RFC 5647 §7.1).
void increment_invocation(bytes& iv) {
  for (int i = 11; i >= 4; --i)
    if (++iv[static_cast<std::size_t>(i)] != 0) break;
}

}  // namespace

bool aes_cipher::gcm_seal(const bytes& aad, bytes& data) {
  int out = 0;
  bool ok = EVP_EncryptInit_ex(ctx_, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_IVLEN, 12, nullptr) == 1 &&
            EVP_EncryptInit_ex(ctx_, nullptr, nullptr, key_.data(), iv_.data()) == 1 &&
            EVP_EncryptUpdate(ctx_, nullptr, &out, aad.data(), static_cast<int>(aad.size())) == 1 &&
            EVP_EncryptUpdate(ctx_, data.data(), &out, data.data(), static_cast<int>(data.size())) == 1 &&
            EVP_EncryptFinal_ex(ctx_, data.data() + out, &out) == 1;
  std::uint8_t tag[16];
  ok = ok && EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
  data.insert(data.end(), tag, tag + 16);
  increment_invocation(iv_);
  return ok;
}

bool aes_cipher::gcm_open(const bytes& aad, bytes& data) {
  if (data.size() < 16) return false;
  std::uint8_t tag[16];
  std::copy(data.end() - 16, data.end(), tag);
  data.resize(data.size() - 16);
  int out = 0;
  const bool ok =
      EVP_DecryptInit_ex(ctx_, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_IVLEN, 12, nullptr) == 1 &&
      EVP_DecryptInit_ex(ctx_, nullptr, nullptr, key_.data(), iv_.data()) == 1 &&
      EVP_DecryptUpdate(ctx_, nullptr, &out, aad.data(), static_cast<int>(aad.size())) == 1 &&
      EVP_DecryptUpdate(ctx_, data.data(), &out, data.data(), static_cast<int>(data.size())) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 &&
      EVP_DecryptFinal_ex(ctx_, data.data() + out, &out) == 1;
  increment_invocation(iv_);
  return ok;
}

}  // namespace sb::tunnel::ssh

// Known-answer tests for the SSH cryptography on OpenSSL 3: SHA-2 (FIPS 180-2), HMAC (RFC 4231), AES-256-GCM
// (McGrew-Viega test case 16), AES-256-CTR (SP 800-38A F.5.5), ECDH P-256/P-384 (RFC 5903), ECDSA host keys
// and signatures against OpenSSL used directly, base64, and RFC 4253 §7.2 key derivation checked by a
// hand-made client that derives its keys on its own and talks to our server session.
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <string>

#include "tunnel/ssh/crypto.hpp"
#include "tunnel/ssh/packet.hpp"
#include "tunnel/ssh/session.hpp"

using namespace sb::tunnel::ssh;

namespace {

bytes hex(const std::string& text) {
  bytes out;
  int hi = -1;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    const int v = std::isdigit(static_cast<unsigned char>(c))
                      ? c - '0'
                      : std::tolower(static_cast<unsigned char>(c)) - 'a' + 10;
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<std::uint8_t>(hi * 16 + v));
      hi = -1;
    }
  }
  return out;
}

bytes cat(std::initializer_list<bytes> parts) {
  bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

bytes u32be(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
          static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
}

// RFC 4251 §5 by hand, so the checks below do not lean on ssh::writer.
bytes ssh_string(const bytes& b) { return cat({u32be(static_cast<std::uint32_t>(b.size())), b}); }
bytes ssh_string(const std::string& s) { return ssh_string(to_bytes(s)); }
bytes ssh_mpint(bytes magnitude) {
  while (!magnitude.empty() && magnitude.front() == 0) magnitude.erase(magnitude.begin());
  if (!magnitude.empty() && (magnitude.front() & 0x80)) magnitude.insert(magnitude.begin(), 0);
  return ssh_string(magnitude);
}

// RFC 5903 §8.1 and §8.2.
struct ecdh_vector {
  int nid;
  const char *i, *gix, *giy, *r, *grx, *gry, *girx;
};
const ecdh_vector p256 = {
    NID_X9_62_prime256v1,
    "C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433",
    "DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF 945D0C37 72581180",
    "5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3",
    "C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53",
    "D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C 736FC755 4494BF63",
    "56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB",
    "D6840F6B 42F6EDAF D13116E0 E1256520 2FEF8E9E CE7DCE03 812464D0 4B9442DE",
};
const ecdh_vector p384 = {
    NID_secp384r1,
    "099F3C70 34D4A2C6 99884D73 A375A67F 7624EF7C 6B3C0F16 0647B674 14DCE655 E35B5380 41E649EE 3FAEF896 "
    "783AB194",
    "667842D7 D180AC2C DE6F74F3 7551F557 55C7645C 20EF73E3 1634FE72 B4C55EE6 DE3AC808 ACB4BDB4 C88732AE "
    "E95F41AA",
    "9482ED1F C0EEB9CA FC498462 5CCFC23F 65032149 E0E144AD A0241815 35A0F38E EB9FCFF3 C2C947DA E69B4C63 "
    "4573A81C",
    "41CB0779 B4BDB85D 47846725 FBEC3C94 30FAB46C C8DC5060 855CC9BD A0AA2942 E0308312 916B8ED2 960E4BD5 "
    "5A7448FC",
    "E558DBEF 53EECDE3 D3FCCFC1 AEA08A89 A987475D 12FD950D 83CFA417 32BC509D 0D1AC43A 0336DEF9 6FDA41D0 "
    "774A3571",
    "DCFBEC7A ACF31964 72169E83 8430367F 66EEBE3C 6E70C416 DD5F0C68 759DD1FF F83FA401 42209DFF 5EAAD96D "
    "B9E6386C",
    "11187331 C279962D 93D60424 3FD592CB 9D0A926F 422E4718 7521287E 7156C5C4 D6031355 69B9E9D0 9CF5D4A2 "
    "70F59746",
};

bytes uncompressed(const char* x, const char* y) { return cat({bytes{0x04}, hex(x), hex(y)}); }

// An ECDSA signature made by OpenSSL directly, as (r, s) magnitudes.
std::pair<bytes, bytes> openssl_sign(EVP_PKEY* key, const EVP_MD* md, const bytes& data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::size_t len = 0;
  bytes der;
  REQUIRE(EVP_DigestSignInit(ctx, nullptr, md, nullptr, key) == 1);
  REQUIRE(EVP_DigestSign(ctx, nullptr, &len, data.data(), data.size()) == 1);
  der.resize(len);
  REQUIRE(EVP_DigestSign(ctx, der.data(), &len, data.data(), data.size()) == 1);
  der.resize(len);
  EVP_MD_CTX_free(ctx);
  const unsigned char* p = der.data();
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  REQUIRE(sig);
  auto mag = [](const BIGNUM* bn) {
    bytes out(static_cast<std::size_t>(BN_num_bytes(bn)));
    BN_bn2bin(bn, out.data());
    return out;
  };
  auto rs = std::make_pair(mag(ECDSA_SIG_get0_r(sig)), mag(ECDSA_SIG_get0_s(sig)));
  ECDSA_SIG_free(sig);
  return rs;
}

// Checks (r, s) over `data` against a public point with OpenSSL directly.
bool openssl_verify(const char* group, const bytes& point, const EVP_MD* md, const bytes& data,
                    const bytes& r, const bytes& s) {
  EVP_PKEY_CTX* kctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(group), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<std::uint8_t*>(point.data()),
                                        point.size()),
      OSSL_PARAM_construct_end()};
  EVP_PKEY* pub = nullptr;
  EVP_PKEY_fromdata_init(kctx);
  EVP_PKEY_fromdata(kctx, &pub, EVP_PKEY_PUBLIC_KEY, params);
  EVP_PKEY_CTX_free(kctx);
  if (!pub) return false;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(r.data(), static_cast<int>(r.size()), nullptr),
                 BN_bin2bn(s.data(), static_cast<int>(s.size()), nullptr));
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      der_len > 0 && EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, pub) == 1 &&
      EVP_DigestVerify(ctx, der, static_cast<std::size_t>(der_len), data.data(), data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  EVP_PKEY_free(pub);
  return ok;
}

bytes encoded_public_point(EVP_PKEY* key) {
  std::size_t len = 0;
  EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, nullptr, 0, &len);
  bytes out(len);
  EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out.data(), out.size(), &len);
  out.resize(len);
  return out;
}

}  // namespace

TEST_CASE("SHA-256, SHA-384 and SHA-512 of \"abc\" match FIPS 180-2") {
  const auto abc = to_bytes("abc");
  CHECK(digest(hash_kind::sha256, abc) ==
        hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  CHECK(digest(hash_kind::sha384, abc) == hex("cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5b"
                                              "ed8086072ba1e7cc2358baeca134c825a7"));
  CHECK(digest(hash_kind::sha512, abc) ==
        hex("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"));
  CHECK(digest_size(hash_kind::sha256) == 32);
  CHECK(digest_size(hash_kind::sha384) == 48);
  CHECK(digest_size(hash_kind::sha512) == 64);
}

TEST_CASE("HMAC-SHA-256 and HMAC-SHA-512 match RFC 4231 test case 2") {
  const auto key = to_bytes("Jefe");
  const auto data = to_bytes("what do ya want for nothing?");
  CHECK(hmac(hash_kind::sha256, key, data) ==
        hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
  CHECK(hmac(hash_kind::sha512, key, data) ==
        hex("164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
            "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"));
}

namespace {
// McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16 (AES-256, 96-bit IV, with AAD).
const bytes gcm_key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
const bytes gcm_plain =
    hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
const bytes gcm_aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
const bytes gcm_iv = hex("cafebabefacedbaddecaf888");
const bytes gcm_cipher =
    hex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662");
const bytes gcm_tag = hex("76fc6ece0f4e1768cddf8853bb2d551b");
}  // namespace

TEST_CASE("AES-256-GCM seals and opens GCM test case 16 through aes_cipher") {
  aes_cipher seal(aes_cipher::mode::gcm, true, gcm_key, gcm_iv);
  bytes data = gcm_plain;
  REQUIRE(seal.gcm_seal(gcm_aad, data));
  CHECK(data == cat({gcm_cipher, gcm_tag}));

  aes_cipher open(aes_cipher::mode::gcm, false, gcm_key, gcm_iv);
  bytes sealed = cat({gcm_cipher, gcm_tag});
  REQUIRE(open.gcm_open(gcm_aad, sealed));
  CHECK(sealed == gcm_plain);
}

TEST_CASE("AES-256-GCM refuses a wrong tag, ciphertext or AAD") {
  for (std::size_t i = 0; i < gcm_cipher.size() + gcm_tag.size(); i += 7) {
    bytes sealed = cat({gcm_cipher, gcm_tag});
    sealed[i] ^= 0x01;
    aes_cipher open(aes_cipher::mode::gcm, false, gcm_key, gcm_iv);
    CHECK_FALSE(open.gcm_open(gcm_aad, sealed));
  }
  bytes aad = gcm_aad;
  aad[0] ^= 0x80;
  bytes sealed = cat({gcm_cipher, gcm_tag});
  aes_cipher open(aes_cipher::mode::gcm, false, gcm_key, gcm_iv);
  CHECK_FALSE(open.gcm_open(aad, sealed));
  bytes short_data(15, 0);
  aes_cipher open2(aes_cipher::mode::gcm, false, gcm_key, gcm_iv);
  CHECK_FALSE(open2.gcm_open(gcm_aad, short_data));
}

TEST_CASE("AES-256-GCM advances the 64-bit invocation counter after each packet and keeps the fixed field") {
  SECTION("the second seal uses IV + 1") {
    aes_cipher seal(aes_cipher::mode::gcm, true, gcm_key, gcm_iv);
    bytes first = gcm_plain, second = gcm_plain;
    REQUIRE(seal.gcm_seal(gcm_aad, first));
    REQUIRE(seal.gcm_seal(gcm_aad, second));
    CHECK(first != second);
    aes_cipher next(aes_cipher::mode::gcm, true, gcm_key, hex("cafebabefacedbaddecaf889"));
    bytes expected = gcm_plain;
    REQUIRE(next.gcm_seal(gcm_aad, expected));
    CHECK(second == expected);
    // The opener follows the same counter.
    aes_cipher open(aes_cipher::mode::gcm, false, gcm_key, gcm_iv);
    REQUIRE(open.gcm_open(gcm_aad, first));
    REQUIRE(open.gcm_open(gcm_aad, second));
    CHECK(second == gcm_plain);
  }
  SECTION("the counter wraps within its 64 bits (RFC 5647 §7.1)") {
    aes_cipher seal(aes_cipher::mode::gcm, true, gcm_key, hex("cafebabe ffffffffffffffff"));
    bytes first = gcm_plain, second = gcm_plain;
    REQUIRE(seal.gcm_seal(gcm_aad, first));
    REQUIRE(seal.gcm_seal(gcm_aad, second));
    aes_cipher wrapped(aes_cipher::mode::gcm, true, gcm_key, hex("cafebabe 0000000000000000"));
    bytes expected = gcm_plain;
    REQUIRE(wrapped.gcm_seal(gcm_aad, expected));
    CHECK(second == expected);
  }
  SECTION("a carry runs through the low bytes") {
    aes_cipher seal(aes_cipher::mode::gcm, true, gcm_key, hex("00000001 00000000000000ff"));
    bytes first = gcm_plain, second = gcm_plain;
    REQUIRE(seal.gcm_seal(gcm_aad, first));
    REQUIRE(seal.gcm_seal(gcm_aad, second));
    aes_cipher carried(aes_cipher::mode::gcm, true, gcm_key, hex("00000001 0000000000000100"));
    bytes expected = gcm_plain;
    REQUIRE(carried.gcm_seal(gcm_aad, expected));
    CHECK(second == expected);
  }
}

TEST_CASE("AES-256-CTR matches NIST SP 800-38A F.5.5 and keeps its keystream position across calls") {
  const bytes key = hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
  const bytes counter = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  const bytes plain =
      hex("6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51"
          "30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710");
  const bytes cipher =
      hex("601ec313775789a5b7a7f504bbf3d228 f443e3ca4d62b59aca84e990cacaf5c5"
          "2b0930daa23de94ce87017ba2d84988d dfc9c58db67aada613c2dd08457941a6");
  {
    aes_cipher enc(aes_cipher::mode::ctr, true, key, counter);
    bytes data = plain;
    REQUIRE(enc.ctr_apply(data.data(), data.size()));
    CHECK(data == cipher);
  }
  {
    aes_cipher enc(aes_cipher::mode::ctr, true, key, counter);
    bytes data = plain;
    std::size_t offset = 0;
    for (std::size_t piece : {1, 15, 17, 31}) {
      REQUIRE(enc.ctr_apply(data.data() + offset, piece));
      offset += piece;
    }
    REQUIRE(offset == data.size());
    CHECK(data == cipher);
  }
  {
    aes_cipher dec(aes_cipher::mode::ctr, false, key, counter);
    bytes data = cipher;
    REQUIRE(dec.ctr_apply(data.data(), data.size()));
    CHECK(data == plain);
  }
}

TEST_CASE("ECDH on P-256 and P-384 reproduces RFC 5903's public points and shared secret") {
  for (const auto* v : {&p256, &p384}) {
    INFO((v->nid == NID_secp384r1 ? "P-384" : "P-256"));
    auto i = ecdh_key::from_private(v->nid, hex(v->i));
    auto r = ecdh_key::from_private(v->nid, hex(v->r));
    REQUIRE(i);
    REQUIRE(r);
    CHECK(i->public_point() == uncompressed(v->gix, v->giy));
    CHECK(r->public_point() == uncompressed(v->grx, v->gry));
    auto ir = i->shared_secret(uncompressed(v->grx, v->gry));
    auto ri = r->shared_secret(uncompressed(v->gix, v->giy));
    REQUIRE(ir);
    REQUIRE(ri);
    CHECK(*ir == hex(v->girx));
    CHECK(*ri == hex(v->girx));
  }
}

TEST_CASE("ECDH refuses bad private scalars and peer points that are not on the curve") {
  const bytes zero(32, 0);
  CHECK_FALSE(ecdh_key::from_private(NID_X9_62_prime256v1, zero));
  CHECK_FALSE(ecdh_key::from_private(NID_X9_62_prime256v1, bytes{}));
  // The P-256 group order n, and n itself is not a valid scalar.
  const bytes order = hex("FFFFFFFF 00000000 FFFFFFFF FFFFFFFF BCE6FAAD A7179E84 F3B9CAC2 FC632551");
  CHECK_FALSE(ecdh_key::from_private(NID_X9_62_prime256v1, order));
  bytes below = order;
  below.back() -= 1;
  CHECK(ecdh_key::from_private(NID_X9_62_prime256v1, below));
  CHECK_FALSE(ecdh_key::from_private(NID_secp521r1, hex(p256.i)));

  auto i = ecdh_key::from_private(NID_X9_62_prime256v1, hex(p256.i));
  REQUIRE(i);
  bytes off_curve = uncompressed(p256.grx, p256.gry);
  off_curve.back() ^= 0x01;
  CHECK_FALSE(i->shared_secret(off_curve));
  CHECK_FALSE(i->shared_secret(bytes{}));
  CHECK_FALSE(i->shared_secret(bytes{0x04}));
  CHECK_FALSE(i->shared_secret(uncompressed(p384.grx, p384.gry)));  // a P-384 point on a P-256 key
}

TEST_CASE("two generated ECDH keys agree on the shared secret") {
  for (int nid : {NID_X9_62_prime256v1, NID_secp384r1}) {
    auto a = ecdh_key::generate(nid);
    auto b = ecdh_key::generate(nid);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->public_point().size() == (nid == NID_secp384r1 ? 97u : 65u));
    CHECK(a->public_point() != b->public_point());
    auto ab = a->shared_secret(b->public_point());
    auto ba = b->shared_secret(a->public_point());
    REQUIRE(ab);
    REQUIRE(ba);
    CHECK(*ab == *ba);
  }
}

TEST_CASE("an ecdsa-sha2-nistp384 public key blob has the RFC 5656 layout") {
  const auto key = ecdsa_key::generate();
  const auto& blob = key.public_blob();
  const bytes prefix =
      cat({ssh_string(std::string("ecdsa-sha2-nistp384")), ssh_string(std::string("nistp384")), u32be(97)});
  REQUIRE(blob.size() == prefix.size() + 97);
  CHECK(bytes(blob.begin(), blob.begin() + static_cast<long>(prefix.size())) == prefix);
  CHECK(blob[prefix.size()] == 0x04);
  CHECK(key.openssh_public_line("me") == "ecdsa-sha2-nistp384 " + base64_encode(blob) + " me");
}

TEST_CASE("an ecdsa-sha2-nistp384 signature has the RFC 5656 layout and verifies with OpenSSL directly") {
  const auto key = ecdsa_key::generate();
  const auto data = to_bytes("exchange hash stand-in");
  const auto sig = key.sign(data);
  reader outer(sig);
  CHECK(outer.string() == "ecdsa-sha2-nistp384");
  const auto inner = outer.string_bytes();
  CHECK(outer.ok());
  CHECK(outer.at_end());
  reader rs(inner);
  const auto r = rs.mpint();
  const auto s = rs.mpint();
  CHECK(rs.ok());
  CHECK(rs.at_end());
  CHECK(r.size() <= 48);
  CHECK(s.size() <= 48);
  const bytes point(key.public_blob().end() - 97, key.public_blob().end());
  CHECK(openssl_verify("P-384", point, EVP_sha384(), data, r, s));
  CHECK_FALSE(openssl_verify("P-384", point, EVP_sha384(), to_bytes("something else"), r, s));
}

TEST_CASE("an ECDSA signature verifies, and a changed message, signature or key does not") {
  const auto key = ecdsa_key::generate();
  const auto data = to_bytes("the exchange hash H");
  const auto sig = key.sign(data);
  CHECK(verify_signature(key.public_blob(), data, sig));

  auto other_data = data;
  other_data[0] ^= 0x01;
  CHECK_FALSE(verify_signature(key.public_blob(), other_data, sig));

  // Flip a byte of r and of s (the last bytes of the blob belong to s; the middle of the blob to r).
  for (std::size_t pos : {sig.size() - 1, sig.size() - 60}) {
    auto bad = sig;
    bad[pos] ^= 0x01;
    CHECK_FALSE(verify_signature(key.public_blob(), data, bad));
  }
  CHECK_FALSE(verify_signature(ecdsa_key::generate().public_blob(), data, sig));
  CHECK_FALSE(verify_signature(key.public_blob(), data, bytes{}));
  CHECK_FALSE(verify_signature(bytes{}, data, sig));
  // The same signature under another algorithm name is refused.
  bytes renamed =
      cat({ssh_string(std::string("ecdsa-sha2-nistp256")), bytes(sig.begin() + 4 + 19, sig.end())});
  CHECK_FALSE(verify_signature(key.public_blob(), data, renamed));
}

TEST_CASE("a nistp256 public key blob verifies a P-256 signature made with OpenSSL directly") {
  EVP_PKEY* k = EVP_EC_gen("P-256");
  REQUIRE(k);
  const auto point = encoded_public_point(k);
  REQUIRE(point.size() == 65);
  const auto blob = cat({ssh_string(std::string("ecdsa-sha2-nistp256")), ssh_string(std::string("nistp256")),
                         ssh_string(point)});
  const auto data = to_bytes("signed by OpenSSL");
  const auto [r, s] = openssl_sign(k, EVP_sha256(), data);
  const auto sig =
      cat({ssh_string(std::string("ecdsa-sha2-nistp256")), ssh_string(cat({ssh_mpint(r), ssh_mpint(s)}))});
  CHECK(verify_signature(blob, data, sig));
  CHECK_FALSE(verify_signature(blob, to_bytes("signed by someone else"), sig));
  // A P-256 signature under a nistp384 label, or with SHA-384, is refused.
  const auto mislabeled = cat({ssh_string(std::string("ecdsa-sha2-nistp384")),
                               ssh_string(std::string("nistp384")), ssh_string(point)});
  CHECK_FALSE(verify_signature(mislabeled, data, sig));
  const auto [r384, s384] = openssl_sign(k, EVP_sha384(), data);
  const auto sig384 = cat(
      {ssh_string(std::string("ecdsa-sha2-nistp256")), ssh_string(cat({ssh_mpint(r384), ssh_mpint(s384)}))});
  CHECK_FALSE(verify_signature(blob, data, sig384));
  EVP_PKEY_free(k);
}

TEST_CASE("an ECDSA key survives a PEM round trip, and a P-256 PEM is refused") {
  const auto key = ecdsa_key::generate();
  auto back = ecdsa_key::from_pem(key.to_pem());
  REQUIRE(back);
  CHECK(back->public_blob() == key.public_blob());
  const auto data = to_bytes("x");
  CHECK(verify_signature(key.public_blob(), data, back->sign(data)));
  CHECK_FALSE(ecdsa_key::from_pem("not a key"));
  EVP_PKEY* p256key = EVP_EC_gen("P-256");
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, p256key, nullptr, nullptr, 0, nullptr, nullptr);
  char* mem = nullptr;
  const long len = BIO_get_mem_data(bio, &mem);
  const std::string pem(mem, static_cast<std::size_t>(len));
  BIO_free(bio);
  EVP_PKEY_free(p256key);
  CHECK_FALSE(ecdsa_key::from_pem(pem));
}

TEST_CASE("base64 matches RFC 4648's vectors and round-trips any bytes") {
  const std::vector<std::pair<std::string, std::string>> vectors = {{"", ""},
                                                                    {"f", "Zg=="},
                                                                    {"fo", "Zm8="},
                                                                    {"foo", "Zm9v"},
                                                                    {"foob", "Zm9vYg=="},
                                                                    {"fooba", "Zm9vYmE="},
                                                                    {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    CHECK(base64_encode(to_bytes(plain)) == encoded);
    auto back = base64_decode(encoded);
    REQUIRE(back);
    CHECK(*back == to_bytes(plain));
  }
  for (std::size_t n = 0; n < 100; ++n) {
    const auto data = random_bytes(n);
    auto back = base64_decode(base64_encode(data));
    REQUIRE(back);
    CHECK(*back == data);
  }
  CHECK_FALSE(base64_decode("abc"));
  CHECK_FALSE(base64_decode("ab!d"));
}

namespace {

// RFC 4253 §7.2, written from the RFC: HASH(K || H || X || session_id), extended with HASH(K || H || K1 ||
// ...).
bytes rfc_derive(hash_kind h, const bytes& k_mpint, const bytes& hash, char letter, const bytes& session_id,
                 std::size_t size) {
  bytes out = digest(h, cat({k_mpint, hash, bytes{static_cast<std::uint8_t>(letter)}, session_id}));
  while (out.size() < size) out = cat({out, digest(h, cat({k_mpint, hash, out}))});
  out.resize(size);
  return out;
}

bytes next_packet(packet_opener& opener) {
  bytes payload;
  const auto st = opener.next(payload);
  REQUIRE(st == packet_opener::status::packet);
  return payload;
}

}  // namespace

TEST_CASE("a hand-made client that derives RFC 4253 keys on its own is understood by our server") {
  struct variant {
    const ecdh_vector* curve;
    std::string kex, cipher, mac;
    hash_kind hash;
  };
  // SHA-256 with hmac-sha2-512 needs 64 key bytes from a 32-byte hash: the key extension rule is exercised.
  for (const auto& v :
       {variant{&p256, "ecdh-sha2-nistp256", "aes256-ctr", "hmac-sha2-512", hash_kind::sha256},
        variant{&p384, "ecdh-sha2-nistp384", "aes256-gcm@openssh.com", "hmac-sha2-256", hash_kind::sha384},
        variant{&p384, "ecdh-sha2-nistp384", "aes256-ctr", "hmac-sha2-256-etm@openssh.com",
                hash_kind::sha384}}) {
    INFO(v.kex << " " << v.cipher << " " << v.mac);
    session_config cfg;
    cfg.role = role::server;
    cfg.host_key = std::make_shared<ecdsa_key>(ecdsa_key::generate());
    session server(cfg);
    server.start();

    // The server's version line and KEXINIT.
    const auto hello = server.take_output();
    const std::string text(hello.begin(), hello.end());
    const auto eol = text.find("\r\n");
    REQUIRE(eol != std::string::npos);
    const std::string v_s = text.substr(0, eol);
    packet_opener opener;
    opener.feed(hello.data() + eol + 2, hello.size() - eol - 2);
    const bytes i_s = next_packet(opener);
    REQUIRE(i_s[0] == msg::kexinit);

    // Ours: a fixed client key (RFC 5903's), so the whole exchange hinges on the derivation being right.
    const std::string v_c = "SSH-2.0-handmade_1.0";
    auto names = [](const std::string& s) { return ssh_string(s); };
    const bytes i_c = cat({bytes{msg::kexinit}, bytes(16, 0x11), names(v.kex), names("ecdsa-sha2-nistp384"),
                           names(v.cipher), names(v.cipher), names(v.mac), names(v.mac), names("none"),
                           names("none"), names(""), names(""), bytes{0}, u32be(0)});
    auto client_key = ecdh_key::from_private(v.curve->nid, hex(v.curve->i));
    REQUIRE(client_key);
    const bytes q_c = client_key->public_point();
    packet_sealer sealer;
    bytes out = to_bytes(v_c + "\r\n");
    for (const auto& p : {i_c, cat({bytes{msg::kex_ecdh_init}, ssh_string(q_c)})}) {
      const auto w = sealer.seal(p);
      out.insert(out.end(), w.begin(), w.end());
    }
    server.receive(out);
    const auto reply_wire = server.take_output();
    REQUIRE_FALSE(server.closed());
    opener.feed(reply_wire.data(), reply_wire.size());
    const bytes reply = next_packet(opener);
    REQUIRE(reply[0] == msg::kex_ecdh_reply);
    reader rr(reply.data() + 1, reply.size() - 1);
    const bytes k_s = rr.string_bytes();
    const bytes q_s = rr.string_bytes();
    const bytes sig = rr.string_bytes();
    REQUIRE(rr.ok());
    CHECK(k_s == cfg.host_key->public_blob());
    REQUIRE(next_packet(opener) == bytes{msg::newkeys});

    auto shared = client_key->shared_secret(q_s);
    REQUIRE(shared);
    const bytes k = ssh_mpint(*shared);
    // RFC 5656 §4: H = hash(V_C || V_S || I_C || I_S || K_S || Q_C || Q_S || K).
    const bytes h = digest(v.hash, cat({ssh_string(v_c), ssh_string(v_s), ssh_string(i_c), ssh_string(i_s),
                                        ssh_string(k_s), ssh_string(q_c), ssh_string(q_s), k}));
    CHECK(verify_signature(k_s, h, sig));
    const bytes& session_id = h;
    const bool gcm = v.cipher == "aes256-gcm@openssh.com";
    const std::string mac = gcm ? "none" : v.mac;
    const std::size_t iv_len = gcm ? 12 : 16;
    const std::size_t mac_len = mac == "none" ? 0 : (mac.rfind("hmac-sha2-512", 0) == 0 ? 64 : 32);
    cipher_keys c2s{v.cipher, mac, rfc_derive(v.hash, k, h, 'A', session_id, iv_len),
                    rfc_derive(v.hash, k, h, 'C', session_id, 32),
                    rfc_derive(v.hash, k, h, 'E', session_id, mac_len)};
    cipher_keys s2c{v.cipher, mac, rfc_derive(v.hash, k, h, 'B', session_id, iv_len),
                    rfc_derive(v.hash, k, h, 'D', session_id, 32),
                    rfc_derive(v.hash, k, h, 'F', session_id, mac_len)};

    // NEWKEYS, then everything with our own keys: the service request and a `none` login.
    out = sealer.seal(bytes{msg::newkeys});
    sealer.set_keys(c2s);
    for (const auto& p :
         {cat({bytes{msg::service_request}, ssh_string(std::string("ssh-userauth"))}),
          cat({bytes{msg::userauth_request}, ssh_string(std::string("tunnel")),
               ssh_string(std::string("ssh-connection")), ssh_string(std::string("none"))})}) {
      const auto w = sealer.seal(p);
      out.insert(out.end(), w.begin(), w.end());
    }
    server.receive(out);
    REQUIRE_FALSE(server.closed());
    opener.set_keys(s2c);
    const auto answer = server.take_output();
    opener.feed(answer.data(), answer.size());
    CHECK(next_packet(opener) == cat({bytes{msg::service_accept}, ssh_string(std::string("ssh-userauth"))}));
    CHECK(next_packet(opener) == bytes{msg::userauth_success});
    CHECK(server.ready());
    CHECK(server.session_id() == h);
  }
}

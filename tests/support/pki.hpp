#pragma once
// A throwaway private CA and a server certificate it signed, made with the openssl command line, for the tests
// of TLS peers (a wss relay, a TLS NATS server).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace sb::test {

/// A CA and a leaf it signed for `san` ("IP:127.0.0.1"), in `dir`: ca.pem, leaf.pem, leaf.key.
inline void make_test_pki(const std::filesystem::path& dir, const std::string& san) {
  const auto d = dir.string();
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
  const std::string script =
      "cd '" + d + "' && openssl req -x509 " + ec +
      "-days 1 -subj /CN=switchboard-test-ca -addext basicConstraints=critical,CA:TRUE "
      "-addext keyUsage=critical,keyCertSign,cRLSign -keyout ca.key -out ca.pem && openssl req " +
      ec +
      "-subj /CN=switchboard-test-relay -keyout leaf.key -out leaf.csr && printf 'subjectAltName=" + san +
      "\\nextendedKeyUsage=serverAuth\\n' > leaf.ext && openssl x509 -req -in leaf.csr -CA ca.pem -CAkey "
      "ca.key "
      "-CAcreateserial -days 1 -extfile leaf.ext -out leaf.pem";
  REQUIRE(std::system((script + " >/dev/null 2>&1").c_str()) == 0);
}

}  // namespace sb::test

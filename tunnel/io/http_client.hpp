#pragma once
// A small synchronous HTTP/1.1 client on Beast, for the management API (TUNNEL.md "Management API"): the CLI
// and the tunnel host/client call it from threads that may block. One request per connection
// (`Connection: close`); https verifies the server against the system store, plus a CA file if given.
// Network, TLS and protocol failures come back as an error string; nothing here throws for them.
#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <variant>

namespace sb::tunnel::io {

/// Responses larger than this are refused (management responses are a few KiB; a list of many tunnels
/// with ports stays far below).
inline constexpr std::size_t default_http_max_body = 8 * 1024 * 1024;
inline constexpr std::chrono::milliseconds default_http_timeout{15000};

struct http_client_options {
  /// For the whole exchange: resolve, connect, TLS handshake, write and read.
  std::chrono::milliseconds timeout = default_http_timeout;
  /// A PEM file of CA certificates trusted in addition to the system store (a private CA, a self-signed
  /// relay certificate). Empty: the system store only.
  std::string ca_file;
  std::size_t max_body = default_http_max_body;
  std::string user_agent = "switchboard/0.1";
};

struct http_call {
  std::string method = "GET";
  std::string url;                             // http:// or https://, with path and query
  std::map<std::string, std::string> headers;  // sent as given; Host, User-Agent and Content-Length are added
  std::string body;
};

struct http_reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case; repeated fields joined with ", "
  std::string body;

  /// The value of header `lower_name`, or "" when absent.
  std::string header(const std::string& lower_name) const;
};

/// A TLS client context trusting the system store plus the PEM CAs in `ca_file` (when not empty), verifying
/// the peer; or why it cannot be built. The management calls and the relay WebSocket both use it, so an
/// https relay with a private CA is trusted the same way by both.
std::variant<std::shared_ptr<boost::asio::ssl::context>, std::string> make_client_tls_context(
    const std::string& ca_file);

/// Before a client handshake: SNI for a host name (RFC 6066 forbids IP literals there), and OpenSSL's chain
/// verification told to check that the certificate names `host`, as a DNS name or, for an IP literal, as
/// an IP address SAN. False when OpenSSL refuses the name.
bool expect_peer_name(SSL* ssl, const std::string& host);

/// Why the peer's certificate was refused ("IP address mismatch", "unable to get local issuer
/// certificate"), or "" when verification did not fail: appended to a handshake error.
std::string verify_failure(SSL* ssl);

/// Performs one request; on failure returns a message such as "connect to 127.0.0.1:9: Connection refused"
/// or "timed out after 15000 ms". An HTTP error status is a reply, not a failure.
std::variant<http_reply, std::string> http_request(const http_call& call,
                                                   const http_client_options& options = {});

}  // namespace sb::tunnel::io

#include "tunnel/io/http_client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <optional>

#include "tunnel/io/url.hpp"

namespace sb::tunnel::io {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using clock = std::chrono::steady_clock;
using outcome = std::variant<http_reply, std::string>;

// Response headers beyond this are refused: a management response carries a handful.
constexpr std::uint32_t max_header_bytes = 64 * 1024;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool is_ip_literal(const std::string& host) {
  beast::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

/// One request on one connection, driven by callbacks on a private io_context; the caller runs the context
/// until `result` is set or the deadline passes.
template <class Stream>
class exchange {
 public:
  exchange(Stream& stream, tcp::resolver& resolver, url_parts url, http::request<http::string_body>& request,
           std::size_t max_body, clock::time_point deadline, std::chrono::milliseconds timeout)
      : stream_(stream),
        resolver_(resolver),
        url_(std::move(url)),
        request_(request),
        deadline_(deadline),
        timeout_(timeout),
        max_body_(max_body) {
    parser_.body_limit(max_body);
    parser_.header_limit(max_header_bytes);
  }

  void start() {
    resolver_.async_resolve(url_.host, std::to_string(url_.port),
                            [this](beast::error_code ec, tcp::resolver::results_type results) {
                              if (ec) return fail("cannot resolve " + url_.host + ": " + ec.message());
                              lowest().expires_at(deadline_);
                              lowest().async_connect(
                                  results,
                                  [this](beast::error_code ec2, const tcp::endpoint&) { on_connect(ec2); });
                            });
  }

  std::optional<outcome> result;

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  std::string where() const { return url_.host_header(); }

  void fail(std::string message) {
    if (!result) result = std::move(message);
    beast::error_code ignored;
    lowest().socket().close(ignored);
  }

  std::string describe(const beast::error_code& ec) const {
    if (ec == beast::error::timeout) return "timed out after " + std::to_string(timeout_.count()) + " ms";
    return ec.message();
  }

  void on_connect(const beast::error_code& ec) {
    if (ec) return fail("cannot connect to " + where() + ": " + describe(ec));
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      lowest().expires_at(deadline_);
      stream_.async_handshake(net::ssl::stream_base::client, [this](beast::error_code ec2) {
        if (ec2) {
          std::string reason = describe(ec2);
          // "certificate verify failed" alone does not say which check failed.
          const long verify = SSL_get_verify_result(stream_.native_handle());
          if (verify != X509_V_OK) reason += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
          return fail("TLS handshake with " + where() + " failed: " + reason);
        }
        write();
      });
    } else {
      write();
    }
  }

  void write() {
    lowest().expires_at(deadline_);
    http::async_write(stream_, request_, [this](beast::error_code ec, std::size_t) {
      if (ec) return fail("cannot send the request to " + where() + ": " + describe(ec));
      lowest().expires_at(deadline_);
      // The head first: Beast 1.74 skips the body limit for a Content-Length parsed in the same eager read as
      // its body, so the length is checked here before any body is read.
      http::async_read_header(stream_, buffer_, parser_, [this](beast::error_code ec2, std::size_t) {
        if (!ec2 && parser_.content_length() && *parser_.content_length() > max_body_)
          ec2 = http::error::body_limit;
        if (ec2) return on_read(ec2);
        http::async_read(stream_, buffer_, parser_,
                         [this](beast::error_code ec3, std::size_t) { on_read(ec3); });
      });
    });
  }

  void on_read(const beast::error_code& ec) {
    if (ec == http::error::body_limit) return fail("the response from " + where() + " is too large");
    if (ec) return fail("no valid HTTP response from " + where() + ": " + describe(ec));
    auto& res = parser_.get();
    http_reply reply;
    reply.status = static_cast<int>(res.result_int());
    for (const auto& field : res) {
      auto name = lower(std::string(field.name_string()));
      auto& slot = reply.headers[name];
      slot += (slot.empty() ? "" : ", ") + std::string(field.value());
    }
    reply.body = std::move(res.body());
    result = std::move(reply);
    // `Connection: close` was asked for; no TLS close_notify wait, the reply is complete.
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().socket().close(ignored);
  }

  Stream& stream_;
  tcp::resolver& resolver_;
  url_parts url_;
  http::request<http::string_body>& request_;
  clock::time_point deadline_;
  std::chrono::milliseconds timeout_;
  std::size_t max_body_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
};

template <class Stream>
outcome run_exchange(net::io_context& ioc, Stream& stream, const url_parts& url,
                     http::request<http::string_body>& request, const http_client_options& options) {
  const auto deadline = clock::now() + options.timeout;
  tcp::resolver resolver(ioc);
  exchange<Stream> x(stream, resolver, url, request, options.max_body, deadline, options.timeout);
  x.start();
  // The stream's own expiry bounds connect, handshake, write and read; this bounds name resolution too.
  ioc.run_until(deadline + std::chrono::milliseconds(50));
  if (x.result) return std::move(*x.result);
  resolver.cancel();
  return "request to " + url.host_header() + " timed out after " + std::to_string(options.timeout.count()) +
         " ms";
}

}  // namespace

std::string http_reply::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string{} : it->second;
}

std::variant<std::shared_ptr<net::ssl::context>, std::string> make_client_tls_context(
    const std::string& ca_file) {
  auto ctx = std::make_shared<net::ssl::context>(net::ssl::context::tls_client);
  ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                   net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1);
  beast::error_code ec;
  ctx->set_default_verify_paths(ec);
  if (ec) return "cannot load the system CA store: " + ec.message();
  if (!ca_file.empty()) {
    ctx->load_verify_file(ca_file, ec);
    if (ec) return "cannot load CA file '" + ca_file + "': " + ec.message();
  }
  ctx->set_verify_mode(net::ssl::verify_peer);
  return ctx;
}

bool expect_peer_name(SSL* ssl, const std::string& host) {
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (is_ip_literal(host)) return X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1;
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return SSL_set_tlsext_host_name(ssl, host.c_str()) == 1 &&
         X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) == 1;
}

std::string verify_failure(SSL* ssl) {
  const long result = SSL_get_verify_result(ssl);
  return result == X509_V_OK ? std::string() : X509_verify_cert_error_string(result);
}

std::variant<http_reply, std::string> http_request(const http_call& call,
                                                   const http_client_options& options) {
  auto url = parse_url(call.url);
  if (!url || (url->scheme != "http" && url->scheme != "https"))
    return "not an http:// or https:// URL: '" + call.url + "'";
  const auto verb = http::string_to_verb(call.method);
  if (verb == http::verb::unknown) return "unknown HTTP method '" + call.method + "'";

  http::request<http::string_body> request{verb, url->target, 11};
  request.set(http::field::host, url->host_header());
  request.set(http::field::user_agent, options.user_agent);
  request.set(http::field::connection, "close");
  for (const auto& [name, value] : call.headers) request.set(name, value);
  request.body() = call.body;
  if (!call.body.empty() || verb == http::verb::put || verb == http::verb::post) request.prepare_payload();

  try {
    net::io_context ioc;
    if (!url->tls()) {
      beast::tcp_stream stream(ioc);
      return run_exchange(ioc, stream, *url, request, options);
    }
    auto ctx = make_client_tls_context(options.ca_file);
    if (auto* error = std::get_if<std::string>(&ctx)) return *error;
    beast::ssl_stream<beast::tcp_stream> stream(ioc, *std::get<0>(ctx));
    if (!expect_peer_name(stream.native_handle(), url->host))
      return "cannot set the TLS server name '" + url->host + "'";
    return run_exchange(ioc, stream, *url, request, options);
  } catch (const std::exception& e) {
    // Allocation or an unexpected Asio error: still a value for the caller.
    return std::string("HTTP request failed: ") + e.what();
  }
}

}  // namespace sb::tunnel::io

// The synchronous HTTP client against raw sockets on 127.0.0.1: what it sends, what it returns, and every
// failure (refused, silent server, oversized or garbled response, bad URL) as an error value.
#include "tunnel/io/http_client.hpp"

#include <boost/asio.hpp>
#include <catch2/catch.hpp>
#include <future>
#include <thread>

using namespace std::chrono_literals;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

/// Accepts one connection, records the request head and body, and answers with `response` (or stays
/// silent when it is empty, until the client goes away).
class canned_server {
 public:
  /// `read_request` false answers at once, for clients that wait for the server first (a TLS ClientHello).
  explicit canned_server(std::string response, bool read_request = true)
      : acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
        response_(std::move(response)),
        read_request_(read_request) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }
  ~canned_server() {
    // A blocking accept does not wake when the acceptor closes: a throwaway connection ends it when no
    // client came (a failed test).
    boost::system::error_code ec;
    net::io_context ioc;
    tcp::socket poke(ioc);
    poke.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_), ec);
    poke.close(ec);
    if (thread_.joinable()) thread_.join();
  }
  std::uint16_t port() const { return port_; }
  std::string url(const std::string& path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::future<std::string> request() { return request_.get_future(); }

 private:
  void serve() {
    boost::system::error_code ec;
    tcp::socket s(ioc_);
    acceptor_.accept(s, ec);
    if (ec) return request_.set_value("");
    std::string got;
    std::array<char, 4096> buf{};
    // Head, then the body by Content-Length.
    while (read_request_ && got.find("\r\n\r\n") == std::string::npos) {
      auto n = s.read_some(net::buffer(buf), ec);
      if (ec) break;
      got.append(buf.data(), n);
    }
    std::size_t length = 0;
    if (auto at = got.find("Content-Length: "); at != std::string::npos)
      length = std::stoul(got.substr(at + 16));
    while (read_request_ && !ec && got.size() < got.find("\r\n\r\n") + 4 + length) {
      auto n = s.read_some(net::buffer(buf), ec);
      if (!ec) got.append(buf.data(), n);
    }
    request_.set_value(got);
    if (response_.empty()) {
      s.read_some(net::buffer(buf), ec);  // until the client gives up
      return;
    }
    net::write(s, net::buffer(response_), ec);
    s.shutdown(tcp::socket::shutdown_send, ec);
  }

  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::string response_;
  bool read_request_;
  std::promise<std::string> request_;
  std::thread thread_;
};

std::string error_of(const std::variant<sb::tunnel::io::http_reply, std::string>& r) {
  if (auto* reply = std::get_if<sb::tunnel::io::http_reply>(&r))
    UNSCOPED_INFO("unexpected reply " << reply->status << " with " << reply->body.size() << " bytes");
  REQUIRE(std::holds_alternative<std::string>(r));
  return std::get<std::string>(r);
}

}  // namespace

TEST_CASE("a reply comes back with its status, lower-case headers and body, and the request is well formed") {
  canned_server server(
      "HTTP/1.1 404 Not Found\r\nContent-Type: application/problem+json\r\nX-Served-By: "
      "tunnels-switchboard\r\n"
      "Content-Length: 15\r\n\r\n{\"status\":404}\n");
  auto seen = server.request();
  sb::tunnel::io::http_call call;
  call.method = "PUT";
  call.url = server.url("/tunnels/t-1?api-version=1");
  call.headers["Authorization"] = "Bearer secret";
  call.headers["If-None-Match"] = "*";
  call.body = R"({"tunnelId":"t-1"})";
  auto r = sb::tunnel::io::http_request(call);
  REQUIRE(std::holds_alternative<sb::tunnel::io::http_reply>(r));
  const auto& reply = std::get<sb::tunnel::io::http_reply>(r);
  CHECK(reply.status == 404);
  CHECK(reply.header("x-served-by") == "tunnels-switchboard");
  CHECK(reply.header("content-type") == "application/problem+json");
  CHECK(reply.header("absent").empty());
  CHECK(reply.body == "{\"status\":404}\n");

  const auto request = seen.get();
  CHECK(request.rfind("PUT /tunnels/t-1?api-version=1 HTTP/1.1\r\n", 0) == 0);
  CHECK(request.find("Host: 127.0.0.1:" + std::to_string(server.port()) + "\r\n") != std::string::npos);
  CHECK(request.find("Authorization: Bearer secret\r\n") != std::string::npos);
  CHECK(request.find("If-None-Match: *\r\n") != std::string::npos);
  CHECK(request.find("Content-Length: 18\r\n") != std::string::npos);
  CHECK(request.substr(request.size() - 18) == R"({"tunnelId":"t-1"})");
}

TEST_CASE("a closed port is an error value naming the address") {
  std::uint16_t port = 0;
  {
    net::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }
  sb::tunnel::io::http_call call;
  call.url = "http://127.0.0.1:" + std::to_string(port) + "/";
  const auto error = error_of(sb::tunnel::io::http_request(call));
  CHECK(error.find("cannot connect to 127.0.0.1:" + std::to_string(port)) != std::string::npos);
}

TEST_CASE("a server that never answers times out within the given time") {
  canned_server silent("");
  sb::tunnel::io::http_client_options options;
  options.timeout = 300ms;
  sb::tunnel::io::http_call call;
  call.url = silent.url();
  const auto start = std::chrono::steady_clock::now();
  const auto error = error_of(sb::tunnel::io::http_request(call, options));
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(error.find("timed out after 300 ms") != std::string::npos);
  CHECK(took < 3s);
}

TEST_CASE("a body above the limit and a response that is not HTTP are refused as values") {
  {
    canned_server big("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + std::string(100000, 'x'));
    sb::tunnel::io::http_client_options options;
    options.max_body = 1000;
    sb::tunnel::io::http_call call;
    call.url = big.url();
    CHECK(error_of(sb::tunnel::io::http_request(call, options)).find("too large") != std::string::npos);
  }
  {
    canned_server garbage("SSH-2.0-OpenSSH_9.0\r\n\r\n");
    sb::tunnel::io::http_call call;
    call.url = garbage.url();
    CHECK(error_of(sb::tunnel::io::http_request(call)).find("no valid HTTP response") != std::string::npos);
  }
}

TEST_CASE("a URL that is not http or https, or a bad method, fails before any connection") {
  sb::tunnel::io::http_call call;
  call.url = "ws://127.0.0.1:1/";
  CHECK(error_of(sb::tunnel::io::http_request(call)).find("not an http") != std::string::npos);
  call.url = "not a url";
  CHECK(error_of(sb::tunnel::io::http_request(call)).find("not an http") != std::string::npos);
  call.url = "http://127.0.0.1:1/";
  call.method = "FETCH ME";
  CHECK(error_of(sb::tunnel::io::http_request(call)).find("method") != std::string::npos);
}

TEST_CASE("https to a server without a trusted certificate fails the handshake with the reason") {
  // A plain TCP server that answers garbage to the ClientHello: the TLS layer reports, nothing throws.
  canned_server plain("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false);
  sb::tunnel::io::http_call call;
  call.url = "https://127.0.0.1:" + std::to_string(plain.port()) + "/";
  CHECK(error_of(sb::tunnel::io::http_request(call)).find("TLS handshake with 127.0.0.1") !=
        std::string::npos);
  sb::tunnel::io::http_client_options options;
  options.ca_file = "/nonexistent/ca.pem";
  CHECK(error_of(sb::tunnel::io::http_request(call, options)).find("/nonexistent/ca.pem") !=
        std::string::npos);
}

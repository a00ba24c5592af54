// Conformance against an independent SSH client: libssh2 (OpenSSL backend) connects to our SSH server role
// driven by ssh_link on 127.0.0.1, negotiates ecdh-sha2-nistp384/256 with aes256-ctr + hmac-sha2-* (and
// aes256-gcm@openssh.com or -etm MACs when this libssh2 offers them), checks our host key, logs in with
// `none` as "tunnel", and moves 1 MB through direct-tcpip to an echo server. The blocking libssh2 calls run
// on the test thread; the server's io_context runs on its own thread.
#include <libssh2.h>

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <catch2/catch.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/tunnel_fixture.hpp"
#include "tunnel/io/ssh_link.hpp"

namespace net = boost::asio;
namespace ssh = sb::tunnel::ssh;
using tcp = net::ip::tcp;
using sb::tunnel::io::ssh_link;

namespace {

// The shared test services (tests/support/tunnel_fixture.hpp) under the names this file uses.
using io_thread = sb::test::io_threads;
using echo_server = sb::test::echo_service;

/// Our SSH server side: auth `none` (the session's default), direct-tcpip to 127.0.0.1 only.
class server_handler : public sb::tunnel::io::ssh_link_handler {
 public:
  explicit server_handler(net::io_context& ioc) : ioc_(ioc) {}
  void on_ready(ssh_link& link) override {
    std::lock_guard<std::mutex> g(mtx);
    kex = link.session().negotiated_kex();
    ready = true;
  }
  void on_channel_open(ssh_link& link, const ssh::ev::channel_open& open) override {
    if (open.type != "direct-tcpip") return ssh_link_handler::on_channel_open(link, open);
    ssh::reader r(open.data);
    const auto host = r.string();
    const auto port = r.u32();
    if (!r.ok() || host != "127.0.0.1" || port > 65535)
      return link.session().reject_channel(open.id, ssh::open_failure::administratively_prohibited,
                                           "127.0.0.1 only");
    tcp::socket socket(net::make_strand(ioc_));
    boost::system::error_code ec;
    socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<std::uint16_t>(port)), ec);
    if (ec) return link.session().reject_channel(open.id, ssh::open_failure::connect_failed, ec.message());
    link.session().accept_channel(open.id);
    link.bridge(open.id, std::move(socket));
  }
  void on_closed(ssh_link&, std::uint32_t reason, const std::string& message) override {
    std::lock_guard<std::mutex> g(mtx);
    close_reason = reason;
    close_message = message;
  }

  std::mutex mtx;
  bool ready = false;
  std::string kex;
  std::uint32_t close_reason = 0;
  std::string close_message;

 private:
  net::io_context& ioc_;
};

/// Our SSH server on 127.0.0.1:port(), one ssh_link per accepted connection.
struct our_server {
  io_thread io;
  echo_server echo{io.ioc};
  std::shared_ptr<ssh::ecdsa_key> host_key = std::make_shared<ssh::ecdsa_key>(ssh::ecdsa_key::generate());
  server_handler handler{io.ioc};
  tcp::acceptor acceptor{io.ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)};
  std::mutex links_mtx;
  std::vector<std::shared_ptr<ssh_link>> links;

  our_server() {
    net::post(io.ioc, [this] { accept(); });
  }
  ~our_server() {
    std::lock_guard<std::mutex> g(links_mtx);
    for (auto& l : links) l->close();
  }
  std::uint16_t port() const { return acceptor.local_endpoint().port(); }

  void accept() {
    acceptor.async_accept(net::make_strand(io.ioc), [this](boost::system::error_code ec, tcp::socket s) {
      if (ec) return;
      ssh::session_config cfg;
      cfg.role = ssh::role::server;
      cfg.host_key = host_key;
      auto link = std::make_shared<ssh_link>(sb::tunnel::io::make_tcp_stream(std::move(s)), cfg, handler);
      {
        std::lock_guard<std::mutex> g(links_mtx);
        links.push_back(link);
      }
      link->start();
      accept();
    });
  }
};

struct libssh2_library {
  libssh2_library() { REQUIRE(libssh2_init(0) == 0); }
  ~libssh2_library() { libssh2_exit(); }
};

std::string last_error(LIBSSH2_SESSION* s) {
  char* msg = nullptr;
  int len = 0;
  libssh2_session_last_error(s, &msg, &len, 0);
  return msg ? std::string(msg, static_cast<std::size_t>(len)) : std::string();
}

/// What this libssh2 build offers for a method (libssh2_session_supported_algs).
std::vector<std::string> supported(int method) {
  LIBSSH2_SESSION* s = libssh2_session_init();
  const char** algs = nullptr;
  const int n = libssh2_session_supported_algs(s, method, &algs);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.emplace_back(algs[i]);
  if (n > 0) libssh2_free(s, algs);
  libssh2_session_free(s);
  return out;
}

bool has(const std::vector<std::string>& list, const std::string& name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

std::string random_block(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

struct suite {
  std::string kex, cipher, mac;
};

/// A libssh2 client session over a blocking TCP socket to 127.0.0.1:port.
class client {
 public:
  client(std::uint16_t port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    session_ = libssh2_session_init();
    REQUIRE(session_);
    libssh2_session_set_blocking(session_, 1);
    libssh2_session_set_timeout(session_, 20000);
  }
  ~client() {
    if (session_) {
      libssh2_session_disconnect(session_, "done");
      libssh2_session_free(session_);
    }
  }
  LIBSSH2_SESSION* get() { return session_; }
  int fd() { return static_cast<int>(socket_.native_handle()); }

 private:
  net::io_context ioc_;
  tcp::socket socket_;
  LIBSSH2_SESSION* session_ = nullptr;
};

void write_all(LIBSSH2_CHANNEL* ch, LIBSSH2_SESSION* s, const char* data, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    const auto w = libssh2_channel_write(ch, data + done, n - done);
    INFO(last_error(s));
    REQUIRE(w > 0);
    done += static_cast<std::size_t>(w);
  }
}

std::string read_exactly(LIBSSH2_CHANNEL* ch, LIBSSH2_SESSION* s, std::size_t n) {
  std::string out;
  std::vector<char> buf(64 * 1024);
  while (out.size() < n) {
    const auto r = libssh2_channel_read(ch, buf.data(), std::min(buf.size(), n - out.size()));
    INFO(last_error(s));
    REQUIRE(r > 0);
    out.append(buf.data(), static_cast<std::size_t>(r));
  }
  return out;
}

}  // namespace

TEST_CASE(
    "libssh2 connects to our SSH server, checks its host key, logs in with none and forwards 1 MB through "
    "direct-tcpip") {
  libssh2_library lib;
  const auto ciphers = supported(LIBSSH2_METHOD_CRYPT_CS);
  const auto macs = supported(LIBSSH2_METHOD_MAC_CS);
  const auto kexes = supported(LIBSSH2_METHOD_KEX);
  INFO("libssh2 " << libssh2_version(0));
  REQUIRE(has(kexes, "ecdh-sha2-nistp384"));
  REQUIRE(has(ciphers, "aes256-ctr"));
  REQUIRE(has(macs, "hmac-sha2-256"));

  std::vector<suite> suites = {{"ecdh-sha2-nistp384", "aes256-ctr", "hmac-sha2-256"},
                               {"ecdh-sha2-nistp256", "aes256-ctr", "hmac-sha2-512"}};
  if (has(ciphers, "aes256-gcm@openssh.com"))
    suites.push_back({"ecdh-sha2-nistp384", "aes256-gcm@openssh.com", "hmac-sha2-256"});
  else
    WARN("libssh2 " << libssh2_version(0) << " has no aes256-gcm@openssh.com (added in 1.11): not tested");
  if (has(macs, "hmac-sha2-512-etm@openssh.com"))
    suites.push_back({"ecdh-sha2-nistp384", "aes256-ctr", "hmac-sha2-512-etm@openssh.com"});
  else
    WARN("libssh2 " << libssh2_version(0) << " has no -etm@openssh.com MACs: not tested");

  for (const auto& s : suites) {
    INFO(s.kex << " " << s.cipher << " " << s.mac);
    our_server server;
    client c(server.port());
    auto* session = c.get();
    REQUIRE(libssh2_session_method_pref(session, LIBSSH2_METHOD_KEX, s.kex.c_str()) == 0);
    REQUIRE(libssh2_session_method_pref(session, LIBSSH2_METHOD_HOSTKEY, "ecdsa-sha2-nistp384") == 0);
    for (int m : {LIBSSH2_METHOD_CRYPT_CS, LIBSSH2_METHOD_CRYPT_SC})
      REQUIRE(libssh2_session_method_pref(session, m, s.cipher.c_str()) == 0);
    for (int m : {LIBSSH2_METHOD_MAC_CS, LIBSSH2_METHOD_MAC_SC})
      REQUIRE(libssh2_session_method_pref(session, m, s.mac.c_str()) == 0);

    const int rc = libssh2_session_handshake(session, c.fd());
    INFO(last_error(session));
    REQUIRE(rc == 0);
    CHECK(std::string(libssh2_session_methods(session, LIBSSH2_METHOD_KEX)) == s.kex);
    CHECK(std::string(libssh2_session_methods(session, LIBSSH2_METHOD_HOSTKEY)) == "ecdsa-sha2-nistp384");
    CHECK(std::string(libssh2_session_methods(session, LIBSSH2_METHOD_CRYPT_CS)) == s.cipher);
    CHECK(std::string(libssh2_session_methods(session, LIBSSH2_METHOD_CRYPT_SC)) == s.cipher);
    if (s.cipher != "aes256-gcm@openssh.com") {
      CHECK(std::string(libssh2_session_methods(session, LIBSSH2_METHOD_MAC_CS)) == s.mac);
      CHECK(std::string(libssh2_session_methods(session, LIBSSH2_METHOD_MAC_SC)) == s.mac);
    }

    // The host key libssh2 saw is ours: the blob and its SHA-256 fingerprint.
    std::size_t key_len = 0;
    int key_type = 0;
    const char* key = libssh2_session_hostkey(session, &key_len, &key_type);
    REQUIRE(key);
    CHECK(key_type == LIBSSH2_HOSTKEY_TYPE_ECDSA_384);
    CHECK(ssh::bytes(key, key + key_len) == server.host_key->public_blob());
    const char* fingerprint = libssh2_hostkey_hash(session, LIBSSH2_HOSTKEY_HASH_SHA256);
    REQUIRE(fingerprint);
    const auto expected = ssh::digest(ssh::hash_kind::sha256, server.host_key->public_blob());
    CHECK(ssh::bytes(fingerprint, fingerprint + 32) == expected);

    // `none` authentication: the method list query itself logs in.
    const char* methods = libssh2_userauth_list(session, "tunnel", 6);
    CHECK(methods == nullptr);
    CHECK(libssh2_userauth_authenticated(session) == 1);
    {
      std::lock_guard<std::mutex> g(server.handler.mtx);
      CHECK(server.handler.ready);
      CHECK(server.handler.kex == s.kex);
    }

    // direct-tcpip to the echo server: 1 MB in 128 KiB rounds, byte-exact.
    LIBSSH2_CHANNEL* ch =
        libssh2_channel_direct_tcpip_ex(session, "127.0.0.1", server.echo.port(), "127.0.0.1", 40000);
    INFO(last_error(session));
    REQUIRE(ch);
    const std::size_t total = 1024 * 1024, round = 128 * 1024;
    const auto payload = random_block(total, 17);
    std::string echoed;
    for (std::size_t off = 0; off < total; off += round) {
      write_all(ch, session, payload.data() + off, round);
      echoed += read_exactly(ch, session, round);
    }
    CHECK(echoed.size() == total);
    CHECK(echoed == payload);

    // A second channel in the same session, while the first one stays open.
    LIBSSH2_CHANNEL* second =
        libssh2_channel_direct_tcpip_ex(session, "127.0.0.1", server.echo.port(), "127.0.0.1", 40001);
    REQUIRE(second);
    write_all(second, session, "ping", 4);
    CHECK(read_exactly(second, session, 4) == "ping");
    libssh2_channel_free(second);

    libssh2_channel_send_eof(ch);
    libssh2_channel_close(ch);
    libssh2_channel_free(ch);
  }
}

TEST_CASE("libssh2 sees a channel open failure for a refused or forbidden direct-tcpip target") {
  libssh2_library lib;
  our_server server;
  client c(server.port());
  auto* session = c.get();
  REQUIRE(libssh2_session_method_pref(session, LIBSSH2_METHOD_KEX, "ecdh-sha2-nistp384") == 0);
  const int rc = libssh2_session_handshake(session, c.fd());
  INFO(last_error(session));
  REQUIRE(rc == 0);
  REQUIRE(libssh2_userauth_list(session, "tunnel", 6) == nullptr);
  REQUIRE(libssh2_userauth_authenticated(session) == 1);

  const auto port = sb::test::free_port();
  LIBSSH2_CHANNEL* refused = libssh2_channel_direct_tcpip_ex(session, "127.0.0.1", port, "127.0.0.1", 40000);
  CHECK(refused == nullptr);
  CHECK(libssh2_session_last_errno(session) == LIBSSH2_ERROR_CHANNEL_FAILURE);
  INFO(last_error(session));

  LIBSSH2_CHANNEL* forbidden = libssh2_channel_direct_tcpip_ex(session, "192.0.2.1", 80, "127.0.0.1", 40000);
  CHECK(forbidden == nullptr);
  CHECK(libssh2_session_last_errno(session) == LIBSSH2_ERROR_CHANNEL_FAILURE);

  // The session survives both refusals.
  LIBSSH2_CHANNEL* ok =
      libssh2_channel_direct_tcpip_ex(session, "127.0.0.1", server.echo.port(), "127.0.0.1", 40002);
  INFO(last_error(session));
  REQUIRE(ok);
  write_all(ok, session, "still here", 10);
  CHECK(read_exactly(ok, session, 10) == "still here");
  libssh2_channel_free(ok);
}

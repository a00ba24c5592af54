// Standard SSH conformance: OpenSSH's `ssh` client against our SSH server side, and our SSH client against a
// throwaway `sshd`, for the standard parts (kex, ciphers, auth, direct-tcpip, tcpip-forward /
// forwarded-tcpip).
#include <unistd.h>

#include <boost/asio.hpp>
#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <future>
#include <set>

#include "support/gateway_fixture.hpp"
#include "support/process.hpp"
#include "support/tunnel_fixture.hpp"
#include "tunnel/io/ssh_link.hpp"

using namespace sb::test;
namespace net = boost::asio;
namespace ssh = sb::tunnel::ssh;
using tcp = net::ip::tcp;
using sb::tunnel::io::ssh_link;

namespace {

// The shared test services (tests/support/tunnel_fixture.hpp) under the names this file uses.
using io_thread = sb::test::io_threads;
using echo_server = sb::test::echo_service;

/// Sends `data` to 127.0.0.1:port and reads the same number of bytes back.
std::string round_trip(std::uint16_t port, const std::string& data) {
  net::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  net::write(s, net::buffer(data));
  std::string back(data.size(), '\0');
  net::read(s, net::buffer(back));
  return back;
}

std::string random_text(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7919 + i / 13) % 26);
  return s;
}

/// Our SSH server side for OpenSSH's client: auth none, direct-tcpip to 127.0.0.1 only.
class test_server_handler : public sb::tunnel::io::ssh_link_handler {
 public:
  explicit test_server_handler(net::io_context& ioc) : ioc_(ioc) {}
  void on_channel_open(ssh_link& link, const ssh::ev::channel_open& open) override {
    if (open.type != "direct-tcpip") return ssh_link_handler::on_channel_open(link, open);
    ssh::reader r(open.data);
    const auto host = r.string();
    const auto port = r.u32();
    if (!r.ok() || host != "127.0.0.1" || port > 65535)
      return link.session().reject_channel(open.id, ssh::open_failure::administratively_prohibited,
                                           "127.0.0.1 only");
    tcp::socket socket(link.session().ready() ? net::make_strand(ioc_) : net::make_strand(ioc_));
    boost::system::error_code ec;
    socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<std::uint16_t>(port)), ec);
    if (ec) return link.session().reject_channel(open.id, ssh::open_failure::connect_failed, ec.message());
    link.session().accept_channel(open.id);
    link.bridge(open.id, std::move(socket));
  }

 private:
  net::io_context& ioc_;
};

}  // namespace

TEST_CASE("OpenSSH's ssh client negotiates with our SSH server and forwards a port through direct-tcpip") {
  const std::vector<std::vector<std::string>> variants = {
      {"-o", "KexAlgorithms=ecdh-sha2-nistp384", "-o", "Ciphers=aes256-gcm@openssh.com"},
      {"-o", "KexAlgorithms=ecdh-sha2-nistp256", "-o", "Ciphers=aes256-ctr", "-o", "MACs=hmac-sha2-256"},
      {"-o", "Ciphers=aes256-ctr", "-o", "MACs=hmac-sha2-512-etm@openssh.com"},
  };
  for (const auto& variant : variants) {
    io_thread io;
    echo_server echo(io.ioc);
    auto host_key = std::make_shared<ssh::ecdsa_key>(ssh::ecdsa_key::generate());
    test_server_handler handler(io.ioc);
    tcp::acceptor acceptor(io.ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    std::vector<std::shared_ptr<ssh_link>> links;
    std::mutex links_mtx;
    std::function<void()> accept = [&] {
      acceptor.async_accept(net::make_strand(io.ioc), [&](boost::system::error_code ec, tcp::socket s) {
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
    };
    net::post(io.ioc, accept);

    temp_dir dir;
    {
      std::ofstream known(dir.path() / "known_hosts");
      known << "[127.0.0.1]:" << acceptor.local_endpoint().port() << " " << host_key->openssh_public_line()
            << "\n";
    }
    const auto local = free_port();
    std::vector<std::string> args = {
        "/usr/bin/ssh", "-N",
        "-p",           std::to_string(acceptor.local_endpoint().port()),
        "-o",           "BatchMode=yes",
        "-o",           "StrictHostKeyChecking=yes",
        "-o",           "UserKnownHostsFile=" + (dir.path() / "known_hosts").string(),
        "-o",           "ExitOnForwardFailure=yes",
        "-F",           "/dev/null",
        "-L",           std::to_string(local) + ":127.0.0.1:" + std::to_string(echo.port())};
    args.insert(args.end(), variant.begin(), variant.end());
    args.push_back("tunnel@127.0.0.1");
    child_process ssh_client(args, dir.path());
    INFO(variant[1] << " " << variant[3]);
    std::string reply;
    const auto payload = random_text(300000);
    REQUIRE(eventually(
        [&] {
          try {
            reply = round_trip(local, payload);
            return true;
          } catch (const std::exception&) {
            return false;
          }
        },
        10s));
    INFO(ssh_client.err());
    CHECK(reply == payload);
    // A second connection through the same session works as well.
    CHECK(round_trip(local, "again") == "again");
    ssh_client.signal(SIGTERM);
    ssh_client.wait_exit(5s);
    std::lock_guard<std::mutex> g(links_mtx);
    for (auto& l : links) l->close();
  }
}

namespace {

/// Our SSH client side facing sshd: forwarded-tcpip channels are echoed back by us.
class test_client_handler : public sb::tunnel::io::ssh_link_handler {
 public:
  std::promise<void> ready;
  std::promise<std::uint32_t> forward_port;
  std::promise<std::string> echoed;
  std::string collected;
  std::size_t expected = 0;
  std::uint32_t direct_channel = 0;

  void on_ready(ssh_link&) override { ready.set_value(); }
  void on_global_reply(ssh_link&, const ssh::ev::global_reply& r) override {
    ssh::reader rd(r.data);
    forward_port.set_value(r.success ? rd.u32() : 0);
  }
  void on_channel_open(ssh_link& link, const ssh::ev::channel_open& open) override {
    if (open.type != "forwarded-tcpip") return ssh_link_handler::on_channel_open(link, open);
    link.session().accept_channel(open.id);
    echo_channels.insert(open.id);
  }
  void on_channel_data(ssh_link& link, std::uint32_t id, ssh::bytes& data) override {
    link.session().consumed(id, data.size());
    if (echo_channels.count(id)) {
      link.send(id, data);
      return;
    }
    collected.append(data.begin(), data.end());
    if (collected.size() >= expected) echoed.set_value(collected);
  }
  void on_channel_eof(ssh_link& link, std::uint32_t id) override {
    if (echo_channels.count(id)) link.session().close_channel(id);
  }
  std::set<std::uint32_t> echo_channels;
};

}  // namespace

TEST_CASE("our SSH client authenticates to OpenSSH's sshd and uses direct-tcpip and tcpip-forward") {
  // The test command installs openssh-server and runs as root: missing either is a failure, never a silent pass.
  REQUIRE(::geteuid() == 0);
  REQUIRE(access("/usr/sbin/sshd", X_OK) == 0);
  temp_dir dir;
  const auto host_key = (dir.path() / "host_key").string();
  REQUIRE(std::system(("ssh-keygen -q -t ecdsa -b 384 -N '' -f " + host_key + " >/dev/null").c_str()) == 0);
  auto client_key = std::make_shared<ssh::ecdsa_key>(ssh::ecdsa_key::generate());
  {
    std::ofstream keys(dir.path() / "authorized_keys");
    keys << client_key->openssh_public_line() << "\n";
  }
  const auto port = free_port();
  {
    std::ofstream cfg(dir.path() / "sshd_config");
    cfg << "Port " << port << "\nListenAddress 127.0.0.1\nHostKey " << host_key << "\nAuthorizedKeysFile "
        << (dir.path() / "authorized_keys").string() << "\nPidFile " << (dir.path() / "sshd.pid").string()
        << "\nUsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
           "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nAllowTcpForwarding yes\n"
           "KexAlgorithms ecdh-sha2-nistp384,ecdh-sha2-nistp256\nHostKeyAlgorithms ecdsa-sha2-nistp384\n"
           "Ciphers aes256-gcm@openssh.com,aes256-ctr\nLogLevel DEBUG1\n";
  }
  std::filesystem::create_directories("/run/sshd");
  child_process sshd({"/usr/sbin/sshd", "-D", "-e", "-f", (dir.path() / "sshd_config").string()}, dir.path());

  io_thread io;
  echo_server echo(io.ioc);
  test_client_handler handler;
  std::shared_ptr<ssh_link> link;
  REQUIRE(eventually(
      [&] {
        tcp::socket s(net::make_strand(io.ioc));
        boost::system::error_code ec;
        s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
        if (ec) return false;
        ssh::session_config cfg;
        cfg.role = ssh::role::client;
        cfg.user = "root";
        cfg.client_key = client_key;
        link = std::make_shared<ssh_link>(sb::tunnel::io::make_tcp_stream(std::move(s)), cfg, handler);
        link->start();
        return true;
      },
      10s));
  INFO(sshd.err());
  REQUIRE(handler.ready.get_future().wait_for(10s) == std::future_status::ready);

  // direct-tcpip: sshd connects to our echo server for us.
  const auto payload = random_text(200000);
  handler.expected = payload.size();
  auto echoed = handler.echoed.get_future();
  link->post([&] {
    handler.direct_channel =
        link->session().open_channel("direct-tcpip", ssh::writer()
                                                         .string(std::string_view("127.0.0.1"))
                                                         .u32(echo.port())
                                                         .string(std::string_view("127.0.0.1"))
                                                         .u32(1)
                                                         .take());
    link->send(handler.direct_channel, ssh::to_bytes(payload));
    link->flush();
  });
  REQUIRE(echoed.wait_for(10s) == std::future_status::ready);
  CHECK(echoed.get() == payload);

  // tcpip-forward: sshd listens, and each connection comes back to us as a forwarded-tcpip channel.
  auto forwarded = handler.forward_port.get_future();
  link->post([&] {
    link->session().global_request("tcpip-forward", true,
                                   ssh::writer().string(std::string_view("127.0.0.1")).u32(0).take());
    link->flush();
  });
  REQUIRE(forwarded.wait_for(10s) == std::future_status::ready);
  const auto remote_port = forwarded.get();
  REQUIRE(remote_port != 0);
  CHECK(round_trip(static_cast<std::uint16_t>(remote_port), "through sshd and back") ==
        "through sshd and back");
  link->close();
  sshd.signal(SIGTERM);
}

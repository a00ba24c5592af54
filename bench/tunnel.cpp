// bench_tunnel: throughput and connection setup latency of a forwarded TCP port through our Dev Tunnels
// relay, host and client (V2 and V1), side by side with direct TCP and, as a reference SSH tunnel, OpenSSH
// `ssh -L`.
//
//   cmake --build build --target bench_tunnel && ./build/bench/bench_tunnel [--mib 200] [--streams 16]
//       [--samples 200] [--timeout 60] [--no-ssh 1] [--only direct,v2,v1,ssh] [--force-nodelay 0|1|2|3]
//
// A sink server on 127.0.0.1 (own thread) reads an 8-byte big-endian length L, then L bytes, and answers one
// byte; a connection may repeat that. Each path to it is measured the same way, from this process with
// blocking sockets:
//   - 1 stream: one connection sends --mib MiB; MB/s (10^6 bytes/s) from connect to the sink's answer;
//   - N streams: --streams connections at once share --mib MiB; MB/s over the slowest;
//   - setup: --samples times connect + 9 bytes + the 1-byte answer on a fresh connection (through a tunnel
//   this
//     is the whole channel open: client -> relay -> host -> connect to the sink), p50/p99 in ms.
// Paths: (a) direct TCP; (b) V2 and (c) V1: our relay, host and client in this process on one two-thread
// io_context, as in tests/support/tunnel_fixture (ws://, so V2's SSH runs the `none` key exchange while V1 is
// encrypted end to end with aes256-gcm between client and host); (d) `ssh -N -L` to a throwaway sshd on
// 127.0.0.1 with aes256-gcm@openssh.com (only as root with /usr/sbin/sshd; skipped otherwise or with
// --no-ssh). The tables end with ratios vs direct TCP and vs ssh -L. --force-nodelay is a diagnostic: it sets
// TCP_NODELAY on the relay WebSockets of this process (1 all, 2 the relay's ends, 3 the host's and client's
// ends), which our code leaves with Nagle's algorithm on. Defaults take about 45 s on 2 cores. Child
// processes (sshd, ssh) and temporary directories are removed on every way out.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio.hpp>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "bench/common.hpp"
#include "support/tunnel_fixture.hpp"

namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace sb::bench;
using sb::tunnel::io::protocol_choice;
namespace ssh = sb::tunnel::ssh;

namespace {

struct options {
  std::uint64_t bytes = 200ull << 20;
  int streams = 16;
  int samples = 200;
  int timeout_s = 60;
  int force_nodelay = 0;
};

/// Diagnostic (--force-nodelay): sets TCP_NODELAY on the relay WebSockets of this process, which leave
/// Nagle's algorithm on: 1 all of them, 2 only the relay's accepted ends, 3 only the host's and client's
/// ends.
void force_nodelay(int mode, std::uint16_t relay_port) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    int fd = -1;
    try {
      fd = std::stoi(e.path().filename().string());
    } catch (...) {
      continue;
    }
    sockaddr_in local{}, peer{};
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0 || local.sin_family != AF_INET)
      continue;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) continue;
    const bool relay_end = ntohs(local.sin_port) == relay_port, peer_end = ntohs(peer.sin_port) == relay_port;
    if (!(mode == 1 ? relay_end || peer_end : mode == 2 ? relay_end : peer_end)) continue;
    int one = 1;
    if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0) ++n;
  }
  std::fprintf(stderr, "--force-nodelay %d: TCP_NODELAY set on %d relay WebSocket ends\n", mode, n);
}

// -- the sink
// ------------------------------------------------------------------------------------------------

class sink_server {
 public:
  sink_server() : acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~sink_server() {
    ioc_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return port_; }

 private:
  struct conn : std::enable_shared_from_this<conn> {
    tcp::socket s;
    std::array<unsigned char, 8> head{};
    std::vector<char> buf = std::vector<char>(256 * 1024);
    std::uint64_t left = 0;
    char ok = 'k';
    explicit conn(tcp::socket sock) : s(std::move(sock)) {
      boost::system::error_code ec;
      s.set_option(tcp::no_delay(true), ec);
    }
    void read_head() {
      net::async_read(s, net::buffer(head),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        if (ec) return;
                        self->left = 0;
                        for (auto b : self->head) self->left = (self->left << 8) | b;
                        self->read_body();
                      });
    }
    void read_body() {
      if (left == 0) {
        net::async_write(s, net::buffer(&ok, 1),
                         [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                           if (!ec) self->read_head();
                         });
        return;
      }
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
      s.async_read_some(net::buffer(buf.data(), want),
                        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                          if (ec) return;
                          self->left -= n;
                          self->read_body();
                        });
    }
  };
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec) return;
      std::make_shared<conn>(std::move(s))->read_head();
      accept();
    });
  }
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// -- blocking client side
// ------------------------------------------------------------------------------------

struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

int connect_to(std::uint16_t port, int timeout_s) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  timeval tv{timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) +
                             " failed: " + std::strerror(errno));
  }
  return fd;
}

void write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const auto w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0)
      throw std::runtime_error(std::string("send failed: ") + (w == 0 ? "closed" : std::strerror(errno)));
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

void read_answer(int fd) {
  char c = 0;
  for (;;) {
    const auto r = ::recv(fd, &c, 1, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r == 1 && c == 'k') return;
    throw std::runtime_error(r == 0 ? "closed before the answer"
                                    : (r < 0 ? std::string("recv: ") + std::strerror(errno) : "bad answer"));
  }
}

std::array<char, 8> header(std::uint64_t n) {
  std::array<char, 8> h{};
  for (int i = 7; i >= 0; --i, n >>= 8) h[static_cast<std::size_t>(i)] = static_cast<char>(n & 0xff);
  return h;
}

/// Sends `bytes` on a new connection and waits for the sink's answer.
void transfer(std::uint16_t port, std::uint64_t bytes, int timeout_s) {
  static const std::vector<char> chunk = [] {
    std::vector<char> c(256 * 1024);
    for (std::size_t i = 0; i < c.size(); ++i) c[i] = static_cast<char>((i * 131) & 0xff);
    return c;
  }();
  fd_guard g{connect_to(port, timeout_s)};
  const auto h = header(bytes);
  write_all(g.fd, h.data(), h.size());
  for (std::uint64_t left = bytes; left > 0;) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
    write_all(g.fd, chunk.data(), n);
    left -= n;
  }
  read_answer(g.fd);
}

/// MB/s for `streams` concurrent connections sharing `bytes`.
double throughput(std::uint16_t port, int streams, std::uint64_t bytes, int timeout_s) {
  const auto per = bytes / static_cast<std::uint64_t>(streams);
  const auto t0 = clock_type::now();
  std::vector<std::future<void>> all;
  for (int i = 0; i < streams; ++i)
    all.push_back(std::async(std::launch::async, [=] { transfer(port, per, timeout_s); }));
  std::string error;
  for (auto& f : all) {
    try {
      f.get();
    } catch (const std::exception& e) {
      if (error.empty()) error = e.what();
    }
  }
  if (!error.empty()) throw std::runtime_error(error);
  return static_cast<double>(per * static_cast<std::uint64_t>(streams)) / seconds_since(t0) / 1e6;
}

/// Setup latencies in ms: connect + 9 bytes + 1-byte answer on a fresh connection.
std::vector<double> setup_latencies(std::uint16_t port, int samples, int timeout_s) {
  std::vector<double> out;
  const auto h = header(1);
  std::array<char, 9> msg{};
  std::copy(h.begin(), h.end(), msg.begin());
  msg[8] = 'x';
  for (int i = 0; i < samples; ++i) {
    const auto t0 = clock_type::now();
    fd_guard g{connect_to(port, timeout_s)};
    write_all(g.fd, msg.data(), msg.size());
    read_answer(g.fd);
    out.push_back(seconds_since(t0) * 1e3);
  }
  return out;
}

struct row {
  std::string name;
  std::string error;  // empty: measured
  bool skipped = false;
  double one = 0, many = 0, p50 = 0, p99 = 0;
};

row measure(const std::string& name, std::uint16_t port, const options& o) {
  row r;
  r.name = name;
  std::fprintf(stderr, "[%s] measuring through 127.0.0.1:%u ...\n", name.c_str(), port);
  try {
    transfer(port, 1 << 20, o.timeout_s);  // warm-up: first channel, buffers, windows
    r.one = throughput(port, 1, o.bytes, o.timeout_s);
    std::fprintf(stderr, "[%s] 1 stream: %.1f MB/s\n", name.c_str(), r.one);
    r.many = throughput(port, o.streams, o.bytes, o.timeout_s);
    std::fprintf(stderr, "[%s] %d streams: %.1f MB/s\n", name.c_str(), o.streams, r.many);
    auto lat = setup_latencies(port, o.samples, o.timeout_s);
    r.p50 = percentile(lat, 50);
    r.p99 = percentile(lat, 99);
    std::fprintf(stderr, "[%s] setup p50 %.3f ms, p99 %.3f ms\n", name.c_str(), r.p50, r.p99);
  } catch (const std::exception& e) {
    r.error = e.what();
    std::fprintf(stderr, "[%s] failed: %s\n", name.c_str(), e.what());
  }
  return r;
}

// -- our tunnel
// ----------------------------------------------------------------------------------------------

row through_tunnel(const std::string& name, protocol_choice proto, std::uint16_t target, const options& o) {
  sb::test::relay_fixture relay;
  remove_on_interrupt(relay.data.path());
  std::promise<void> host_up, client_up;
  std::atomic<bool> host_once{false}, client_once{false};
  auto host_key = std::make_shared<ssh::ecdsa_key>(ssh::ecdsa_key::generate());
  sb::tunnel::io::host_options h;
  h.relay_uri = relay.api->host_relay_uri(sb::test::relay_fixture::tunnel_id);
  h.token = relay.token("host");
  h.protocol = proto;
  h.ports = {target};
  h.host_key = host_key;
  sb::tunnel::io::relay_peer_callbacks hc;
  hc.connected = [&](sb::tunnel::protocol_version) {
    if (!host_once.exchange(true)) host_up.set_value();
  };
  auto host = std::make_shared<sb::tunnel::io::host_peer>(relay.io.ioc, h, hc);
  sb::tunnel::io::client_options c;
  c.relay_uri = relay.api->client_relay_uri(sb::test::relay_fixture::tunnel_id);
  c.token = relay.token("connect");
  c.protocol = proto;
  c.port_map = {{target, 0}};
  c.host_public_keys = {ssh::base64_encode(host_key->public_blob()),
                        ssh::base64_encode(relay.relay_key->public_blob())};
  sb::tunnel::io::relay_peer_callbacks cc;
  cc.connected = [&](sb::tunnel::protocol_version) {
    if (!client_once.exchange(true)) client_up.set_value();
  };
  auto client = std::make_shared<sb::tunnel::io::client_peer>(relay.io.ioc, c, cc);
  row r;
  r.name = name;
  host->start();
  if (host_up.get_future().wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    r.error = "host did not connect";
  } else {
    client->start();
    std::uint16_t local = 0;
    if (client_up.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready)
      sb::test::eventually(
          [&] {
            auto l = client->listening();
            auto it = l.find(target);
            if (it == l.end()) return false;
            local = it->second;
            return true;
          },
          std::chrono::seconds(10));
    if (!local) {
      r.error = "client did not listen";
    } else {
      if (o.force_nodelay) force_nodelay(o.force_nodelay, relay.port());
      r = measure(name, local, o);
    }
  }
  client->stop();
  host->stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  relay.stop();
  return r;
}

// -- ssh -L
// --------------------------------------------------------------------------------------------------

std::uint16_t free_port() {
  net::io_context ioc;
  tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

bool port_open(std::uint16_t port) {
  try {
    fd_guard g{connect_to(port, 1)};
    return true;
  } catch (...) {
    return false;
  }
}

row through_ssh(std::uint16_t target, const options& o) {
  row r;
  r.name = "ssh -L (OpenSSH, aes256-gcm)";
  const std::string ssh_bin = find_on_path("ssh"), keygen = find_on_path("ssh-keygen");
  if (::geteuid() != 0 || ::access("/usr/sbin/sshd", X_OK) != 0 || ssh_bin.empty() || keygen.empty()) {
    r.skipped = true;
    r.error = "skipped: needs root, /usr/sbin/sshd, ssh and ssh-keygen";
    return r;
  }
  scratch_dir dir;
  const auto d = dir.path().string();
  if (std::system((keygen + " -q -t ecdsa -b 384 -N '' -f " + d + "/host_key >/dev/null").c_str()) != 0 ||
      std::system((keygen + " -q -t ed25519 -N '' -f " + d + "/user_key >/dev/null").c_str()) != 0) {
    r.error = "ssh-keygen failed";
    return r;
  }
  std::filesystem::copy_file(d + "/user_key.pub", d + "/authorized_keys");
  const auto sshd_port = free_port();
  {
    std::ofstream cfg(d + "/sshd_config");
    cfg << "Port " << sshd_port << "\nListenAddress 127.0.0.1\nHostKey " << d
        << "/host_key\nAuthorizedKeysFile " << d << "/authorized_keys\nPidFile " << d << "/sshd.pid\n"
        << "UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
           "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nAllowTcpForwarding yes\n"
           "Ciphers aes256-gcm@openssh.com\nLogLevel ERROR\n";
  }
  std::filesystem::create_directories("/run/sshd");
  child sshd({"/usr/sbin/sshd", "-D", "-e", "-f", d + "/sshd_config"}, d + "/sshd.log");
  if (!sb::test::eventually([&] { return port_open(sshd_port); }, std::chrono::seconds(10))) {
    r.error = "sshd did not listen (see its log)";
    return r;
  }
  const auto local = free_port();
  child tunnel({ssh_bin,
                "-N",
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ExitOnForwardFailure=yes",
                "-o",
                "Ciphers=aes256-gcm@openssh.com",
                "-o",
                "Compression=no",
                "-i",
                d + "/user_key",
                "-p",
                std::to_string(sshd_port),
                "-L",
                "127.0.0.1:" + std::to_string(local) + ":127.0.0.1:" + std::to_string(target),
                "root@127.0.0.1"},
               d + "/ssh.log");
  if (!sb::test::eventually([&] { return !tunnel.running() || port_open(local); },
                            std::chrono::seconds(10)) ||
      !tunnel.running()) {
    std::ifstream log(d + "/ssh.log");
    std::string line;
    std::getline(log, line);
    r.error = "ssh -L did not start: " + line;
    return r;
  }
  auto m = measure(r.name, local, o);
  tunnel.stop();
  sshd.stop();
  return m;
}

std::string num(const row& r, double v, const char* f) { return r.error.empty() ? fmt_num(f, v) : "-"; }

}  // namespace

int main(int argc, char** argv) {
  detail::install_handlers();  // first: every thread started later inherits the blocked signals
  static const char* usage =
      "usage: bench_tunnel [--mib MIB] [--streams N] [--samples N] [--timeout SECONDS] [--no-ssh 0|1]\n"
      "                    [--force-nodelay 0|1|2|3] [--only direct,v2,v1,ssh]\n";
  flags f(argc, argv,
          {{"mib", "200"},
           {"streams", "16"},
           {"samples", "200"},
           {"timeout", "60"},
           {"no-ssh", "0"},
           {"force-nodelay", "0"},
           {"only", ""}},
          usage);
  options o;
  o.bytes = static_cast<std::uint64_t>(f.integer("mib")) << 20;
  o.streams = static_cast<int>(f.integer("streams"));
  o.samples = static_cast<int>(f.integer("samples"));
  o.timeout_s = static_cast<int>(f.integer("timeout"));
  o.force_nodelay = static_cast<int>(f.integer("force-nodelay"));
  if (o.bytes == 0 || o.streams < 1 || o.samples < 1 || o.timeout_s < 1 || o.force_nodelay < 0 ||
      o.force_nodelay > 3) {
    std::fprintf(stderr, "%s", usage);
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);

  sink_server sink;
  std::vector<row> rows;
  const std::string only = "," + f.text("only") + ",";
  auto wanted = [&](const char* key) {
    return f.text("only").empty() || only.find(std::string(",") + key + ",") != std::string::npos;
  };
  auto not_run = [](const char* name, const char* why) {
    row r;
    r.name = name;
    r.skipped = true;
    r.error = why;
    return r;
  };
  rows.push_back(wanted("direct") ? measure("direct TCP", sink.port(), o)
                                  : not_run("direct TCP", "skipped: --only"));
  rows.push_back(
      wanted("v2") ? through_tunnel("switchboard V2 (relay+host+client)", protocol_choice::v2, sink.port(), o)
                   : not_run("switchboard V2 (relay+host+client)", "skipped: --only"));
  rows.push_back(
      wanted("v1") ? through_tunnel("switchboard V1 (relay+host+client)", protocol_choice::v1, sink.port(), o)
                   : not_run("switchboard V1 (relay+host+client)", "skipped: --only"));
  if (f.integer("no-ssh"))
    rows.push_back(not_run("ssh -L", "skipped: --no-ssh"));
  else if (!wanted("ssh"))
    rows.push_back(not_run("ssh -L", "skipped: --only"));
  else
    rows.push_back(through_ssh(sink.port(), o));

  const auto mb = static_cast<double>(o.bytes) / (1 << 20);
  static const char* diag[] = {"", "; DIAGNOSTIC: TCP_NODELAY forced on every relay WebSocket",
                               "; DIAGNOSTIC: TCP_NODELAY forced on the relay's ends",
                               "; DIAGNOSTIC: TCP_NODELAY forced on the host's and client's ends"};
  std::printf(
      "\nbench_tunnel: 1 stream of %.0f MiB, %d concurrent streams sharing %.0f MiB, %d setup samples%s\n",
      mb, o.streams, mb, o.samples, diag[o.force_nodelay >= 0 && o.force_nodelay <= 3 ? o.force_nodelay : 0]);
  std::printf("machine: %s\n\n", machine_line().c_str());
  std::printf("| path | 1 stream MB/s | %d streams MB/s | setup p50 ms | setup p99 ms |\n", o.streams);
  std::printf("|---|---:|---:|---:|---:|\n");
  for (const auto& r : rows)
    std::printf("| %s | %s | %s | %s | %s |\n", r.name.c_str(), num(r, r.one, "%.1f").c_str(),
                num(r, r.many, "%.1f").c_str(), num(r, r.p50, "%.3f").c_str(), num(r, r.p99, "%.3f").c_str());
  auto ratios = [&](const row& base, const char* label) {
    std::printf("\nratios vs %s (throughput < 1: slower; setup > 1: slower)\n\n", label);
    std::printf("| path | 1 stream | %d streams | setup p50 | setup p99 |\n|---|---:|---:|---:|---:|\n",
                o.streams);
    for (const auto& r : rows) {
      if (&r == &base) continue;
      const bool ok = r.error.empty() && base.error.empty();
      auto q = [&](double a, double b) { return ok ? ratio(a, b) : std::string("-"); };
      std::printf("| %s | %s | %s | %s | %s |\n", r.name.c_str(), q(r.one, base.one).c_str(),
                  q(r.many, base.many).c_str(), q(r.p50, base.p50).c_str(), q(r.p99, base.p99).c_str());
    }
  };
  ratios(rows[0], "direct TCP");
  if (rows[3].error.empty()) ratios(rows[3], "ssh -L");
  for (const auto& r : rows)
    if (!r.error.empty()) std::printf("%s: %s\n", r.name.c_str(), r.error.c_str());
  bool failed = false;
  for (const auto& r : rows) failed = failed || (!r.error.empty() && !r.skipped);
  return failed ? 1 : 0;
}

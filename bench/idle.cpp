// bench_idle: many idle authenticated connections over a cluster of real `switchboard serve` processes.
//
//   cmake --build build --target bench_idle switchboard && ./build/bench/bench_idle [--nodes 6]
//       [--connections 50000] [--workers 4] [--in-flight 200] [--timeout 300]
//
// Starts a throwaway nats-server and --nodes gateway nodes on 127.0.0.1 (token auth, one cluster), then
// --workers copies of itself (`--worker`), each opening its share of the connections from its own loopback
// source address (127.0.0.2, .3, ...) round robin over the nodes: upgrade, connect, auth, then an outstanding
// read per connection so pings are answered and the connection stays. One process may hold 20,000 open files
// here, so no process, load generator or node, holds more than that. Measured: connects/s (upgrade to
// auth_success, all workers together), each node's RSS before and after (per connection), and the cluster's
// total as `admin stats` on one node reports it (connections summed over the heartbeats). Everything is
// stopped on every way out (the children die with this process: PR_SET_PDEATHSIG).
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/common.hpp"
#include "transport/admin_socket.hpp"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using namespace sb::bench;

namespace {

constexpr const char* bench_token = "bench-idle-token";

// -- the worker: opens its connections and holds them ------------------------------------------------------

/// One connection: connect from `source`, upgrade, connect + auth, then read forever.
class idle_conn : public std::enable_shared_from_this<idle_conn> {
 public:
  idle_conn(net::io_context& ioc, std::function<void(bool)> ready) : ws_(ioc), ready_(std::move(ready)) {}

  void start(const tcp::endpoint& source, const tcp::endpoint& target) {
    auto& sock = beast::get_lowest_layer(ws_);
    beast::error_code ec;
    sock.socket().open(tcp::v4(), ec);
    if (!ec) sock.socket().bind(source, ec);
    if (ec) return finish(false);
    sock.expires_after(std::chrono::seconds(30));
    target_ = target;
    sock.async_connect(target, [self = shared_from_this()](beast::error_code e) {
      if (e) return self->finish(false);
      self->ws_.async_handshake("127.0.0.1:" + std::to_string(self->target_.port()), "/ws",
                                [self](beast::error_code e2) {
                                  if (e2) return self->finish(false);
                                  self->step = 0;
                                  self->read();
                                });
    });
  }

 private:
  void write(std::string text) {
    out_ = std::move(text);
    ws_.async_write(net::buffer(out_), [self = shared_from_this()](beast::error_code e, std::size_t) {
      if (e) self->finish(false);
    });
  }

  void read() {
    ws_.async_read(buf_, [self = shared_from_this()](beast::error_code e, std::size_t) {
      if (e) return self->finish(false);
      auto m = json::parse(beast::buffers_to_string(self->buf_.data()), nullptr, false);
      self->buf_.consume(self->buf_.size());
      const auto type = m.is_object() ? m.value("type", "") : "";
      if (self->step == 0 && type == "session_info") {
        self->step = 1;
        self->write(json{{"type", "connect"}, {"id", "c"}, {"payload", json::object()}}.dump());
      } else if (self->step == 1 && type == "hello_ok") {
        self->step = 2;
        self->write(json{{"type", "auth"}, {"id", "a"}, {"payload", {{"token", bench_token}}}}.dump());
      } else if (self->step == 2 && type == "auth_success") {
        self->step = 3;
        beast::get_lowest_layer(self->ws_).expires_never();
        self->finish(true);
      } else if (type == "error") {
        return self->finish(false);
      }
      self->read();  // idle from now on: this read answers pings and notices a close
    });
  }

  void finish(bool ok) {
    if (!ready_) return;
    auto r = std::move(ready_);
    ready_ = nullptr;
    r(ok);
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buf_;
  std::string out_;
  tcp::endpoint target_;
  std::function<void(bool)> ready_;
  int step = -1;
};

int run_worker(const std::string& source, const std::vector<std::uint16_t>& ports, int count, int in_flight) {
  net::io_context ioc;
  const tcp::endpoint from(net::ip::make_address(source), 0);
  int started = 0, ok = 0, failed = 0;
  const auto t0 = clock_type::now();
  std::function<void()> next;
  next = [&] {
    if (started >= count) return;
    const auto port = ports[static_cast<std::size_t>(started) % ports.size()];
    ++started;
    auto c = std::make_shared<idle_conn>(ioc, [&](bool good) {
      good ? ++ok : ++failed;
      if (ok + failed == count) {
        std::printf("ready %d %d %.3f\n", ok, failed, seconds_since(t0));
        std::fflush(stdout);
      }
      next();
    });
    c->start(from, tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  };
  for (int i = 0; i < in_flight; ++i) next();
  // Held until the parent closes our stdin (or dies: PR_SET_PDEATHSIG).
  std::thread stdin_watch([&] {
    char b;
    while (::read(0, &b, 1) > 0) {
    }
    ioc.stop();
  });
  ioc.run();
  stdin_watch.join();
  return 0;
}

// -- the orchestrator ----------------------------------------------------------------------------------------

std::size_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  detail::install_handlers();
  static const char* usage =
      "usage: bench_idle [--nodes N] [--connections C] [--workers W] [--in-flight K] [--timeout SECONDS]\n"
      "       bench_idle --worker SOURCE --ports P1,P2,... --count C [--in-flight K]   (started by the above)\n";
  flags f(argc, argv,
          {{"nodes", "6"},
           {"connections", "50000"},
           {"workers", "4"},
           {"in-flight", "200"},
           {"timeout", "300"},
           {"worker", ""},
           {"ports", ""},
           {"count", "0"}},
          usage);
  const int in_flight = static_cast<int>(f.integer("in-flight"));
  if (!f.text("worker").empty()) {
    std::vector<std::uint16_t> ports;
    std::stringstream list(f.text("ports"));
    for (std::string p; std::getline(list, p, ',');) ports.push_back(static_cast<std::uint16_t>(std::stoi(p)));
    if (ports.empty()) return 2;
    return run_worker(f.text("worker"), ports, static_cast<int>(f.integer("count")), in_flight);
  }

  const int nodes = static_cast<int>(f.integer("nodes"));
  const int connections = static_cast<int>(f.integer("connections"));
  const int workers = static_cast<int>(f.integer("workers"));
  const int timeout_s = static_cast<int>(f.integer("timeout"));
  if (nodes < 1 || nodes > 32 || connections < 1 || workers < 1 || workers > 200 || in_flight < 1 ||
      connections / workers > 19000 || connections / nodes > 19000) {
    std::fprintf(stderr, "%s(at most 19,000 connections per worker and per node: 20,000 files per process)\n",
                 usage);
    return 2;
  }
  rlimit lim{20000, 20000};
  ::setrlimit(RLIMIT_NOFILE, &lim);  // inherited by the nodes and the workers

  const auto dir = std::filesystem::temp_directory_path() / ("bench-idle-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  remove_on_interrupt(dir);
  const std::string nats_bin = find_on_path("nats-server").empty() ? "/usr/sbin/nats-server" : find_on_path("nats-server");
  const auto nats_port = free_loopback_port();
  child nats({nats_bin, "-a", "127.0.0.1", "-p", std::to_string(nats_port), "-js", "-sd", (dir / "nats").string()});

  const std::string self = std::filesystem::canonical("/proc/self/exe").string();
  const std::string sb = std::filesystem::path(self).parent_path().parent_path() / "switchboard";
  std::vector<std::unique_ptr<child>> gateways;
  std::vector<std::uint16_t> ports;
  std::string port_list;
  for (int i = 0; i < nodes; ++i) {
    ports.push_back(free_loopback_port());
    port_list += (i ? "," : "") + std::to_string(ports.back());
    gateways.push_back(std::make_unique<child>(
        std::vector<std::string>{sb, "serve", "--port", std::to_string(ports.back()), "--bind", "loopback",
                                 "--node-id", "idle" + std::to_string(i), "--auth-tokens", bench_token,
                                 "--admin-socket", (dir / ("n" + std::to_string(i) + ".sock")).string(),
                                 "--cluster-nats", "nats://127.0.0.1:" + std::to_string(nats_port),
                                 "--cluster-name", "idle", "--max-connections", "20000",
                                 "--max-connections-per-ip", "100000", "--log-level", "warn"},
        (dir / ("n" + std::to_string(i) + ".log")).string()));
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  std::vector<std::size_t> rss_before;
  for (auto& g : gateways) rss_before.push_back(rss_kib(g->pid()));
  std::fprintf(stderr, "[idle] %d nodes up; %d connections from %d workers ...\n", nodes, connections, workers);

  std::vector<std::unique_ptr<child>> gens;
  for (int w = 0; w < workers; ++w) {
    const int share = connections / workers + (w < connections % workers ? 1 : 0);
    gens.push_back(std::make_unique<child>(std::vector<std::string>{
        self, "--worker", "127.0.0." + std::to_string(2 + w), "--ports", port_list, "--count",
        std::to_string(share), "--in-flight", std::to_string(in_flight)}));
  }
  int ok = 0, failed = 0;
  double slowest = 0;
  for (auto& g : gens) {
    auto line = g->read_line(std::chrono::seconds(timeout_s));
    int a = 0, b = 0;
    double secs = 0;
    if (!line || std::sscanf(line->c_str(), "ready %d %d %lf", &a, &b, &secs) != 3) {
      std::fprintf(stderr, "[idle] a worker did not finish within %d s\n", timeout_s);
      return 1;
    }
    ok += a;
    failed += b;
    slowest = std::max(slowest, secs);
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));  // two heartbeats: the totals settle
  json stats = sb::transport::admin_call((dir / "n0.sock").string(), {{"cmd", "stats"}});

  std::printf("\nbench_idle: %d authenticated idle connections over %d nodes on NATS, %d load processes\n",
              connections, nodes, workers);
  std::printf("machine: %s\n\n", machine_line().c_str());
  std::printf("| node | RSS before MiB | RSS after MiB | connections | KiB per connection |\n|---|---:|---:|---:|---:|\n");
  std::size_t total_delta = 0;
  for (int i = 0; i < nodes; ++i) {
    const auto after = rss_kib(gateways[static_cast<std::size_t>(i)]->pid());
    const auto delta = after > rss_before[static_cast<std::size_t>(i)] ? after - rss_before[static_cast<std::size_t>(i)] : 0;
    total_delta += delta;
    const double share = static_cast<double>(ok) / nodes;
    std::printf("| idle%d | %.1f | %.1f | ~%.0f | %.2f |\n", i, rss_before[static_cast<std::size_t>(i)] / 1024.0,
                after / 1024.0, share, share > 0 ? delta / share : 0);
  }
  std::printf("\nauthenticated: %d, failed: %d; connects/s (all workers, upgrade to auth_success): %.0f\n", ok,
              failed, slowest > 0 ? ok / slowest : 0);
  std::printf("RSS per connection over all nodes: %.2f KiB\n", ok > 0 ? static_cast<double>(total_delta) / ok : 0);
  std::printf("admin stats on idle0, cluster total: %s\n",
              stats.value("ok", false) ? stats["result"]["cluster"].dump().c_str() : stats.dump().c_str());
  gens.clear();
  gateways.clear();
  std::filesystem::remove_all(dir);
  return failed == 0 && ok == connections ? 0 : 1;
}

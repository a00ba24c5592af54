// bench_broadcast: session fan-out throughput and end-to-end latency of our gateway, side by side with a
// reference peer, a minimal Node.js broadcast server on the npm `ws` package
// (bench/peers/ws_broadcast_server.js).
//
//   cmake --build build --target bench_broadcast && ./build/bench/bench_broadcast [--clients 50]
//       [--messages 2000] [--size 200] [--window 64] [--latency-messages 200] [--warmup 200] [--repeat 3]
//       [--timeout 60] [--server-nodelay 0|1]
//
// Each server gets the same load: N receiver clients and one sender join one room over ws://127.0.0.1 (no
// TLS, no compression; the gateway runs in-process with authMode none and rateLimit 0). The sender sends M
// `chat` frames of S bytes, each carrying a sequence number and a steady-clock send time in its text; a
// message is complete when all N receivers have it, and at most --window messages are incomplete at a time,
// so neither server has to drop slow consumers. Measured:
//   - throughput: deliveries (messages received by receivers) per second over the M messages;
//   - latency under load: send -> receive time of every delivery during that run (p50/p99);
//   - idle latency: the same for --latency-messages messages sent one at a time (next after all N got it).
// Each measurement is repeated --repeat times, alternating between the servers on fresh clients and a fresh
// room, and the table shows the median run. All clients run on one Asio thread of this process (the load
// generator shares the machine with the server under test). --server-nodelay 1 is a diagnostic: it sets
// TCP_NODELAY on the in-process gateway's accepted sockets (which the gateway leaves off) before each run.
// The table ends with switchboard/node ratios: > 1 means switchboard has more throughput or more latency.
// --cluster N (2..8) replaces the Node peer with N clustered gateway nodes in this process on a throwaway
// nats-server: the sender joins through the first node, the receivers spread over all of them, so most
// deliveries cross NATS (published once per message, delivered once per node). The ratio is then
// cluster/one node, for cross-node fan-out.
// Defaults take about 12 s on 2 cores. The Node child is killed on every way out (PR_SET_PDEATHSIG, a sigwait
// thread for SIGINT/SIGTERM/SIGHUP, destructor); it also exits when its stdin, held by us, closes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <cinttypes>
#include <cstdio>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "actors/gateway_node.hpp"
#include "bench/common.hpp"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using namespace sb::bench;

namespace {

struct options {
  int clients = 50;
  int messages = 2000;
  int size = 200;
  int window = 64;
  int latency_messages = 200;
  int warmup = 200;
  int timeout_s = 60;
  int repeat = 3;
  bool server_nodelay = false;
};

struct result {
  std::string error;  // empty: completed
  std::uint64_t deliveries = 0;
  double seconds = 0;
  double per_second = 0;                                          // deliveries per second
  double load_p50 = 0, load_p99 = 0, idle_p50 = 0, idle_p99 = 0;  // milliseconds
  std::uint64_t acks = 0, server_errors = 0, closed = 0;
  std::string first_server_error;
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

struct conn {
  websocket::stream<beast::tcp_stream> ws;
  beast::flat_buffer buf;
  explicit conn(net::io_context& ioc) : ws(ioc) {}
};

/// Reads (blocking, during setup) until the reply to `id`; throws on a close or an error reply.
json wait_reply(conn& c, const std::string& id) {
  for (;;) {
    c.buf.consume(c.buf.size());
    c.ws.read(c.buf);
    auto m = json::parse(beast::buffers_to_string(c.buf.data()), nullptr, false);
    if (m.is_object() && m.value("replyTo", "") == id) {
      if (m.value("type", "") == "error") throw std::runtime_error("setup refused: " + m.dump());
      return m;
    }
  }
}

std::unique_ptr<conn> open_member(net::io_context& ioc, std::uint16_t port, const std::string& room,
                                  bool create, int index) {
  auto c = std::make_unique<conn>(ioc);
  auto& sock = beast::get_lowest_layer(c->ws);
  sock.expires_after(std::chrono::seconds(10));
  sock.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  sock.socket().set_option(tcp::no_delay(true));
  c->ws.handshake("127.0.0.1:" + std::to_string(port), "/ws");
  sock.expires_never();
  c->ws.auto_fragment(false);
  c->ws.read_message_max(16 * 1024 * 1024);
  const auto p = std::to_string(index);
  c->ws.write(net::buffer(
      json{{"type", "connect"}, {"id", "h" + p}, {"payload", {{"deviceId", "bench-" + p}}}}.dump()));
  wait_reply(*c, "h" + p);
  json join = {{"type", create ? "session_create" : "session_join"}, {"id", "j" + p}, {"sessionId", room}};
  join["payload"] = create ? json{{"sessionId", room}} : json::object();
  c->ws.write(net::buffer(join.dump()));
  auto r = wait_reply(*c, "j" + p);
  if (r.value("type", "") != "session_info") throw std::runtime_error("join failed: " + r.dump());
  return c;
}

/// One load run against one server. Everything below `run` happens on the single io thread.
class load {
 public:
  /// The sender joins through ports[0]; receiver i through ports[i % ports.size()] (one port: one server; a
  /// cluster's ports: members spread over its nodes).
  load(const std::vector<std::uint16_t>& ports, const options& o, const std::string& room,
       const std::function<void()>& after_setup)
      : o_(o), room_(room) {
    sender_ = open_member(ioc_, ports[0], room, true, 0);
    for (int i = 0; i < o.clients; ++i)
      receivers_.push_back(open_member(ioc_, ports[static_cast<std::size_t>(i) % ports.size()], room, false, i + 1));
    if (after_setup) after_setup();
    const auto total = static_cast<std::size_t>(o.warmup + o.messages + o.latency_messages);
    got_.assign(total, 0);
    sent_at_.assign(total, 0);
    load_lat_.reserve(static_cast<std::size_t>(o.messages) * static_cast<std::size_t>(o.clients));
    idle_lat_.reserve(static_cast<std::size_t>(o.latency_messages) * static_cast<std::size_t>(o.clients));
    read_sender();
    for (auto& r : receivers_) read_receiver(*r);
    thread_ = std::thread([this] { ioc_.run(); });
  }

  ~load() {
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }

  result run() {
    result res;
    const auto deadline = clock_type::now() + std::chrono::seconds(o_.timeout_s);
    auto phase = [&](std::uint64_t first, int count, int window,
                     std::vector<double>* lat) -> std::optional<double> {
      if (count <= 0) return 0.0;
      std::promise<double> done;
      auto f = done.get_future();
      net::post(ioc_, [&, first, count, window, lat] {
        ph_ = {first, first + static_cast<std::uint64_t>(count), window, lat, first, 0, now_ns(), &done};
        pump();
      });
      if (f.wait_until(deadline) != std::future_status::ready) {
        // Leave the phase: the io thread stops touching `done` before we return.
        std::promise<void> left;
        net::post(ioc_, [&] {
          ph_.done = nullptr;
          left.set_value();
        });
        left.get_future().wait();
        return std::nullopt;
      }
      return f.get();
    };
    std::uint64_t seq = 0;
    if (!phase(seq, o_.warmup, o_.window, nullptr)) res.error = "warmup timed out";
    seq += static_cast<std::uint64_t>(o_.warmup);
    if (res.error.empty()) {
      if (auto s = phase(seq, o_.messages, o_.window, &load_lat_)) {
        res.seconds = *s;
        res.deliveries = static_cast<std::uint64_t>(o_.messages) * static_cast<std::uint64_t>(o_.clients);
        res.per_second = res.seconds > 0 ? static_cast<double>(res.deliveries) / res.seconds : 0;
      } else {
        res.error = "throughput run timed out";
      }
    }
    seq += static_cast<std::uint64_t>(o_.messages);
    if (res.error.empty() && !phase(seq, o_.latency_messages, 1, &idle_lat_))
      res.error = "latency run timed out";
    // Read the counters on the io thread.
    std::promise<void> snap;
    net::post(ioc_, [&] {
      res.load_p50 = percentile(load_lat_, 50);
      res.load_p99 = percentile(load_lat_, 99);
      res.idle_p50 = percentile(idle_lat_, 50);
      res.idle_p99 = percentile(idle_lat_, 99);
      res.acks = acks_;
      res.server_errors = server_errors_;
      res.first_server_error = first_server_error_;
      res.closed = closed_;
      snap.set_value();
    });
    snap.get_future().wait();
    if (res.closed)
      res.error += (res.error.empty() ? "" : "; ") + std::to_string(res.closed) +
                   " connections closed by the server (slow consumers past sendQueueLimit?)";
    return res;
  }

 private:
  struct phase_state {
    std::uint64_t first = 0, end = 0;
    int window = 1;
    std::vector<double>* lat = nullptr;
    std::uint64_t next = 0;  // next sequence number to send
    std::uint64_t completed = 0;
    std::int64_t started_ns = 0;
    std::promise<double>* done = nullptr;
  };

  void pump() {
    while (ph_.next < ph_.end &&
           ph_.next - ph_.first - ph_.completed < static_cast<std::uint64_t>(ph_.window)) {
      outbox_.push_back(ph_.next++);
    }
    if (!writing_ && !outbox_.empty()) write_next();
  }

  std::string frame_for(std::uint64_t seq) {
    sent_at_[seq] = now_ns();
    std::string text = std::to_string(seq) + " " + std::to_string(sent_at_[seq]) + " ";
    std::string head = R"({"type":"chat","id":"m)" + std::to_string(seq) + R"(","sessionId":")" + room_ +
                       R"(","payload":{"text":")";
    const std::string tail = "\"}}";
    const auto base = head.size() + text.size() + tail.size();
    if (static_cast<std::size_t>(o_.size) > base) text.append(static_cast<std::size_t>(o_.size) - base, 'x');
    return head + text + tail;
  }

  void write_next() {
    writing_ = true;
    out_frame_ = frame_for(outbox_.front());
    outbox_.pop_front();
    sender_->ws.text(true);
    sender_->ws.async_write(net::buffer(out_frame_), [this](beast::error_code ec, std::size_t) {
      writing_ = false;
      if (ec) return;
      if (!outbox_.empty()) write_next();
    });
  }

  void read_sender() {
    sender_->ws.async_read(sender_->buf, [this](beast::error_code ec, std::size_t) {
      if (ec) {
        if (ec != net::error::operation_aborted) ++closed_;
        return;
      }
      auto text = beast::buffers_to_string(sender_->buf.data());
      sender_->buf.consume(sender_->buf.size());
      if (text.find(R"("type":"ack")") != std::string::npos) {
        ++acks_;
      } else if (text.find(R"("type":"error")") != std::string::npos) {
        if (server_errors_++ == 0) first_server_error_ = text.substr(0, 300);
      }
      read_sender();
    });
  }

  void read_receiver(conn& c) {
    c.ws.async_read(c.buf, [this, &c](beast::error_code ec, std::size_t) {
      if (ec) {
        if (ec != net::error::operation_aborted) ++closed_;
        return;
      }
      const auto now = now_ns();
      on_frame(std::string_view(static_cast<const char*>(c.buf.data().data()), c.buf.size()), now);
      c.buf.consume(c.buf.size());
      read_receiver(c);
    });
  }

  void on_frame(std::string_view f, std::int64_t now) {
    if (f.find(R"("type":"chat")") == std::string_view::npos) return;  // presence and the like
    static constexpr std::string_view key = R"("text":")";
    const auto at = f.find(key);
    if (at == std::string_view::npos) return;
    const char* p = f.data() + at + key.size();
    char* end = nullptr;
    const auto seq = std::strtoull(p, &end, 10);
    const auto sent = std::strtoll(end, nullptr, 10);
    if (seq >= got_.size()) return;
    if (seq >= ph_.first && seq < ph_.end && ph_.lat)
      ph_.lat->push_back(static_cast<double>(now - sent) / 1e6);
    if (++got_[seq] != o_.clients) return;
    if (seq < ph_.first || seq >= ph_.end) return;
    if (++ph_.completed == ph_.end - ph_.first) {
      if (ph_.done) ph_.done->set_value(static_cast<double>(now - ph_.started_ns) / 1e9);
      ph_.done = nullptr;
      return;
    }
    pump();
  }

  options o_;
  std::string room_;
  net::io_context ioc_;
  std::unique_ptr<conn> sender_;
  std::vector<std::unique_ptr<conn>> receivers_;
  std::thread thread_;
  phase_state ph_;
  std::deque<std::uint64_t> outbox_;
  std::string out_frame_;
  bool writing_ = false;
  std::vector<int> got_;
  std::vector<std::int64_t> sent_at_;
  std::vector<double> load_lat_, idle_lat_;
  std::uint64_t acks_ = 0, server_errors_ = 0, closed_ = 0;
  std::string first_server_error_;
};

/// Diagnostic (--server-nodelay): sets TCP_NODELAY on the in-process gateway's accepted sockets, found among
/// this process's descriptors by their local port. The gateway itself leaves Nagle's algorithm on.
void set_nodelay_on_accepted(std::uint16_t port) {
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
    if (ntohs(local.sin_port) != port) continue;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) continue;
    int one = 1;
    if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0) ++n;
  }
  std::fprintf(stderr, "[switchboard] --server-nodelay: TCP_NODELAY set on %d accepted sockets\n", n);
}

result measure(const char* name, const std::vector<std::uint16_t>& ports, const options& o, const std::string& room,
               const std::function<void()>& after_setup = {}) {
  std::fprintf(stderr, "[%s] %d receivers + 1 sender on 127.0.0.1:%u (%zu port(s)) ...\n", name, o.clients,
               ports[0], ports.size());
  try {
    load l(ports, o, room, after_setup);
    auto r = l.run();
    if (r.error.empty())
      std::fprintf(stderr,
                   "[%s] %.0f deliveries/s, load p50 %.2f ms p99 %.2f ms, idle p50 %.3f ms p99 %.3f ms\n",
                   name, r.per_second, r.load_p50, r.load_p99, r.idle_p50, r.idle_p99);
    if (!r.error.empty()) std::fprintf(stderr, "[%s] %s\n", name, r.error.c_str());
    if (r.server_errors)
      std::fprintf(stderr, "[%s] %" PRIu64 " error replies, first: %s\n", name, r.server_errors,
                   r.first_server_error.c_str());
    return r;
  } catch (const std::exception& e) {
    result r;
    r.error = e.what();
    std::fprintf(stderr, "[%s] failed: %s\n", name, e.what());
    return r;
  }
}

std::string cell(double v, const char* f, const result& r) { return r.error.empty() ? fmt_num(f, v) : "-"; }

/// The median run of each metric (runs that failed count as failed: the first error is kept).
result median_of(const std::vector<result>& runs) {
  result m;
  for (const auto& r : runs)
    if (!r.error.empty()) {
      m.error = r.error;
      return m;
    }
  if (runs.empty()) {
    m.error = "not run";
    return m;
  }
  auto med = [&](double result::*field) {
    std::vector<double> v;
    for (const auto& r : runs) v.push_back(r.*field);
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  m.per_second = med(&result::per_second);
  m.load_p50 = med(&result::load_p50);
  m.load_p99 = med(&result::load_p99);
  m.idle_p50 = med(&result::idle_p50);
  m.idle_p99 = med(&result::idle_p99);
  return m;
}

std::string runs_text(const std::vector<result>& runs) {
  std::string s;
  for (const auto& r : runs)
    s += (s.empty() ? "" : ", ") + (r.error.empty() ? fmt_num("%.0f", r.per_second) : "failed");
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  detail::install_handlers();  // first: every thread started later inherits the blocked signals
  static const char* usage =
      "usage: bench_broadcast [--clients N] [--messages M] [--size BYTES] [--window W] [--latency-messages "
      "L]\n"
      "                       [--warmup K] [--repeat R] [--timeout SECONDS] [--node PATH] [--server-nodelay "
      "0|1]\n"
      "                       [--cluster N]   compare one node with N nodes on NATS instead of node ws\n";
  flags f(argc, argv,
          {{"clients", "50"},
           {"messages", "2000"},
           {"size", "200"},
           {"window", "64"},
           {"latency-messages", "200"},
           {"warmup", "200"},
           {"repeat", "3"},
           {"timeout", "60"},
           {"node", ""},
           {"server-nodelay", "0"},
           {"cluster", "0"}},
          usage);
  options o;
  o.clients = static_cast<int>(f.integer("clients"));
  o.messages = static_cast<int>(f.integer("messages"));
  o.size = static_cast<int>(f.integer("size"));
  o.window = static_cast<int>(f.integer("window"));
  o.latency_messages = static_cast<int>(f.integer("latency-messages"));
  o.warmup = static_cast<int>(f.integer("warmup"));
  o.repeat = static_cast<int>(f.integer("repeat"));
  o.timeout_s = static_cast<int>(f.integer("timeout"));
  o.server_nodelay = f.integer("server-nodelay") != 0;
  if (o.clients < 1 || o.messages < 1 || o.window < 1 || o.size < 1 || o.latency_messages < 0 ||
      o.warmup < 0 || o.repeat < 1) {
    std::fprintf(stderr, "%s", usage);
    return 2;
  }
  const int cluster_nodes = static_cast<int>(f.integer("cluster"));
  if (cluster_nodes == 1 || cluster_nodes < 0 || cluster_nodes > 8) {
    std::fprintf(stderr, "--cluster takes 2 to 8 nodes (0: compare with node ws instead)\n");
    return 2;
  }
  sb::protocol::gateway_config base;
  base.port = 0;
  base.bind = "127.0.0.1";
  base.auth = sb::protocol::auth_mode::none;
  base.rate_limit = 0;
  base.admin_socket = "";  // none
  base.max_connections_per_ip = 100000;  // every bench client comes from 127.0.0.1
  base.log_level = "warn";
  spdlog::set_level(spdlog::level::warn);

  // The reference first, so a missing one fails early: Node `ws`, or with --cluster N a NATS server and N
  // clustered nodes in this process (the members spread over them, the sender on the first).
  std::string reference_name = cluster_nodes ? "switchboard, " + std::to_string(cluster_nodes) + " nodes on NATS"
                                             : std::string("node ws reference");
  const char* short_name = cluster_nodes ? "cluster" : "node";
  std::unique_ptr<child> reference_server;
  std::vector<std::unique_ptr<sb::actors::gateway_node>> cluster;
  std::vector<std::uint16_t> reference_ports;
  std::filesystem::path nats_dir;
  if (cluster_nodes) {
    const std::string nats = find_on_path("nats-server").empty() ? "/usr/sbin/nats-server" : find_on_path("nats-server");
    nats_dir = std::filesystem::temp_directory_path() / ("bench-nats-" + std::to_string(::getpid()));
    remove_on_interrupt(nats_dir);
    const auto nats_port = free_loopback_port();
    reference_server = std::make_unique<child>(std::vector<std::string>{
        nats, "-a", "127.0.0.1", "-p", std::to_string(nats_port), "-js", "-sd", nats_dir.string()});
    for (int i = 0; i < cluster_nodes; ++i) {
      auto c = base;
      c.cluster_nats = {"nats://127.0.0.1:" + std::to_string(nats_port)};
      c.cluster_name = "bench";
      c.node_id = "b" + std::to_string(i);
      cluster.push_back(std::make_unique<sb::actors::gateway_node>(c));
    }
    try {
      for (auto& n : cluster) {
        n->start();
        reference_ports.push_back(n->port());
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "the cluster did not start: %s\n", e.what());
      reference_ports.clear();
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));  // heartbeats: every node knows the others
  } else {
    std::string node = f.text("node").empty() ? find_on_path("node") : f.text("node");
    if (node.empty()) {
      std::fprintf(stderr, "node not found on PATH: the reference column stays empty\n");
    } else {
      reference_server = std::make_unique<child>(
          std::vector<std::string>{node, std::string(SB_SOURCE_DIR) + "/bench/peers/ws_broadcast_server.js"});
      auto line = reference_server->read_line(std::chrono::seconds(10));
      if (!line || line->rfind("listening ", 0) != 0) {
        std::fprintf(stderr,
                     "the node reference server did not start (is tests/interop/node_modules installed?)\n");
        reference_server.reset();
      } else {
        reference_ports.push_back(static_cast<std::uint16_t>(std::stoi(line->substr(10))));
      }
    }
  }

  // Runs alternate between the two; each gets a fresh set of clients and a fresh room.
  std::vector<result> ours_runs, theirs_runs;
  {
    sb::actors::gateway_node gw(base);
    gw.start();
    const auto gw_port = gw.port();
    std::function<void()> tweak;
    if (o.server_nodelay) tweak = [gw_port] { set_nodelay_on_accepted(gw_port); };
    for (int k = 0; k < o.repeat; ++k) {
      const auto room = "bench-room-" + std::to_string(k);
      ours_runs.push_back(measure("switchboard", {gw_port}, o, room, tweak));
      if (!reference_ports.empty()) theirs_runs.push_back(measure(short_name, reference_ports, o, room));
    }
    gw.stop();
  }
  for (auto& n : cluster) n->stop();
  cluster.clear();
  reference_server.reset();
  if (!nats_dir.empty()) std::filesystem::remove_all(nats_dir);
  const result ours = median_of(ours_runs);
  result theirs = median_of(theirs_runs);
  if (reference_ports.empty()) theirs.error = "not run";

  std::printf(
      "\nbench_broadcast: %d receivers, 1 sender, %d messages of %d bytes, window %d, %d idle-latency "
      "messages; median of %d runs%s\n",
      o.clients, o.messages, o.size, o.window, o.latency_messages, o.repeat,
      o.server_nodelay ? "; DIAGNOSTIC: TCP_NODELAY forced on the gateway's sockets" : "");
  std::printf("machine: %s\n\n", machine_line().c_str());
  std::printf(
      "| server | deliveries/s | broadcasts/s | load p50 ms | load p99 ms | idle p50 ms | idle p99 ms |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
  for (auto [name, r] : {std::pair<const char*, const result*>{
                             cluster_nodes ? "switchboard, one node" : "switchboard (in-process)", &ours},
                         std::pair<const char*, const result*>{reference_name.c_str(), &theirs}}) {
    std::printf("| %s | %s | %s | %s | %s | %s | %s |\n", name, cell(r->per_second, "%.0f", *r).c_str(),
                cell(r->per_second / o.clients, "%.0f", *r).c_str(), cell(r->load_p50, "%.2f", *r).c_str(),
                cell(r->load_p99, "%.2f", *r).c_str(), cell(r->idle_p50, "%.3f", *r).c_str(),
                cell(r->idle_p99, "%.3f", *r).c_str());
  }
  const bool both = ours.error.empty() && theirs.error.empty();
  auto q = [&](double a, double b) { return both ? ratio(a, b) : std::string("-"); };
  std::printf("| **switchboard/%s** | %s | %s | %s | %s | %s | %s |\n", short_name,
              q(ours.per_second, theirs.per_second).c_str(), q(ours.per_second, theirs.per_second).c_str(),
              q(ours.load_p50, theirs.load_p50).c_str(), q(ours.load_p99, theirs.load_p99).c_str(),
              q(ours.idle_p50, theirs.idle_p50).c_str(), q(ours.idle_p99, theirs.idle_p99).c_str());
  std::printf(
      "\nthroughput ratio > 1: switchboard delivers more; latency ratio < 1: switchboard is faster.\n");
  std::printf("deliveries/s per run: switchboard %s; %s %s\n", runs_text(ours_runs).c_str(), short_name,
              runs_text(theirs_runs).c_str());
  if (!ours.error.empty()) std::printf("switchboard: %s\n", ours.error.c_str());
  if (!theirs.error.empty()) std::printf("%s: %s\n", reference_name.c_str(), theirs.error.c_str());
  return ours.error.empty() ? 0 : 1;
}

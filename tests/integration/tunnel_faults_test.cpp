// Faults with the real binaries in the middle of transfers: the relay and the host each SIGKILLed and
// SIGSTOPped/SIGCONTed while checksummed echo streams run through `connect` -> relay -> `host` -> an echo
// service. What must hold: every stream either keeps going or is closed within a bound (none hangs), no byte
// that came back differs from what was sent (what was acknowledged end to end is complete and in order),
// the host is connected again within its backoff bound, and new streams work afterwards.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>

#include "support/process.hpp"
#include "support/tunnel_fixture.hpp"

using namespace sb::test;

namespace {

const std::string binary = SWITCHBOARD_BINARY;
using clock_type = std::chrono::steady_clock;

// How long a stream whose far side vanished may stay open, and how long the host may take to be back.
constexpr auto close_bound = 8s;
constexpr auto reconnect_bound = 10s;

std::uint8_t pattern(std::uint64_t offset, std::uint8_t seed) {
  return static_cast<std::uint8_t>((offset * 131) ^ (offset >> 9) ^ seed);
}

/// One client stream that sends its own pattern in small chunks and checks every echoed byte, until told
/// to stop or until the stream ends. `verified` counts the bytes that came back intact: acknowledged end to
/// end.
class echo_transfer {
 public:
  echo_transfer(std::uint16_t port, std::uint8_t seed) : seed_(seed) {
    thread_ = std::thread([this, port] { run(port); });
  }
  ~echo_transfer() {
    stop_ = true;
    thread_.join();
  }
  std::uint64_t verified() const { return verified_.load(); }
  bool corrupt() const { return corrupt_.load(); }
  bool ended() const { return ended_.load(); }
  /// The stream is gone (closed or failed) rather than still transferring.
  bool ended_within(std::chrono::milliseconds t) {
    return eventually([&] { return ended(); }, t);
  }
  /// Still moving: `verified` grows within `t`.
  bool progressing_within(std::chrono::milliseconds t) {
    const auto before = verified();
    return eventually([&] { return verified() > before; }, t);
  }

 private:
  void run(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{0, 200 * 1000};  // every blocking call returns in time to look at stop_
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ended_ = true;
      ::close(fd);
      return;
    }
    constexpr std::size_t chunk = 4096;
    std::vector<std::uint8_t> out(chunk), in(chunk);
    std::uint64_t sent = 0, received = 0;
    while (!stop_) {
      // One chunk in flight at a time, so every byte is acknowledged by its echo before the next goes.
      if (sent == received) {
        for (std::size_t i = 0; i < chunk; ++i) out[i] = pattern(sent + i, seed_);
        std::size_t off = 0;
        while (off < chunk && !stop_) {
          const auto n = ::send(fd, out.data() + off, chunk - off, MSG_NOSIGNAL);
          if (n > 0) {
            off += static_cast<std::size_t>(n);
          } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
          } else {
            return finish(fd);
          }
        }
        sent += off;
      }
      const auto n = ::recv(fd, in.data(), static_cast<std::size_t>(sent - received), 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) return finish(fd);
      for (ssize_t i = 0; i < n; ++i)
        if (in[static_cast<std::size_t>(i)] != pattern(received + static_cast<std::uint64_t>(i), seed_))
          corrupt_ = true;
      received += static_cast<std::uint64_t>(n);
      verified_ = received;
    }
    ::close(fd);
  }
  void finish(int fd) {
    ended_ = true;
    ::close(fd);
  }

  std::uint8_t seed_;
  std::atomic<std::uint64_t> verified_{0};
  std::atomic<bool> corrupt_{false}, ended_{false}, stop_{false};
  std::thread thread_;
};

/// The relay, a tunnel, a host exposing an echo service and a client mapping it to a local port.
struct fault_rig {
  temp_dir dir;
  io_threads io;
  echo_service echo{io.ioc};
  std::uint16_t relay_port = free_port();
  std::string url = "http://127.0.0.1:" + std::to_string(relay_port);
  std::uint16_t local = free_port();
  std::string tunnel_id, host_token, connect_token;
  std::unique_ptr<child_process> relay, host, connect;
  int host_generation = 0;

  fault_rig() {
    start_relay();
    auto r = run_to_end({binary, "tunnel", "create", "--relay", url, "--management-token-file",
                         (dir.path() / "relay-data" / "management-token").string(), "--json"},
                        dir.path());
    INFO(r.err);
    REQUIRE(r.code == 0);
    auto j = nlohmann::json::parse(r.out);
    tunnel_id = j["tunnelId"];
    host_token = j["accessTokens"]["host"];
    connect_token = j["accessTokens"]["connect"];
    start_host();
    connect = std::make_unique<child_process>(
        std::vector<std::string>{binary, "connect", "--relay", url, "--tunnel", tunnel_id, "--token",
                                 connect_token, "--map",
                                 std::to_string(echo.port()) + ":" + std::to_string(local)},
        dir.path());
    REQUIRE(connect->wait_for_output("forwarding remote port", 10s));
    REQUIRE(eventually([&] { return works(); }, reconnect_bound));
  }

  void start_relay() {
    relay = std::make_unique<child_process>(
        std::vector<std::string>{binary, "relay", "--port", std::to_string(relay_port), "--data-dir",
                                 (dir.path() / "relay-data").string()},
        dir.path());
    REQUIRE(relay->wait_for_output("switchboard relay http://127.0.0.1:", 10s));
  }

  /// A new host process; each gets its own admin socket (a SIGKILLed host leaves its socket file behind).
  void start_host() {
    ++host_generation;
    host = std::make_unique<child_process>(
        std::vector<std::string>{binary, "host", "--relay", url, "--tunnel", tunnel_id, "--token", host_token,
                                 "--port", std::to_string(echo.port()), "--admin-socket", admin_socket(),
                                 "--backoff-initial-ms", "100", "--backoff-max-ms", "1000",
                                 "--relay-idle-timeout-ms", "1500"},
        dir.path());
    REQUIRE(host->wait_for_output("status connected", 10s));
  }

  std::string admin_socket() const {
    return (dir.path() / ("host-" + std::to_string(host_generation) + ".sock")).string();
  }

  std::string host_status() const {
    try {
      return sb::transport::admin_call(admin_socket(), {{"cmd", "tunnel"}})["result"].value("status", "");
    } catch (...) {
      return {};
    }
  }

  /// Fresh streams carry a full checksummed echo.
  bool works() { return concurrent_echo_check(local, 3, 256 * 1024) == 3; }
};

/// Starts `n` transfers and waits until each has moved some data.
std::vector<std::unique_ptr<echo_transfer>> start_transfers(std::uint16_t port, int n) {
  std::vector<std::unique_ptr<echo_transfer>> t;
  for (int i = 0; i < n; ++i)
    t.push_back(std::make_unique<echo_transfer>(port, static_cast<std::uint8_t>(i)));
  for (auto& x : t) REQUIRE(eventually([&] { return x->verified() >= 64 * 1024; }, 10s));
  return t;
}

/// Each transfer either still moves or is closed within the bound; none is corrupt. Returns how many ended.
int resumed_or_closed(std::vector<std::unique_ptr<echo_transfer>>& transfers) {
  int ended = 0;
  for (auto& t : transfers) {
    const bool moving = !t->ended() && t->progressing_within(close_bound);
    CHECK((moving || t->ended_within(1s)));
    CHECK_FALSE(t->corrupt());
    if (t->ended()) ++ended;
  }
  return ended;
}

}  // namespace

TEST_CASE("relay SIGKILLed mid-transfer: client streams close, the host is back on the restarted relay",
          "[faults]") {
  fault_rig rig;
  for (int round = 0; round < 3; ++round) {
    INFO("round " << round);
    auto transfers = start_transfers(rig.local, 3);
    rig.relay->signal(SIGKILL);
    rig.relay->wait_exit(5s);
    for (auto& t : transfers) {
      CHECK(t->ended_within(close_bound));  // the far side vanished: closed, not hung
      CHECK_FALSE(t->corrupt());            // what was acknowledged came back intact
    }
    CHECK(eventually([&] { return rig.host_status() != "connected"; }, 5s));
    rig.start_relay();
    CHECK(eventually([&] { return rig.host_status() == "connected"; }, reconnect_bound));
    CHECK(eventually([&] { return rig.works(); }, reconnect_bound));
  }
}

TEST_CASE("relay SIGSTOPped mid-transfer: the host notices the silence and is back after SIGCONT",
          "[faults]") {
  fault_rig rig;
  for (int round = 0; round < 2; ++round) {
    INFO("round " << round);
    auto transfers = start_transfers(rig.local, 3);
    rig.relay->signal(SIGSTOP);
    // The relay answers nothing; the host's idle deadline (1.5 s) drops the connection instead of
    // trusting a socket that is still open.
    CHECK(eventually([&] { return rig.host_status() != "connected"; }, 5s));
    rig.relay->signal(SIGCONT);
    resumed_or_closed(transfers);
    CHECK(eventually([&] { return rig.host_status() == "connected"; }, reconnect_bound));
    CHECK(eventually([&] { return rig.works(); }, reconnect_bound));
  }
}

TEST_CASE("host SIGKILLed mid-transfer: client streams close, a restarted host serves again", "[faults]") {
  fault_rig rig;
  for (int round = 0; round < 2; ++round) {
    INFO("round " << round);
    auto transfers = start_transfers(rig.local, 3);
    rig.host->signal(SIGKILL);
    rig.host->wait_exit(5s);
    for (auto& t : transfers) {
      CHECK(t->ended_within(close_bound));
      CHECK_FALSE(t->corrupt());
    }
    rig.start_host();
    CHECK(eventually([&] { return rig.host_status() == "connected"; }, reconnect_bound));
    CHECK(eventually([&] { return rig.works(); }, reconnect_bound));
  }
}

TEST_CASE("host SIGSTOPped mid-transfer: streams resume or close after SIGCONT, the host stays up",
          "[faults]") {
  fault_rig rig;
  for (int round = 0; round < 2; ++round) {
    INFO("round " << round);
    auto transfers = start_transfers(rig.local, 3);
    rig.host->signal(SIGSTOP);
    // Stopped hosts move nothing (and must not be taken for a fault of the streams' own making).
    std::this_thread::sleep_for(3s);  // the fault itself is a duration: the host stays stopped this long
    rig.host->signal(SIGCONT);
    resumed_or_closed(transfers);
    CHECK(eventually([&] { return rig.host_status() == "connected"; }, reconnect_bound));
    CHECK(eventually([&] { return rig.works(); }, reconnect_bound));
  }
}

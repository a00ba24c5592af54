#pragma once
// Helpers shared by the benchmarks: command-line flags, percentiles, and child processes and temporary
// directories that cannot outlive the benchmark (PR_SET_PDEATHSIG, a sigwait thread for
// SIGINT/SIGTERM/SIGHUP, and destructors that kill, reap and remove).
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace sb::bench {

using clock_type = std::chrono::steady_clock;

inline double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

/// `--name value` or `--name=value`; everything else is an error.
class flags {
 public:
  flags(int argc, char** argv, std::map<std::string, std::string> defaults, const char* usage)
      : values_(std::move(defaults)) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "-h" || a == "--help") {
        std::printf("%s", usage);
        std::exit(0);
      }
      if (a.rfind("--", 0) != 0) fail(usage, "unexpected argument " + a);
      a = a.substr(2);
      std::string v;
      if (auto eq = a.find('='); eq != std::string::npos) {
        v = a.substr(eq + 1);
        a = a.substr(0, eq);
      } else if (i + 1 < argc) {
        v = argv[++i];
      } else {
        fail(usage, "--" + a + " needs a value");
      }
      if (!values_.count(a)) fail(usage, "unknown flag --" + a);
      values_[a] = v;
    }
  }
  long long integer(const std::string& name) const {
    try {
      return std::stoll(values_.at(name));
    } catch (...) {
      std::fprintf(stderr, "--%s: not a number: %s\n", name.c_str(), values_.at(name).c_str());
      std::exit(2);
    }
  }
  const std::string& text(const std::string& name) const { return values_.at(name); }

 private:
  [[noreturn]] static void fail(const char* usage, const std::string& why) {
    std::fprintf(stderr, "%s\n%s", why.c_str(), usage);
    std::exit(2);
  }
  std::map<std::string, std::string> values_;
};

/// Nearest-rank percentile of `v` (sorted in place); 0 when empty.
inline double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

inline std::string fmt_num(const char* f, double x) {
  char b[64];
  std::snprintf(b, sizeof b, f, x);
  return b;
}

/// Ratio text "a/b", or "-" when either side is missing.
inline std::string ratio(double a, double b) { return (a > 0 && b > 0) ? fmt_num("%.2f", a / b) : "-"; }

// -- child processes
// -----------------------------------------------------------------------------------------

namespace detail {
inline std::array<std::atomic<pid_t>, 16> live_children{};
inline std::mutex dirs_mtx;
inline std::vector<std::filesystem::path> dirs_to_remove;

/// SIGINT, SIGTERM and SIGHUP are blocked in every thread (call this first in main, before any thread starts)
/// and taken by one thread with sigwait, which kills the children, removes registered directories and exits.
inline void install_handlers() {
  static bool done = false;
  if (done) return;
  done = true;
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    sigwait(&set, &sig);
    for (auto& p : live_children) {
      const pid_t pid = p.exchange(0);
      if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
    {
      std::lock_guard<std::mutex> guard(dirs_mtx);
      for (const auto& d : dirs_to_remove) {
        std::error_code ec;
        std::filesystem::remove_all(d, ec);
      }
    }
    std::fprintf(stderr, "interrupted (signal %d): children killed\n", sig);
    ::_exit(128 + sig);
  }).detach();
}
}  // namespace detail

/// A temporary directory, removed with the object or when the benchmark is interrupted.
class scratch_dir {
 public:
  scratch_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sb-bench-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
    std::lock_guard<std::mutex> guard(detail::dirs_mtx);
    detail::dirs_to_remove.push_back(path_);
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    std::lock_guard<std::mutex> guard(detail::dirs_mtx);
    auto& v = detail::dirs_to_remove;
    v.erase(std::remove(v.begin(), v.end(), path_), v.end());
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Registers a directory someone else owns for removal on interruption.
inline void remove_on_interrupt(const std::filesystem::path& p) {
  std::lock_guard<std::mutex> guard(detail::dirs_mtx);
  detail::dirs_to_remove.push_back(p);
}

/// A child process whose stdout is a pipe we read and whose stdin is a pipe we hold open (a child may treat
/// its end as "parent gone"); stderr goes to `stderr_path` (or /dev/null). It gets SIGKILL when the benchmark
/// dies, and SIGTERM then SIGKILL when this object goes.
class child {
 public:
  child(std::vector<std::string> argv, const std::string& stderr_path = "/dev/null") {
    detail::install_handlers();
    if (argv.empty() || argv[0].empty() || argv[0][0] != '/')
      throw std::runtime_error("child needs an absolute path");
    int out[2], in[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      // Only async-signal-safe calls from here to exec.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      const int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      if (err >= 0) ::dup2(err, 2);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(in[0]);
    stdout_ = out[0];
    stdin_ = in[1];
    for (auto& slot : detail::live_children) {
      pid_t expected = 0;
      if (slot.compare_exchange_strong(expected, pid_)) break;
    }
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  ~child() { stop(); }

  pid_t pid() const { return pid_; }

  /// The next line of stdout (without '\n'), or nullopt on EOF or timeout.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
    const auto deadline = clock_type::now() + timeout;
    for (;;) {
      if (auto nl = pending_.find('\n'); nl != std::string::npos) {
        auto line = pending_.substr(0, nl);
        pending_.erase(0, nl + 1);
        return line;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
      if (left <= 0) return std::nullopt;
      pollfd p{stdout_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      const auto n = ::read(stdout_, buf, sizeof buf);
      if (n <= 0) return std::nullopt;
      pending_.append(buf, static_cast<std::size_t>(n));
    }
  }

  bool running() {
    if (reaped_) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      forget();
    }
    return !reaped_;
  }

  void stop() {
    if (pid_ <= 0) return;
    if (!reaped_) {
      ::kill(pid_, SIGTERM);
      const auto deadline = clock_type::now() + std::chrono::seconds(2);
      while (running() && clock_type::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (!reaped_) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        reaped_ = true;
      }
    }
    forget();
    if (stdout_ >= 0) ::close(stdout_);
    if (stdin_ >= 0) ::close(stdin_);
    stdout_ = stdin_ = -1;
    pid_ = -1;
  }

 private:
  void forget() {
    for (auto& slot : detail::live_children) {
      pid_t expected = pid_;
      slot.compare_exchange_strong(expected, 0);
    }
  }
  pid_t pid_ = -1;
  bool reaped_ = false;
  int stdout_ = -1, stdin_ = -1;
  std::string pending_;
};

/// The first executable named `name` on PATH, or empty.
/// A TCP port on 127.0.0.1 that was free a moment ago, for a child that must be told its port.
inline std::uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("no free port on 127.0.0.1");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

inline std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= p.size()) {
    auto end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    auto candidate = std::filesystem::path(p.substr(start, end - start)) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    start = end + 1;
  }
  return {};
}

inline std::string machine_line() {
  std::string cpu;
  if (FILE* f = std::fopen("/proc/cpuinfo", "r")) {
    char line[512];
    while (std::fgets(line, sizeof line, f)) {
      if (std::strncmp(line, "model name", 10) == 0) {
        cpu = std::strchr(line, ':') ? std::strchr(line, ':') + 2 : line;
        if (!cpu.empty() && cpu.back() == '\n') cpu.pop_back();
        break;
      }
    }
    std::fclose(f);
  }
  return "nproc " + std::to_string(std::thread::hardware_concurrency()) + (cpu.empty() ? "" : ", " + cpu);
}

}  // namespace sb::bench

#include "support/nats_server.hpp"

#include <signal.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "support/ports.hpp"

namespace sb::test {

nats_server::nats_server(const std::filesystem::path& dir, std::string extra_config)
    : dir_(dir / ("nats-" + std::to_string(::getpid()))), extra_config_(std::move(extra_config)), port_(free_port()) {
  std::filesystem::create_directories(dir_);
  start();
}

nats_server::~nats_server() { kill(); }

std::string nats_server::url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

void nats_server::kill() {
  if (!process_) return;
  process_->signal(SIGKILL);
  process_->wait_exit(std::chrono::seconds(5));
  process_.reset();
}

void nats_server::start() {
  if (access("/usr/sbin/nats-server", X_OK) != 0 && access("/usr/bin/nats-server", X_OK) != 0)
    throw std::runtime_error("nats-server is not installed (the test command installs it)");
  const auto config = dir_ / "nats.conf";
  {
    std::ofstream out(config);
    out << "listen: 127.0.0.1:" << port_ << "\n"
        << "jetstream { store_dir: \"" << (dir_ / "js").string() << "\" }\n"
        << extra_config_ << "\n";
  }
  const char* binary = access("/usr/sbin/nats-server", X_OK) == 0 ? "/usr/sbin/nats-server" : "/usr/bin/nats-server";
  process_ = std::make_unique<child_process>(std::vector<std::string>{binary, "-c", config.string()}, dir_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!accepts(port_)) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("nats-server did not start: " + process_->err());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string nats_server::log() const { return process_ ? process_->err() : std::string(); }

}  // namespace sb::test

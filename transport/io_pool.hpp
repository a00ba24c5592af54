#pragma once
// The io threads of one command: an io_context kept busy by a work guard and run on N threads. Stopping
// drains first: the closes and final writes already queued (an SSH disconnect, a WebSocket close) run to
// their end, so the objects their handlers keep alive are released, before the loop is stopped and joined.
// Stopping the loop outright instead drops those handlers and leaks whatever they were part of.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

namespace sb::transport {

/// How long a command that is stopping lets queued closes run before it drops what is left.
inline constexpr std::chrono::milliseconds shutdown_grace{2000};

/// After its threads are joined, runs on the calling thread what is ready (posted handlers, I/O already
/// complete) without waiting for anything, a bounded number of rounds: a close posted just before the loop
/// stopped still runs, and releases the objects whose handlers keep each other alive. What still waits for
/// the network is dropped with the io_context.
void run_ready_handlers(boost::asio::io_context& ioc);
inline constexpr int max_ready_rounds = 64;

class io_pool {
 public:
  explicit io_pool(unsigned threads);
  ~io_pool();
  io_pool(const io_pool&) = delete;
  io_pool& operator=(const io_pool&) = delete;

  boost::asio::io_context& context() { return ioc_; }

  /// Releases the work guard and waits up to `grace` for the loop to run out of work, then stops it and
  /// joins every thread. Returns false when work was still queued at the deadline (it was dropped).
  /// Idempotent; call it once everything that listens has been closed, or those waits last the whole grace.
  bool drain_and_join(std::chrono::milliseconds grace);

 private:
  boost::asio::io_context ioc_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
  std::vector<std::thread> threads_;
  std::atomic<unsigned> finished_{0};
};

}  // namespace sb::transport

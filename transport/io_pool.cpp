#include "transport/io_pool.hpp"

namespace sb::transport {

void run_ready_handlers(boost::asio::io_context& ioc) {
  ioc.restart();
  for (int round = 0; round < max_ready_rounds && ioc.poll() > 0; ++round) {
  }
}

io_pool::io_pool(unsigned threads) : guard_(boost::asio::make_work_guard(ioc_)) {
  threads_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i)
    threads_.emplace_back([this] {
      ioc_.run();
      ++finished_;
    });
}

io_pool::~io_pool() { drain_and_join(std::chrono::milliseconds(0)); }

bool io_pool::drain_and_join(std::chrono::milliseconds grace) {
  if (threads_.empty()) return true;
  guard_.reset();
  const auto deadline = std::chrono::steady_clock::now() + grace;
  // run() returns on every thread once no handler and no operation is left: that is "drained".
  while (finished_.load() < threads_.size() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const bool drained = finished_.load() == threads_.size();
  ioc_.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  run_ready_handlers(ioc_);
  return drained;
}

}  // namespace sb::transport

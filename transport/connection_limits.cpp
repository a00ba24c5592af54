#include "transport/connection_limits.hpp"

namespace sb::transport {

std::unique_ptr<connection_limits::slot> connection_limits::acquire(const std::string& address,
                                                                    refusal& why) {
  std::lock_guard<std::mutex> guard(mtx_);
  if (open_ >= max_total_) {
    why = refusal::total;
    return nullptr;
  }
  auto& from = per_address_[address];
  if (from >= max_per_address_) {
    why = refusal::per_address;
    return nullptr;
  }
  ++from;
  ++open_;
  why = refusal::none;
  return std::make_unique<slot>(shared_from_this(), address);
}

void connection_limits::release(const std::string& address) {
  std::lock_guard<std::mutex> guard(mtx_);
  --open_;
  auto it = per_address_.find(address);
  if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
}

std::size_t connection_limits::open() const {
  std::lock_guard<std::mutex> guard(mtx_);
  return open_;
}

std::size_t connection_limits::open_from(const std::string& address) const {
  std::lock_guard<std::mutex> guard(mtx_);
  auto it = per_address_.find(address);
  return it == per_address_.end() ? 0 : it->second;
}

}  // namespace sb::transport

#pragma once
// Caps on open WebSocket connections, in total and per client address (maxConnections,
// maxConnectionsPerIp): without them one host can hold every descriptor of the node. A slot is taken when an
// upgrade is accepted and given back when its connection object goes away, whatever ended it.
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace sb::transport {

class connection_limits : public std::enable_shared_from_this<connection_limits> {
 public:
  class slot;
  enum class refusal { none, total, per_address };

  connection_limits(std::size_t max_total, std::size_t max_per_address)
      : max_total_(max_total), max_per_address_(max_per_address) {}

  /// A slot for one more connection from `address`, or the reason there is none.
  std::unique_ptr<slot> acquire(const std::string& address, refusal& why);

  std::size_t open() const;
  std::size_t open_from(const std::string& address) const;

 private:
  void release(const std::string& address);

  const std::size_t max_total_;
  const std::size_t max_per_address_;
  mutable std::mutex mtx_;
  std::size_t open_ = 0;
  std::unordered_map<std::string, std::size_t> per_address_;
};

/// Held by a connection for its lifetime; destroying it frees the place.
class connection_limits::slot {
 public:
  slot(std::shared_ptr<connection_limits> owner, std::string address)
      : owner_(std::move(owner)), address_(std::move(address)) {}
  ~slot() { owner_->release(address_); }
  slot(const slot&) = delete;
  slot& operator=(const slot&) = delete;

 private:
  std::shared_ptr<connection_limits> owner_;
  std::string address_;
};

}  // namespace sb::transport

#pragma once
// The cluster bus: the one interface through which gateway nodes coordinate. Subjects with publish,
// subscribe (optionally in a queue group) and request/reply; key-value buckets with compare-and-set and
// watches. Two implementations: NATS (cluster/nats_bus) and an in-process one (cluster/local_bus) that a
// single node uses when no NATS is configured, so the same actor code runs in both.
//
// Every call returns at once; results arrive through callbacks on a thread of the bus, never inline in the
// call (a caller may hold a lock). Callbacks must be quick and must not block: the gateway's callbacks only
// send a message to an actor. Subjects follow NATS rules: tokens separated by '.', '*' matches one token and
// '>' the rest.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace sb::cluster {

/// Why a bus operation did not do what was asked.
enum class bus_error {
  timeout,        // no answer in time
  no_responders,  // nobody subscribes to the request's subject (answered at once)
  unavailable,    // the bus is disconnected or closed
  conflict,       // compare-and-set lost: the key changed (update) or exists (create)
  not_found,      // get of a key with no live value
  invalid,        // a subject, key or value the bus refuses
};
std::string_view to_string(bus_error e);

/// A value or the error that stopped it.
template <class T>
using result = std::variant<T, bus_error>;

template <class T>
const T* value_of(const result<T>& r) {
  return std::get_if<T>(&r);
}
template <class T>
std::optional<bus_error> error_of(const result<T>& r) {
  if (auto* e = std::get_if<bus_error>(&r)) return *e;
  return std::nullopt;
}

struct message {
  std::string subject;
  std::string reply_to;  // set on requests: publish the answer there
  std::string data;
};

/// One key's value at one revision (revisions grow per bucket). `deleted`: the key was removed.
struct kv_entry {
  std::string key;
  std::string value;
  std::uint64_t revision = 0;
  bool deleted = false;
};

using message_handler = std::function<void(message)>;
using reply_handler = std::function<void(result<std::string>)>;
using revision_handler = std::function<void(result<std::uint64_t>)>;
using entry_handler = std::function<void(result<kv_entry>)>;
using done_handler = std::function<void(std::optional<bus_error>)>;
/// Called for every current value, then once with nullopt (caught up), then for every change. After the link
/// comes back the watch starts over: every current value again, then another nullopt. Deletions made while it
/// was away are not delivered; keys not heard between two nullopts are gone (cluster/watch_sweep.hpp).
using watch_handler = std::function<void(std::optional<kv_entry>)>;

/// Ends its subscription or watch when destroyed. A handler may still run once while the destructor runs,
/// so handlers capture only what outlives the subscription (actor handles, shared state).
class subscription {
 public:
  virtual ~subscription() = default;
};
using subscription_ptr = std::unique_ptr<subscription>;

/// A key-value bucket. Keys are NATS KV keys: letters, digits and `-_=./`, not starting or ending with '.'.
class kv_bucket {
 public:
  virtual ~kv_bucket() = default;
  virtual void get(std::string key, entry_handler done) = 0;
  virtual void put(std::string key, std::string value, revision_handler done) = 0;
  /// Fails with `conflict` when the key has a live value.
  virtual void create(std::string key, std::string value, revision_handler done) = 0;
  /// Fails with `conflict` unless the key's current revision is `expected`.
  virtual void update(std::string key, std::string value, std::uint64_t expected, revision_handler done) = 0;
  /// With `expected`, fails with `conflict` unless the key's current revision is that one.
  virtual void erase(std::string key, std::optional<std::uint64_t> expected, done_handler done) = 0;
  /// Every key matching `pattern` ('*' and '>' as in subjects).
  virtual subscription_ptr watch(std::string pattern, watch_handler on_entry) = 0;
};

enum class link_state { connected, reconnecting, closed };
std::string_view to_string(link_state s);
using state_handler = std::function<void(link_state)>;

class bus {
 public:
  virtual ~bus() = default;
  /// Queued when disconnected (up to the implementation's buffer) and sent on reconnect.
  virtual void publish(std::string subject, std::string data) = 0;
  /// With a queue group, each message goes to one subscriber of the group only.
  virtual subscription_ptr subscribe(std::string subject, message_handler on_message,
                                     std::string queue_group = {}) = 0;
  virtual void request(std::string subject, std::string data, std::chrono::milliseconds timeout,
                       reply_handler done) = 0;
  /// A bucket of this bus, made when missing; `max_value_bytes` bounds each value.
  virtual std::shared_ptr<kv_bucket> bucket(const std::string& name, std::size_t max_value_bytes) = 0;
  virtual link_state state() const = 0;
  /// Called on every change of state() from now on (replaces an earlier handler).
  virtual void on_state_change(state_handler handler) = 0;
  /// A short description for `admin cluster`: the implementation and, for NATS, the server it uses.
  virtual std::string describe() const = 0;
};

}  // namespace sb::cluster

// The in-process bus. One dispatch thread runs every callback in the order the operations happened, as a NATS
// connection delivers a subscription's messages in order; request timeouts are timers on the same thread.
#include "cluster/local_bus.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "cluster/subjects.hpp"

namespace sb::cluster {

namespace {

namespace net = boost::asio;

/// What outlives the bus object itself: subscriptions and buckets handed out keep a weak reference.
struct core {
  net::io_context ioc;
  callback_runner runner;  // empty: callbacks run on the bus's thread
  std::mutex m;
  struct subscriber {
    std::string pattern, queue;
    message_handler handler;
  };
  std::map<std::uint64_t, subscriber> subscribers;
  std::map<std::string, std::uint64_t> queue_turns;  // round robin inside each queue group
  std::uint64_t next_id = 1;

  void post(std::function<void()> f) {
    if (runner)
      runner(std::move(f));
    else
      net::post(ioc, std::move(f));
  }

  /// Everyone who gets a message on `subject`: each plain subscriber, and one member per queue group.
  /// Caller holds `m`.
  std::vector<message_handler> receivers(const std::string& subject) {
    std::vector<message_handler> out;
    std::map<std::string, std::vector<const subscriber*>> groups;
    for (const auto& [_, s] : subscribers) {
      if (!subject_matches(s.pattern, subject)) continue;
      if (s.queue.empty())
        out.push_back(s.handler);
      else
        groups[s.queue].push_back(&s);
    }
    for (const auto& [group, members] : groups) out.push_back(members[queue_turns[group]++ % members.size()]->handler);
    return out;
  }

  std::uint64_t add(subscriber s) {
    std::lock_guard lock(m);
    const auto id = next_id++;
    subscribers.emplace(id, std::move(s));
    return id;
  }
  void remove(std::uint64_t id) {
    std::lock_guard lock(m);
    subscribers.erase(id);
  }

  /// Posts `msg` to its receivers; false when there are none.
  bool deliver(message msg) {
    std::lock_guard lock(m);
    auto targets = receivers(msg.subject);
    for (auto& handler : targets) post([handler, msg] { handler(msg); });
    return !targets.empty();
  }
};

/// Removes its entry when destroyed, if the bus is still there.
class local_subscription : public subscription {
 public:
  local_subscription(std::function<void()> remove) : remove_(std::move(remove)) {}
  ~local_subscription() override { remove_(); }

 private:
  std::function<void()> remove_;
};

class local_bucket : public kv_bucket, public std::enable_shared_from_this<local_bucket> {
 public:
  local_bucket(std::weak_ptr<core> owner, std::size_t max_value) : owner_(std::move(owner)), max_value_(max_value) {}

  void get(std::string key, entry_handler done) override {
    std::lock_guard lock(m_);
    if (!valid_key(key)) return reply(std::move(done), result<kv_entry>{bus_error::invalid});
    auto it = keys_.find(key);
    if (it == keys_.end() || it->second.deleted) return reply(std::move(done), result<kv_entry>{bus_error::not_found});
    reply(std::move(done), result<kv_entry>{kv_entry{key, it->second.value, it->second.revision, false}});
  }

  void put(std::string key, std::string value, revision_handler done) override {
    write(std::move(key), std::move(value), std::nullopt, false, std::move(done));
  }
  void create(std::string key, std::string value, revision_handler done) override {
    write(std::move(key), std::move(value), 0, false, std::move(done));
  }
  void update(std::string key, std::string value, std::uint64_t expected, revision_handler done) override {
    write(std::move(key), std::move(value), expected, false, std::move(done));
  }
  void erase(std::string key, std::optional<std::uint64_t> expected, done_handler done) override {
    write(std::move(key), {}, expected, true, [done = std::move(done)](result<std::uint64_t> r) {
      if (done) done(error_of(r));
    });
  }

  subscription_ptr watch(std::string pattern, watch_handler on_entry) override {
    std::lock_guard lock(m_);
    const auto id = next_watch_++;
    // The current values and the caught-up mark are posted under the lock, so no later change can overtake them.
    for (const auto& [key, slot] : keys_)
      if (!slot.deleted && subject_matches(pattern, key))
        post([on_entry, e = kv_entry{key, slot.value, slot.revision, false}] { on_entry(e); });
    post([on_entry] { on_entry(std::nullopt); });
    watchers_.emplace(id, watcher{std::move(pattern), std::move(on_entry)});
    return std::make_unique<local_subscription>([weak = weak_from_this(), id] {
      if (auto self = weak.lock()) {
        std::lock_guard lock(self->m_);
        self->watchers_.erase(id);
      }
    });
  }

 private:
  struct slot {
    std::string value;
    std::uint64_t revision = 0;
    bool deleted = false;
  };
  struct watcher {
    std::string pattern;
    watch_handler handler;
  };

  void post(std::function<void()> f) {
    if (auto c = owner_.lock()) c->post(std::move(f));
  }
  template <class Handler, class Value>
  void reply(Handler done, Value v) {
    if (done) post([done = std::move(done), v = std::move(v)] { done(v); });
  }

  /// One write: `expected` 0 means "must not exist", a revision means compare-and-set, none means always.
  void write(std::string key, std::string value, std::optional<std::uint64_t> expected, bool deleted,
             revision_handler done) {
    std::lock_guard lock(m_);
    if (!valid_key(key) || value.size() > max_value_) return reply(std::move(done), result<std::uint64_t>{bus_error::invalid});
    auto it = keys_.find(key);
    const bool live = it != keys_.end() && !it->second.deleted;
    if (expected) {
      const bool ok = *expected == 0 ? !live : live && it->second.revision == *expected;
      if (!ok) return reply(std::move(done), result<std::uint64_t>{bus_error::conflict});
    }
    const auto rev = ++revision_;
    keys_[key] = slot{value, rev, deleted};
    for (const auto& [_, w] : watchers_)
      if (subject_matches(w.pattern, key))
        post([h = w.handler, e = kv_entry{key, value, rev, deleted}] { h(e); });
    reply(std::move(done), result<std::uint64_t>{rev});
  }

  std::weak_ptr<core> owner_;
  const std::size_t max_value_;
  std::mutex m_;
  std::map<std::string, slot> keys_;
  std::uint64_t revision_ = 0;
  std::map<std::uint64_t, watcher> watchers_;
  std::uint64_t next_watch_ = 1;
};

class local_bus : public bus {
 public:
  explicit local_bus(callback_runner runner) : core_(std::make_shared<core>()), guard_(net::make_work_guard(core_->ioc)) {
    core_->runner = std::move(runner);
    thread_ = std::thread([c = core_] { c->ioc.run(); });
  }
  ~local_bus() override {
    guard_.reset();
    core_->ioc.stop();
    // Dropped from one of its own callbacks: the thread cannot join itself, and ends on its own.
    if (thread_.get_id() == std::this_thread::get_id())
      thread_.detach();
    else
      thread_.join();
  }

  void publish(std::string subject, std::string data) override {
    if (!valid_subject(subject, false)) return;
    core_->deliver(message{std::move(subject), {}, std::move(data)});
  }

  subscription_ptr subscribe(std::string subject, message_handler on_message, std::string queue_group) override {
    if (!valid_subject(subject, true)) return nullptr;
    const auto id = core_->add({std::move(subject), std::move(queue_group), std::move(on_message)});
    return std::make_unique<local_subscription>([weak = std::weak_ptr<core>(core_), id] {
      if (auto c = weak.lock()) c->remove(id);
    });
  }

  void request(std::string subject, std::string data, std::chrono::milliseconds timeout,
               reply_handler done) override {
    if (!valid_subject(subject, false)) {
      core_->post([done] { done(bus_error::invalid); });
      return;
    }
    // One inbox per request; whichever comes first (the answer or the timer) ends it.
    struct pending {
      reply_handler done;
      net::steady_timer timer;
      std::atomic<std::uint64_t> inbox_id{0};
      std::atomic<bool> finished{false};
      pending(reply_handler d, net::io_context& ioc) : done(std::move(d)), timer(ioc) {}
    };
    auto p = std::make_shared<pending>(std::move(done), core_->ioc);
    // The answer (on the callback runner) and the timer (on the bus's thread) race: whichever comes first.
    auto finish = [weak = std::weak_ptr<core>(core_), p](result<std::string> r) {
      if (p->finished.exchange(true)) return;
      if (auto c = weak.lock()) {
        net::post(c->ioc, [p] { p->timer.cancel(); });
        c->remove(p->inbox_id);
      }
      p->done(std::move(r));
    };
    core_->post([weak = std::weak_ptr<core>(core_), p, finish, subject = std::move(subject), data = std::move(data),
                 timeout]() mutable {
      auto c = weak.lock();
      if (!c) return;
      std::string inbox;
      {
        std::lock_guard lock(c->m);
        inbox = "_INBOX.local." + std::to_string(c->next_id);
      }
      p->inbox_id = c->add({inbox, {}, [finish](message m) { finish(std::move(m.data)); }});
      if (!c->deliver(message{std::move(subject), inbox, std::move(data)})) return finish(bus_error::no_responders);
      net::post(c->ioc, [p, finish, timeout] {
        p->timer.expires_after(timeout);
        p->timer.async_wait([finish](const boost::system::error_code& ec) {
          if (!ec) finish(bus_error::timeout);
        });
      });
    });
  }

  std::shared_ptr<kv_bucket> bucket(const std::string& name, std::size_t max_value_bytes) override {
    std::lock_guard lock(buckets_m_);
    auto& b = buckets_[name];
    if (!b) b = std::make_shared<local_bucket>(core_, max_value_bytes);
    return b;
  }

  link_state state() const override { return link_state::connected; }
  void on_state_change(state_handler) override {}  // never changes
  std::string describe() const override { return "in-process (single node)"; }

 private:
  std::shared_ptr<core> core_;
  net::executor_work_guard<net::io_context::executor_type> guard_;
  std::thread thread_;
  std::mutex buckets_m_;
  std::map<std::string, std::shared_ptr<local_bucket>> buckets_;
};

}  // namespace

std::shared_ptr<bus> make_local_bus() { return std::make_shared<local_bus>(nullptr); }
std::shared_ptr<bus> make_local_bus(callback_runner run_callback) {
  return std::make_shared<local_bus>(std::move(run_callback));
}

}  // namespace sb::cluster

// The NATS bus. Threads: nats.c delivers messages on its global delivery pool and connection events on its
// own thread; blocking JetStream calls (every KV operation) run on one worker thread of ours, so no caller
// waits; watches get their values on the delivery pool and have a thread of ours each that restarts their
// consumer when needed; request timeouts are timers on a second thread of ours.
#include "cluster/nats_bus.hpp"

#include <nats/nats.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "cluster/subjects.hpp"

namespace sb::cluster {

namespace {

namespace net = boost::asio;

std::string last_error_text(natsStatus s) {
  natsStatus ignored;
  const char* text = nats_GetLastError(&ignored);
  return text && *text ? text : natsStatus_GetText(s);
}

void check(natsStatus s, const char* what) {
  if (s != NATS_OK) throw std::runtime_error(std::string("NATS: ") + what + ": " + last_error_text(s));
}

/// How a failed nats.c call reads to our callers. A lost compare-and-set comes back from JetStream as a
/// generic error whose text names the wrong last sequence.
bus_error error_from(natsStatus s) {
  switch (s) {
    case NATS_TIMEOUT:
      return bus_error::timeout;
    case NATS_NO_RESPONDERS:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NOT_YET_CONNECTED:
    case NATS_STALE_CONNECTION:
      return bus_error::unavailable;
    case NATS_NOT_FOUND:
      return bus_error::not_found;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
    case NATS_MAX_PAYLOAD:
      return bus_error::invalid;
    default:
      break;
  }
  const auto text = last_error_text(s);
  if (text.find("wrong last sequence") != std::string::npos || text.find("key exists") != std::string::npos)
    return bus_error::conflict;
  return bus_error::unavailable;  // "stream not found" among others: the bucket is reopened
}

/// One io_context and its thread.
class worker {
 public:
  worker() : guard_(net::make_work_guard(ioc_)), thread_([this] { ioc_.run(); }) {}
  ~worker() {
    guard_.reset();
    ioc_.stop();
    if (thread_.get_id() == std::this_thread::get_id())
      thread_.detach();
    else
      thread_.join();
  }
  net::io_context& ioc() { return ioc_; }
  void post(std::function<void()> f) { net::post(ioc_, std::move(f)); }

 private:
  net::io_context ioc_;
  net::executor_work_guard<net::io_context::executor_type> guard_;
  std::thread thread_;
};

/// The connection and what every part of the bus shares. Connection events reach it through a registry of
/// ids, not a raw pointer: nats.c may deliver a queued event after the connection object is gone.
struct link {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  nats_settings settings;
  std::atomic<link_state> state{link_state::reconnecting};
  std::atomic<std::uint64_t> generation{0};  // grows on every reconnect: buckets reopen, watches restart
  std::mutex handler_m;
  state_handler on_state;

  void set_state(link_state s) {
    state.store(s);
    if (s == link_state::connected) generation.fetch_add(1);
    state_handler h;
    {
      std::lock_guard lock(handler_m);
      h = on_state;
    }
    if (h) h(s);
  }

  ~link() {
    if (js) jsCtx_Destroy(js);
    if (nc) natsConnection_Destroy(nc);
  }
};

std::mutex links_m;
std::map<std::uintptr_t, std::weak_ptr<link>> links;
std::uintptr_t next_link_id = 1;

std::shared_ptr<link> link_of(void* closure) {
  std::lock_guard lock(links_m);
  auto it = links.find(reinterpret_cast<std::uintptr_t>(closure));
  return it == links.end() ? nullptr : it->second.lock();
}

void on_connected(natsConnection*, void* closure) {
  if (auto l = link_of(closure)) l->set_state(link_state::connected);
}
void on_disconnected(natsConnection*, void* closure) {
  if (auto l = link_of(closure)) l->set_state(link_state::reconnecting);
}
void on_closed(natsConnection*, void* closure) {
  if (auto l = link_of(closure)) l->set_state(link_state::closed);
}

// -- subscriptions --

/// Subscribes `on_msg` with a heap closure that nats.c's completion callback frees once no delivery can still
/// use it; nullptr (the closure freed) when nats.c refuses.
template <class Box>
natsSubscription* subscribe_boxed(natsConnection* nc, const std::string& subject, const std::string& queue,
                                  natsMsgHandler on_msg, Box* box) {
  natsSubscription* sub = nullptr;
  const auto s = queue.empty() ? natsConnection_Subscribe(&sub, nc, subject.c_str(), on_msg, box)
                               : natsConnection_QueueSubscribe(&sub, nc, subject.c_str(), queue.c_str(), on_msg, box);
  if (s != NATS_OK) {
    delete box;
    return nullptr;
  }
  if (natsSubscription_SetOnCompleteCB(sub, [](void* closure) { delete static_cast<Box*>(closure); }, box) !=
      NATS_OK) {
    // Without the completion callback the box cannot be freed safely; keep it (one small leak, logged by
    // nobody) rather than risk a delivery into freed memory.
  }
  return sub;
}

/// A subscription's handler.
struct handler_box {
  message_handler handler;
};

void on_message(natsConnection*, natsSubscription*, natsMsg* m, void* closure) {
  message msg;
  msg.subject = natsMsg_GetSubject(m);
  if (const char* reply = natsMsg_GetReply(m)) msg.reply_to = reply;
  msg.data.assign(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
  natsMsg_Destroy(m);
  static_cast<handler_box*>(closure)->handler(std::move(msg));
}

class nats_subscription : public subscription {
 public:
  nats_subscription(std::shared_ptr<link> l, natsSubscription* sub) : link_(std::move(l)), sub_(sub) {}
  ~nats_subscription() override {
    natsSubscription_Unsubscribe(sub_);
    natsSubscription_Destroy(sub_);
  }

 private:
  std::shared_ptr<link> link_;  // the connection outlives its subscriptions
  natsSubscription* sub_;
};

/// Subscribes with a heap handler handed to nats.c; nullptr when nats.c refuses.
subscription_ptr subscribe_on(const std::shared_ptr<link>& l, const std::string& subject, const std::string& queue,
                              message_handler handler) {
  auto* sub = subscribe_boxed(l->nc, subject, queue, on_message, new handler_box{std::move(handler)});
  if (!sub) return nullptr;
  natsSubscription_SetPendingLimits(sub, -1, -1);  // bounded by the node's own queues, not by dropping here
  return std::make_unique<nats_subscription>(l, sub);
}

// -- requests: one inbox subscription, one timer per request --

class request_table : public std::enable_shared_from_this<request_table> {
 public:
  explicit request_table(worker& timers) : timers_(timers) {}

  std::string add(reply_handler done, std::chrono::milliseconds timeout) {
    std::uint64_t token;
    auto timer = std::make_shared<net::steady_timer>(timers_.ioc());
    {
      std::lock_guard lock(m_);
      token = next_++;
      pending_.emplace(token, entry{std::move(done), timer});
    }
    timers_.post([weak = weak_from_this(), timer, token, timeout] {
      timer->expires_after(timeout);
      timer->async_wait([weak, token](const boost::system::error_code& ec) {
        if (ec) return;
        if (auto self = weak.lock()) self->finish(token, bus_error::timeout);
      });
    });
    return prefix_ + std::to_string(token);
  }

  /// Ends a request with its answer or error; later calls for the same token do nothing.
  void finish(std::uint64_t token, result<std::string> r) {
    entry e;
    {
      std::lock_guard lock(m_);
      auto it = pending_.find(token);
      if (it == pending_.end()) return;
      e = std::move(it->second);
      pending_.erase(it);
    }
    timers_.post([timer = e.timer] { timer->cancel(); });
    e.done(std::move(r));
  }

  void on_reply(const std::string& subject, result<std::string> r) {
    if (subject.size() <= prefix_.size()) return;
    try {
      finish(std::stoull(subject.substr(prefix_.size())), std::move(r));
    } catch (const std::exception&) {
    }
  }

  std::string prefix_;  // "<inbox>." : set once before any request

 private:
  struct entry {
    reply_handler done;
    std::shared_ptr<net::steady_timer> timer;
  };
  worker& timers_;
  std::mutex m_;
  std::map<std::uint64_t, entry> pending_;
  std::uint64_t next_ = 1;
};

struct reply_box {
  std::weak_ptr<request_table> table;
};

void on_reply(natsConnection*, natsSubscription*, natsMsg* m, void* closure) {
  const std::string subject = natsMsg_GetSubject(m);
  result<std::string> r = bus_error::no_responders;
  if (!natsMsg_IsNoResponders(m))
    r = std::string(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
  natsMsg_Destroy(m);
  if (auto table = static_cast<reply_box*>(closure)->table.lock()) table->on_reply(subject, std::move(r));
}

// -- key-value --

/// A JetStream KV bucket, opened (made when missing) on first use and again after every reconnect: a NATS
/// server restarted without its store has lost the stream.
class bucket_handle {
 public:
  bucket_handle(std::shared_ptr<link> l, std::string name, std::size_t max_value)
      : link_(std::move(l)), name_(std::move(name)), max_value_(max_value) {}
  ~bucket_handle() {
    if (kv_) kvStore_Destroy(kv_);
  }

  /// The store for this connection generation, or the error opening it. Blocking: worker threads only.
  result<kvStore*> open() {
    std::lock_guard lock(m_);
    const auto gen = link_->generation.load();
    if (kv_ && gen == opened_gen_) return kv_;
    if (link_->state.load() != link_state::connected) return bus_error::unavailable;
    if (kv_) {
      kvStore_Destroy(kv_);
      kv_ = nullptr;
    }
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = name_.c_str();
    cfg.History = 1;
    cfg.MaxValueSize = static_cast<int32_t>(max_value_);
    cfg.StorageType = js_MemoryStorage;  // cluster state is rebuilt by the nodes after a NATS restart
    cfg.Replicas = link_->settings.kv_replicas;
    auto s = js_CreateKeyValue(&kv_, link_->js, &cfg);
    if (s != NATS_OK) s = js_KeyValue(&kv_, link_->js, name_.c_str());  // made before with other settings
    if (s != NATS_OK) {
      kv_ = nullptr;
      return error_from(s);
    }
    opened_gen_ = gen;
    return kv_;
  }

  /// After a failure that may mean the stream is gone: reopen on the next operation.
  void reopen_later() {
    std::lock_guard lock(m_);
    opened_gen_ = ~std::uint64_t{0};
  }

  const std::shared_ptr<link>& owner() const { return link_; }
  const std::string& name() const { return name_; }
  std::size_t max_value() const { return max_value_; }

 private:
  std::shared_ptr<link> link_;
  std::string name_;
  std::size_t max_value_;
  std::mutex m_;
  kvStore* kv_ = nullptr;
  std::uint64_t opened_gen_ = ~std::uint64_t{0};
};

kv_entry entry_from(kvEntry* e) {
  kv_entry out;
  out.key = kvEntry_Key(e);
  out.value.assign(static_cast<const char*>(kvEntry_Value(e)), static_cast<std::size_t>(kvEntry_ValueLen(e)));
  out.revision = kvEntry_Revision(e);
  const auto op = kvEntry_Operation(e);
  out.deleted = op == kvOp_Delete || op == kvOp_Purge;
  return out;
}

/// What a watch's deliveries share with the watch. Deliveries run on nats.c's pool and may still be under
/// way when the watch is gone, so they hold this, not the watch; the epoch the watch's last drop_consumer
/// leaves matches no delivery, so the handler never runs once the destructor has returned.
struct watch_core {
  std::mutex m;
  std::uint64_t epoch = 0;  // one per consumer: deliveries of an abandoned one are dropped
  bool caught_up = false;
  bool broken = false;          // a gap in the consumer's sequence: start over
  std::uint64_t next_seq = 1;   // the consumer sequence the next delivery must carry
  std::chrono::steady_clock::time_point last_seen;  // data or idle heartbeat
  std::string key_prefix;       // "$KV.<bucket>."
  watch_handler handler;
};

struct watch_box {
  std::shared_ptr<watch_core> core;
  std::uint64_t epoch;
};

void on_watch_message(natsConnection*, natsSubscription*, natsMsg* m, void* closure) {
  auto& box = *static_cast<watch_box*>(closure);
  auto& core = *box.core;
  // Idle heartbeats come without a reply subject; every stored value has the "$JS.ACK." one that carries
  // its stream sequence (the revision) and how many values the consumer still has to deliver.
  jsMsgMetaData* meta = nullptr;
  const char* reply = natsMsg_GetReply(m);
  const bool data = reply && std::strncmp(reply, "$JS.ACK.", 8) == 0 && natsMsg_GetMetaData(&meta, m) == NATS_OK;
  kv_entry entry;
  std::uint64_t pending = 0, seq = 0;
  if (data) {
    const std::string subject = natsMsg_GetSubject(m);
    entry.key = subject.substr(std::min(subject.size(), core.key_prefix.size()));
    entry.value.assign(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
    entry.revision = meta->Sequence.Stream;
    const char* op = nullptr;
    if (natsMsgHeader_Get(m, "KV-Operation", &op) == NATS_OK && op)
      entry.deleted = std::strcmp(op, "DEL") == 0 || std::strcmp(op, "PURGE") == 0;
    pending = meta->NumPending;
    seq = meta->Sequence.Consumer;
    jsMsgMetaData_Destroy(meta);
  }
  natsMsg_Destroy(m);
  std::lock_guard lock(core.m);
  if (box.epoch != core.epoch) return;
  core.last_seen = std::chrono::steady_clock::now();
  if (!data || core.broken) return;
  if (seq != core.next_seq) {
    core.broken = true;  // a lost delivery: the watch thread makes a new consumer, which sends all again
    return;
  }
  ++core.next_seq;
  if (!entry.deleted || core.caught_up) core.handler(std::move(entry));  // current values are live ones
  if (!core.caught_up && pending == 0) {
    core.caught_up = true;
    core.handler(std::nullopt);
  }
}

/// A watch: a push consumer of our own (ephemeral, no acks, the last value of each key first, idle
/// heartbeats) delivering into a plain subscription, and a thread that makes a new consumer after a
/// reconnect, a gap or silent heartbeats, delivering the current values again each time so the watcher's
/// copy converges whatever happened while it was away.
/// Not nats.c's kvWatcher: nats.c resets its ordered consumer on every reconnect in a thread of its own that
/// frees the consumer's name, and stopping the watcher meanwhile reads that freed name (ASan caught it in the
/// NATS outage test). Here the names are ours.
class nats_watch : public subscription {
 public:
  static constexpr std::chrono::milliseconds heartbeat{1000};
  static constexpr std::chrono::milliseconds silence_limit = 3 * heartbeat;

  nats_watch(std::shared_ptr<bucket_handle> bucket, std::string pattern, watch_handler handler)
      : bucket_(std::move(bucket)), pattern_(std::move(pattern)), core_(std::make_shared<watch_core>()) {
    core_->key_prefix = "$KV." + bucket_->name() + ".";
    core_->handler = std::move(handler);
    thread_ = std::thread([this] { run(); });
  }
  ~nats_watch() override {
    {
      std::lock_guard lock(stop_m_);
      stop_ = true;
    }
    stop_cv_.notify_all();
    thread_.join();
  }

 private:
  void run() {
    std::uint64_t gen = 0;
    std::unique_lock lock(stop_m_);
    while (!stop_) {
      lock.unlock();
      const auto& l = bucket_->owner();
      if (sub_ && (gen != l->generation.load() || needs_restart())) drop_consumer();
      if (!sub_) {
        gen = l->generation.load();
        if (!start_consumer()) drop_consumer();
      }
      lock.lock();
      stop_cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stop_; });
    }
    lock.unlock();
    drop_consumer();
  }

  bool needs_restart() {
    std::lock_guard lock(core_->m);
    return core_->broken || std::chrono::steady_clock::now() - core_->last_seen > silence_limit;
  }

  /// Subscribes a fresh inbox, then makes the consumer that delivers into it. Blocking: this thread only.
  bool start_consumer() {
    const auto& l = bucket_->owner();
    auto kv = bucket_->open();  // makes the bucket when NATS lost it
    if (!value_of(kv)) return false;
    natsInbox* inbox = nullptr;
    if (natsInbox_Create(&inbox) != NATS_OK) return false;
    const std::string deliver = inbox;
    natsInbox_Destroy(inbox);
    std::uint64_t epoch;
    {
      std::lock_guard lock(core_->m);
      epoch = ++core_->epoch;
      core_->caught_up = false;
      core_->broken = false;
      core_->next_seq = 1;
      core_->last_seen = std::chrono::steady_clock::now();
    }
    sub_ = subscribe_boxed(l->nc, deliver, "", on_watch_message, new watch_box{core_, epoch});
    if (!sub_) return false;
    natsSubscription_SetPendingLimits(sub_, -1, -1);
    const auto filter = core_->key_prefix + pattern_;
    jsConsumerConfig cfg;
    jsConsumerConfig_Init(&cfg);
    cfg.DeliverSubject = deliver.c_str();
    cfg.DeliverPolicy = js_DeliverLastPerSubject;
    cfg.AckPolicy = js_AckNone;
    cfg.FilterSubject = filter.c_str();
    cfg.Heartbeat = std::chrono::nanoseconds(heartbeat).count();
    cfg.InactiveThreshold = std::chrono::nanoseconds(silence_limit).count();  // the server's own cleanup
    cfg.MemoryStorage = true;
    stream_ = "KV_" + bucket_->name();
    jsConsumerInfo* ci = nullptr;
    if (js_AddConsumer(&ci, l->js, stream_.c_str(), &cfg, nullptr, nullptr) != NATS_OK) return false;
    consumer_ = ci->Name ? ci->Name : "";
    const bool nothing_stored = ci->NumPending == 0;
    jsConsumerInfo_Destroy(ci);
    if (nothing_stored) {
      std::lock_guard lock(core_->m);
      if (core_->epoch == epoch && !core_->caught_up) {
        core_->caught_up = true;
        core_->handler(std::nullopt);
      }
    }
    return true;
  }

  /// Ends the current consumer: its deliveries stop counting at once; the server deletes it now, or after
  /// the inactive threshold when it cannot be told.
  void drop_consumer() {
    {
      std::lock_guard lock(core_->m);
      ++core_->epoch;
    }
    if (sub_) {
      natsSubscription_Unsubscribe(sub_);
      natsSubscription_Destroy(sub_);
      sub_ = nullptr;
    }
    if (!consumer_.empty() && bucket_->owner()->state.load() == link_state::connected)
      js_DeleteConsumer(bucket_->owner()->js, stream_.c_str(), consumer_.c_str(), nullptr, nullptr);
    consumer_.clear();
  }

  std::shared_ptr<bucket_handle> bucket_;
  std::string pattern_;
  std::shared_ptr<watch_core> core_;
  natsSubscription* sub_ = nullptr;  // this thread only
  std::string stream_, consumer_;    // this thread only
  std::mutex stop_m_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread thread_;
};

class nats_bucket : public kv_bucket {
 public:
  nats_bucket(std::shared_ptr<bucket_handle> handle, std::shared_ptr<worker> kv_worker)
      : handle_(std::move(handle)), worker_(std::move(kv_worker)) {}

  void get(std::string key, entry_handler done) override {
    run<kv_entry>(std::move(key), std::move(done), [](kvStore* kv, const std::string& k) -> result<kv_entry> {
      kvEntry* e = nullptr;
      const auto s = kvStore_Get(&e, kv, k.c_str());
      if (s != NATS_OK) return error_from(s);
      auto entry = entry_from(e);
      kvEntry_Destroy(e);
      if (entry.deleted) return bus_error::not_found;
      return entry;
    });
  }

  void put(std::string key, std::string value, revision_handler done) override {
    write(std::move(key), std::move(value), std::move(done), [](kvStore* kv, const std::string& k, const std::string& v) {
      std::uint64_t rev = 0;
      const auto s = kvStore_Put(&rev, kv, k.c_str(), v.data(), static_cast<int>(v.size()));
      return s == NATS_OK ? result<std::uint64_t>{rev} : result<std::uint64_t>{error_from(s)};
    });
  }

  void create(std::string key, std::string value, revision_handler done) override {
    write(std::move(key), std::move(value), std::move(done), [](kvStore* kv, const std::string& k, const std::string& v) {
      std::uint64_t rev = 0;
      const auto s = kvStore_Create(&rev, kv, k.c_str(), v.data(), static_cast<int>(v.size()));
      if (s == NATS_OK) return result<std::uint64_t>{rev};
      return result<std::uint64_t>{error_from(s)};
    });
  }

  void update(std::string key, std::string value, std::uint64_t expected, revision_handler done) override {
    write(std::move(key), std::move(value), std::move(done),
          [expected](kvStore* kv, const std::string& k, const std::string& v) {
            std::uint64_t rev = 0;
            const auto s = kvStore_Update(&rev, kv, k.c_str(), v.data(), static_cast<int>(v.size()), expected);
            return s == NATS_OK ? result<std::uint64_t>{rev} : result<std::uint64_t>{error_from(s)};
          });
  }

  void erase(std::string key, std::optional<std::uint64_t> expected, done_handler done) override {
    const auto subject = "$KV." + handle_->name() + "." + key;
    run<bool>(std::move(key),
              [done = std::move(done)](result<bool> r) {
                if (done) done(error_of(r));
              },
              [expected, subject, h = handle_](kvStore* kv, const std::string& k) -> result<bool> {
                if (!expected) {
                  const auto s = kvStore_Delete(kv, k.c_str());
                  if (s != NATS_OK) return error_from(s);
                  return true;
                }
                // nats.c has no compare-and-set delete: a delete marker published with the expected last
                // sequence of the key's subject is one.
                natsMsg* m = nullptr;
                if (natsMsg_Create(&m, subject.c_str(), nullptr, nullptr, 0) != NATS_OK) return bus_error::unavailable;
                natsMsgHeader_Set(m, "KV-Operation", "DEL");
                jsPubOptions opts;
                jsPubOptions_Init(&opts);
                opts.ExpectLastSubjectSeq = *expected;
                jsErrCode jerr = static_cast<jsErrCode>(0);
                jsPubAck* ack = nullptr;
                const auto s = js_PublishMsg(&ack, h->owner()->js, m, &opts, &jerr);
                natsMsg_Destroy(m);
                if (ack) jsPubAck_Destroy(ack);
                if (s == NATS_OK) return true;
                if (jerr == JSStreamWrongLastSequenceErr) return bus_error::conflict;
                return error_from(s);
              });
  }

  subscription_ptr watch(std::string pattern, watch_handler on_entry) override {
    if (!valid_subject(pattern, true)) return nullptr;
    return std::make_unique<nats_watch>(handle_, std::move(pattern), std::move(on_entry));
  }

 private:
  /// Runs `op` on the KV worker with the open store; `done` gets its result there.
  template <class T, class Op>
  void run(std::string key, std::function<void(result<T>)> done, Op op) {
    if (!valid_key(key)) {
      worker_->post([done] {
        if (done) done(bus_error::invalid);
      });
      return;
    }
    worker_->post([h = handle_, key = std::move(key), done = std::move(done), op]() {
      auto kv = h->open();
      result<T> r = bus_error::unavailable;
      if (auto* store = value_of(kv))
        r = op(*store, key);
      else
        r = *error_of(kv);
      if (auto e = error_of(r); e && *e == bus_error::unavailable) h->reopen_later();
      if (done) done(std::move(r));
    });
  }

  template <class Op>
  void write(std::string key, std::string value, revision_handler done, Op op) {
    if (value.size() > handle_->max_value()) {
      worker_->post([done] {
        if (done) done(bus_error::invalid);
      });
      return;
    }
    run<std::uint64_t>(std::move(key), std::move(done),
                       [op, value = std::move(value)](kvStore* kv, const std::string& k) { return op(kv, k, value); });
  }

  std::shared_ptr<bucket_handle> handle_;
  std::shared_ptr<worker> worker_;
};

// -- the bus --

class nats_bus : public bus {
 public:
  explicit nats_bus(const nats_settings& settings)
      : link_(std::make_shared<link>()),
        kv_worker_(std::make_shared<worker>()),
        timers_(std::make_shared<worker>()),
        requests_(std::make_shared<request_table>(*timers_)) {
    link_->settings = settings;
    {
      std::lock_guard lock(links_m);
      link_id_ = next_link_id++;
      links.emplace(link_id_, link_);
    }
    connect();
  }

  ~nats_bus() override {
    inbox_.reset();
    {
      std::lock_guard lock(link_->handler_m);
      link_->on_state = nullptr;
    }
    if (link_->nc) natsConnection_Close(link_->nc);
    std::lock_guard lock(links_m);
    links.erase(link_id_);
  }

  void publish(std::string subject, std::string data) override {
    if (!valid_subject(subject, false)) return;
    natsConnection_Publish(link_->nc, subject.c_str(), data.data(), static_cast<int>(data.size()));
  }

  subscription_ptr subscribe(std::string subject, message_handler on_message, std::string queue_group) override {
    if (!valid_subject(subject, true)) return nullptr;
    return subscribe_on(link_, subject, queue_group, std::move(on_message));
  }

  void request(std::string subject, std::string data, std::chrono::milliseconds timeout,
               reply_handler done) override {
    if (!valid_subject(subject, false)) {
      timers_->post([done] { done(bus_error::invalid); });
      return;
    }
    const auto reply = requests_->add(std::move(done), timeout);
    const auto s = natsConnection_PublishRequest(link_->nc, subject.c_str(), reply.c_str(), data.data(),
                                                 static_cast<int>(data.size()));
    if (s != NATS_OK) requests_->on_reply(reply, error_from(s));
  }

  std::shared_ptr<kv_bucket> bucket(const std::string& name, std::size_t max_value_bytes) override {
    std::lock_guard lock(buckets_m_);
    auto& b = buckets_[name];
    if (!b) b = std::make_shared<nats_bucket>(std::make_shared<bucket_handle>(link_, name, max_value_bytes), kv_worker_);
    return b;
  }

  link_state state() const override { return link_->state.load(); }
  void on_state_change(state_handler handler) override {
    std::lock_guard lock(link_->handler_m);
    link_->on_state = std::move(handler);
  }
  std::string describe() const override {
    char url[256] = {0};
    if (natsConnection_GetConnectedUrl(link_->nc, url, sizeof url) == NATS_OK && url[0]) return std::string("nats ") + url;
    std::string out = "nats (not connected)";
    for (const auto& s : link_->settings.servers) out += " " + s;
    return out;
  }

 private:
  void connect() {
    const auto& st = link_->settings;
    if (st.servers.empty()) throw std::runtime_error("NATS: no server URL");
    natsOptions* opts = nullptr;
    check(natsOptions_Create(&opts), "options");
    std::unique_ptr<natsOptions, decltype(&natsOptions_Destroy)> owned(opts, natsOptions_Destroy);
    std::vector<const char*> urls;
    bool tls = !st.ca_file.empty();
    for (const auto& s : st.servers) {
      urls.push_back(s.c_str());
      if (s.rfind("tls://", 0) == 0) tls = true;
    }
    check(natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size())), "servers");
    if (!st.client_name.empty()) check(natsOptions_SetName(opts, st.client_name.c_str()), "name");
    if (!st.token.empty()) check(natsOptions_SetToken(opts, st.token.c_str()), "token");
    if (!st.user.empty()) check(natsOptions_SetUserInfo(opts, st.user.c_str(), st.password.c_str()), "user");
    if (!st.creds_file.empty())
      check(natsOptions_SetUserCredentialsFromFiles(opts, st.creds_file.c_str(), nullptr), "creds file");
    if (!st.nkey_seed_file.empty())
      check(natsOptions_SetNKeyFromSeed(opts, st.nkey_public.c_str(), st.nkey_seed_file.c_str()), "nkey seed");
    if (tls) {
      check(natsOptions_SetSecure(opts, true), "tls");
      if (!st.ca_file.empty()) check(natsOptions_LoadCATrustedCertificates(opts, st.ca_file.c_str()), "CA file");
    }
    auto* closure = reinterpret_cast<void*>(link_id_);
    check(natsOptions_SetTimeout(opts, st.connect_timeout.count()), "timeout");
    check(natsOptions_SetAllowReconnect(opts, true), "reconnect");
    check(natsOptions_SetMaxReconnect(opts, -1), "reconnect");  // for ever: the node outlives NATS outages
    check(natsOptions_SetReconnectWait(opts, st.reconnect_wait.count()), "reconnect wait");
    check(natsOptions_SetReconnectBufSize(opts, st.reconnect_buffer_bytes), "reconnect buffer");
    check(natsOptions_SetPingInterval(opts, st.ping_interval.count()), "ping interval");
    check(natsOptions_SetMaxPingsOut(opts, 2), "pings");
    check(natsOptions_UseGlobalMessageDelivery(opts, true), "delivery pool");  // not a thread per subscription
    check(natsOptions_SetDisconnectedCB(opts, on_disconnected, closure), "callbacks");
    check(natsOptions_SetReconnectedCB(opts, on_connected, closure), "callbacks");
    check(natsOptions_SetClosedCB(opts, on_closed, closure), "callbacks");
    check(natsOptions_SetRetryOnFailedConnect(opts, true, on_connected, closure), "retry");
    const auto s = natsConnection_Connect(&link_->nc, opts);
    if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) check(s, "connect");
    if (s == NATS_OK) link_->set_state(link_state::connected);
    jsOptions js_opts;
    jsOptions_Init(&js_opts);
    js_opts.Wait = st.kv_timeout.count();
    check(natsConnection_JetStream(&link_->js, link_->nc, &js_opts), "JetStream");
    start_inbox();
  }

  void start_inbox() {
    natsInbox* inbox = nullptr;
    check(natsInbox_Create(&inbox), "inbox");
    requests_->prefix_ = std::string(inbox) + ".";
    natsInbox_Destroy(inbox);
    auto* sub = subscribe_boxed(link_->nc, requests_->prefix_ + "*", "", on_reply, new reply_box{requests_});
    if (!sub) throw std::runtime_error("NATS: cannot subscribe to the reply inbox");
    inbox_ = std::make_unique<nats_subscription>(link_, sub);
  }

  std::shared_ptr<link> link_;
  std::uintptr_t link_id_ = 0;
  std::shared_ptr<worker> kv_worker_;
  std::shared_ptr<worker> timers_;
  std::shared_ptr<request_table> requests_;
  subscription_ptr inbox_;
  std::mutex buckets_m_;
  std::map<std::string, std::shared_ptr<nats_bucket>> buckets_;
};

}  // namespace

std::shared_ptr<bus> make_nats_bus(const nats_settings& settings) {
  static std::once_flag pool_once;
  std::call_once(pool_once, [] { nats_SetMessageDeliveryPoolSize(2); });
  return std::make_shared<nats_bus>(settings);
}

}  // namespace sb::cluster

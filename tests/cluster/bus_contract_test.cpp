// The bus contract: the in-process bus and the NATS bus (against a real nats-server on 127.0.0.1) pass the
// same tests, so the gateway's actors cannot tell them apart.
#include <catch2/catch.hpp>
#include <nats/nats.h>

#include <map>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "cluster/local_bus.hpp"
#include "cluster/nats_bus.hpp"
#include "support/gateway_fixture.hpp"
#include "support/nats_server.hpp"

using namespace sb::cluster;
using namespace std::chrono_literals;
using sb::test::temp_dir;

namespace {

/// Values handed over from bus callbacks to the test thread.
template <class T>
class mailbox {
 public:
  void push(T v) {
    std::lock_guard lock(m_);
    items_.push_back(std::move(v));
    cv_.notify_all();
  }
  std::optional<T> pop(std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(m_);
    if (!cv_.wait_for(lock, timeout, [&] { return !items_.empty(); })) return std::nullopt;
    auto v = std::move(items_.front());
    items_.pop_front();
    return v;
  }
  std::size_t size() {
    std::lock_guard lock(m_);
    return items_.size();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<T> items_;
};

struct local_kind {
  std::shared_ptr<bus> make() { return make_local_bus(); }
};

struct nats_kind {
  temp_dir dir;
  sb::test::nats_server server{dir.path()};
  std::shared_ptr<bus> make() {
    nats_settings s;
    s.servers = {server.url()};
    s.client_name = "contract-test";
    return make_nats_bus(s);
  }
};

/// Subscriptions reach a NATS server asynchronously; a ping-pong through the subject shows this one is live.
void await_live(bus& b, const std::string& subject, mailbox<message>& box) {
  for (int i = 0; i < 100; ++i) {
    b.publish(subject, "probe");
    if (auto m = box.pop(50ms)) {
      while (box.pop(50ms)) {
      }
      return;
    }
  }
  FAIL("subscription to " << subject << " never became live");
}

template <class T>
T wait_result(mailbox<result<T>>& box) {
  auto r = box.pop();
  REQUIRE(r);
  auto* v = value_of(*r);
  INFO("error: " << (v ? "none" : std::string(to_string(*error_of(*r)))));
  REQUIRE(v);
  return *v;
}

template <class T>
bus_error wait_error(mailbox<result<T>>& box) {
  auto r = box.pop();
  REQUIRE(r);
  auto e = error_of(*r);
  REQUIRE(e);
  return *e;
}

}  // namespace

TEMPLATE_TEST_CASE("bus: publish reaches matching subscribers in order", "[cluster][bus]", local_kind, nats_kind) {
  TestType kind;
  auto b = kind.make();
  mailbox<message> one, any;
  auto s1 = b->subscribe("room.*.chat", [&](message m) { one.push(std::move(m)); });
  auto s2 = b->subscribe("room.>", [&](message m) { any.push(std::move(m)); });
  REQUIRE(s1);
  REQUIRE(s2);
  await_live(*b, "room.probe.chat", one);
  while (any.pop(100ms)) {
  }
  for (int i = 0; i < 20; ++i) b->publish("room.a.chat", std::to_string(i));
  b->publish("room.a.b.c", "deep");
  b->publish("other.a.chat", "not ours");
  for (int i = 0; i < 20; ++i) {
    auto m = one.pop();
    REQUIRE(m);
    CHECK(m->subject == "room.a.chat");
    CHECK(m->data == std::to_string(i));
  }
  for (int i = 0; i < 20; ++i) CHECK(any.pop()->data == std::to_string(i));
  CHECK(any.pop()->data == "deep");
  CHECK_FALSE(one.pop(200ms));
  CHECK_FALSE(any.pop(100ms));

  // Destroying the subscription stops delivery.
  s1.reset();
  b->publish("room.a.chat", "after");
  CHECK(any.pop()->data == "after");
  CHECK_FALSE(one.pop(200ms));
}

TEMPLATE_TEST_CASE("bus: a queue group gets each message once", "[cluster][bus]", local_kind, nats_kind) {
  TestType kind;
  auto b = kind.make();
  mailbox<std::string> got;
  mailbox<message> probe;
  auto p = b->subscribe("work.probe", [&](message m) { probe.push(std::move(m)); });
  auto q1 = b->subscribe("work.items", [&](message m) { got.push("1:" + m.data); }, "workers");
  auto q2 = b->subscribe("work.items", [&](message m) { got.push("2:" + m.data); }, "workers");
  await_live(*b, "work.probe", probe);
  for (int i = 0; i < 40; ++i) b->publish("work.items", std::to_string(i));
  std::multiset<std::string> items;
  for (int i = 0; i < 40; ++i) {
    auto m = got.pop();
    REQUIRE(m);
    items.insert(m->substr(2));
  }
  CHECK_FALSE(got.pop(300ms));
  CHECK(items.size() == 40);
  for (int i = 0; i < 40; ++i) CHECK(items.count(std::to_string(i)) == 1);
}

TEMPLATE_TEST_CASE("bus: request gets the reply, a timeout, or no responders at once", "[cluster][bus]",
                   local_kind, nats_kind) {
  TestType kind;
  auto b = kind.make();
  mailbox<message> probe;
  auto echo = b->subscribe("svc.echo", [&, raw = b.get()](message m) {
    if (m.data == "probe") return probe.push(m);
    if (!m.reply_to.empty()) raw->publish(m.reply_to, "echo:" + m.data);
  });
  auto silent = b->subscribe("svc.silent", [](message) {});
  await_live(*b, "svc.echo", probe);

  mailbox<result<std::string>> replies;
  b->request("svc.echo", "hello", 2s, [&](result<std::string> r) { replies.push(std::move(r)); });
  CHECK(wait_result(replies) == "echo:hello");

  const auto asked = std::chrono::steady_clock::now();
  b->request("svc.silent", "anyone?", 300ms, [&](result<std::string> r) { replies.push(std::move(r)); });
  CHECK(wait_error(replies) == bus_error::timeout);
  CHECK(std::chrono::steady_clock::now() - asked >= 250ms);

  const auto nobody = std::chrono::steady_clock::now();
  b->request("svc.nobody", "anyone?", 5s, [&](result<std::string> r) { replies.push(std::move(r)); });
  CHECK(wait_error(replies) == bus_error::no_responders);
  CHECK(std::chrono::steady_clock::now() - nobody < 2s);  // not the 5 s timeout
}

TEMPLATE_TEST_CASE("bus: key-value create, compare-and-set, get and erase", "[cluster][bus][kv]", local_kind,
                   nats_kind) {
  TestType kind;
  auto b = kind.make();
  auto kv = b->bucket("contract_kv", 4096);
  mailbox<result<std::uint64_t>> revs;
  mailbox<result<kv_entry>> entries;
  mailbox<std::optional<bus_error>> done;
  auto rev_cb = [&](result<std::uint64_t> r) { revs.push(std::move(r)); };

  kv->create("sessions.a", "v1", rev_cb);
  const auto r1 = wait_result(revs);
  kv->create("sessions.a", "again", rev_cb);
  CHECK(wait_error(revs) == bus_error::conflict);

  kv->get("sessions.a", [&](result<kv_entry> r) { entries.push(std::move(r)); });
  auto e = wait_result(entries);
  CHECK(e.value == "v1");
  CHECK(e.revision == r1);

  kv->update("sessions.a", "v2", r1, rev_cb);
  const auto r2 = wait_result(revs);
  CHECK(r2 > r1);
  kv->update("sessions.a", "stale", r1, rev_cb);  // lost the race: someone wrote r2 since r1
  CHECK(wait_error(revs) == bus_error::conflict);

  kv->erase("sessions.a", std::nullopt, [&](std::optional<bus_error> err) { done.push(err); });
  auto erased = done.pop();
  REQUIRE(erased);
  CHECK_FALSE(*erased);
  kv->get("sessions.a", [&](result<kv_entry> r) { entries.push(std::move(r)); });
  CHECK(wait_error(entries) == bus_error::not_found);
  kv->create("sessions.a", "reborn", rev_cb);  // an erased key can be created again
  CHECK(wait_result(revs) > r2);

  // Compare-and-set erase: refused at a stale revision, done at the current one.
  kv->put("sessions.b", "1", rev_cb);
  const auto rb1 = wait_result(revs);
  kv->put("sessions.b", "2", rev_cb);
  const auto rb2 = wait_result(revs);
  kv->erase("sessions.b", rb1, [&](std::optional<bus_error> err) { done.push(err); });
  auto stale = done.pop();
  REQUIRE(stale);
  REQUIRE(*stale);
  CHECK(**stale == bus_error::conflict);
  kv->erase("sessions.b", rb2, [&](std::optional<bus_error> err) { done.push(err); });
  auto current = done.pop();
  REQUIRE(current);
  CHECK_FALSE(*current);
  kv->get("sessions.b", [&](result<kv_entry> r) { entries.push(std::move(r)); });
  CHECK(wait_error(entries) == bus_error::not_found);

  kv->put("sessions.bad key", "x", rev_cb);
  CHECK(wait_error(revs) == bus_error::invalid);
  kv->put("sessions.big", std::string(5000, 'x'), rev_cb);  // over the bucket's 4096 bytes
  CHECK(wait_error(revs) == bus_error::invalid);
}

TEMPLATE_TEST_CASE("bus: a watch sees current values, a caught-up mark, then changes", "[cluster][bus][kv]",
                   local_kind, nats_kind) {
  TestType kind;
  auto b = kind.make();
  auto kv = b->bucket("contract_watch", 4096);
  mailbox<result<std::uint64_t>> revs;
  auto rev_cb = [&](result<std::uint64_t> r) { revs.push(std::move(r)); };
  kv->put("s.one", "1", rev_cb);
  kv->put("s.two", "2", rev_cb);
  kv->put("s.gone", "x", rev_cb);
  kv->put("other.key", "not watched", rev_cb);
  for (int i = 0; i < 4; ++i) wait_result(revs);
  mailbox<std::optional<bus_error>> done;
  kv->erase("s.gone", std::nullopt, [&](std::optional<bus_error> e) { done.push(e); });
  REQUIRE(done.pop());

  mailbox<std::optional<kv_entry>> seen;
  auto w = kv->watch("s.>", [&](std::optional<kv_entry> e) { seen.push(std::move(e)); });
  REQUIRE(w);
  std::map<std::string, std::string> initial;
  while (true) {
    auto e = seen.pop();
    REQUIRE(e);
    if (!*e) break;  // caught up
    CHECK_FALSE((*e)->deleted);
    initial[(*e)->key] = (*e)->value;
  }
  CHECK(initial == std::map<std::string, std::string>{{"s.one", "1"}, {"s.two", "2"}});

  kv->put("s.three", "3", rev_cb);
  wait_result(revs);
  auto e3 = seen.pop();
  REQUIRE(e3);
  REQUIRE(*e3);
  CHECK((*e3)->key == "s.three");
  CHECK((*e3)->value == "3");
  kv->erase("s.one", std::nullopt, [&](std::optional<bus_error> e) { done.push(e); });
  REQUIRE(done.pop());
  auto del = seen.pop();
  REQUIRE(del);
  REQUIRE(*del);
  CHECK((*del)->key == "s.one");
  CHECK((*del)->deleted);
  kv->put("other.key", "still not watched", rev_cb);
  wait_result(revs);
  CHECK_FALSE(seen.pop(300ms));
}

TEMPLATE_TEST_CASE("bus: concurrent compare-and-set writers never lose an update", "[cluster][bus][kv]",
                   local_kind, nats_kind) {
  // Two writers add members to one set, each by read-modify-write with retry on conflict, as two nodes
  // joining clients to one session do.
  TestType kind;
  auto b = kind.make();
  auto kv = b->bucket("contract_cas", 65536);
  mailbox<result<std::uint64_t>> revs;
  kv->create("set", "", [&](result<std::uint64_t> r) { revs.push(std::move(r)); });
  wait_result(revs);

  auto add = [&](const std::string& item) {
    for (int attempt = 0; attempt < 200; ++attempt) {
      mailbox<result<kv_entry>> got;
      kv->get("set", [&](result<kv_entry> r) { got.push(std::move(r)); });
      auto current = got.pop();
      if (!current || !value_of(*current)) continue;
      const auto& e = *value_of(*current);
      mailbox<result<std::uint64_t>> wrote;
      kv->update("set", e.value + item + ",", e.revision, [&](result<std::uint64_t> r) { wrote.push(std::move(r)); });
      auto w = wrote.pop();
      if (w && value_of(*w)) return true;
    }
    return false;
  };
  std::atomic<int> failures{0};
  std::thread a([&] {
    for (int i = 0; i < 25; ++i) failures += !add("a" + std::to_string(i));
  });
  std::thread c([&] {
    for (int i = 0; i < 25; ++i) failures += !add("c" + std::to_string(i));
  });
  a.join();
  c.join();
  CHECK(failures == 0);
  mailbox<result<kv_entry>> final_value;
  kv->get("set", [&](result<kv_entry> r) { final_value.push(std::move(r)); });
  const auto v = wait_result(final_value).value;
  std::set<std::string> items;
  std::size_t start = 0;
  for (auto comma = v.find(','); comma != std::string::npos; comma = v.find(',', start)) {
    items.insert(v.substr(start, comma - start));
    start = comma + 1;
  }
  CHECK(items.size() == 50);
}

namespace {

/// Deletes every consumer of a stream behind the bus's back, as a NATS server that lost them would.
void delete_consumers(const std::string& url, const std::string& stream) {
  natsConnection* nc = nullptr;
  REQUIRE(natsConnection_ConnectTo(&nc, url.c_str()) == NATS_OK);
  jsCtx* js = nullptr;
  REQUIRE(natsConnection_JetStream(&js, nc, nullptr) == NATS_OK);
  jsConsumerNamesList* names = nullptr;
  REQUIRE(js_ConsumerNames(&names, js, stream.c_str(), nullptr, nullptr) == NATS_OK);
  CHECK(names->Count == 1);
  for (int i = 0; i < names->Count; ++i)
    CHECK(js_DeleteConsumer(js, stream.c_str(), names->List[i], nullptr, nullptr) == NATS_OK);
  jsConsumerNamesList_Destroy(names);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
}

}  // namespace

TEST_CASE("bus (NATS): a watch whose consumer the server lost starts over with the current values",
          "[cluster][bus][kv]") {
  // The connection stays up, so only the missing idle heartbeats tell the watch (a NATS cluster whose server
  // holding the consumer died looks like this).
  nats_kind kind;
  auto b = kind.make();
  auto kv = b->bucket("contract_lost", 4096);
  mailbox<result<std::uint64_t>> revs;
  auto rev_cb = [&](result<std::uint64_t> r) { revs.push(std::move(r)); };
  kv->put("s.one", "1", rev_cb);
  wait_result(revs);
  mailbox<std::optional<kv_entry>> seen;
  auto w = kv->watch("s.>", [&](std::optional<kv_entry> e) { seen.push(std::move(e)); });
  auto first = seen.pop();
  REQUIRE(first);
  REQUIRE(*first);
  CHECK((*first)->key == "s.one");
  auto mark = seen.pop();
  REQUIRE(mark);
  CHECK_FALSE(*mark);

  delete_consumers(kind.server.url(), "KV_contract_lost");
  kv->put("s.two", "2", rev_cb);
  wait_result(revs);
  std::map<std::string, std::string> again;
  bool caught_up = false;
  while (!caught_up) {
    auto e = seen.pop(10s);
    REQUIRE(e);
    if (*e)
      again[(*e)->key] = (*e)->value;
    else
      caught_up = true;
  }
  CHECK(again == std::map<std::string, std::string>{{"s.one", "1"}, {"s.two", "2"}});
}

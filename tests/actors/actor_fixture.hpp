#pragma once
// What the actor tests share: CAF's deterministic test coordinator (caf/test/dsl.hpp), a gateway context
// wired to it, and a connection sink that records what an actor sent instead of writing to a socket. Every
// message is delivered when the test consumes it (consume_messages), and timers fire only when the test says
// so (sched.trigger_timeout): nothing here sleeps or depends on the machine's speed.
#include <caf/test/dsl.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "actors/context.hpp"
#include "actors/spawn.hpp"
#include "cluster/local_bus.hpp"

namespace sb::test {

/// A client connection as the actors see it: every frame decoded and kept, and the close code.
class recording_sink : public transport::connection_sink {
 public:
  void send(protocol::frame data) override {
    std::lock_guard<std::mutex> g(mtx_);
    // Server frames carry what client frames may not (replyTo): read them as the JSON they are.
    auto j = nlohmann::json::parse(*data);
    protocol::envelope e;
    e.type = j.value("type", "");
    e.id = j.value("id", "");
    if (j.contains("sessionId")) e.session_id = j["sessionId"].get<std::string>();
    if (j.contains("payload")) e.payload = j["payload"];
    if (j.contains("replyTo")) e.reply_to = j["replyTo"].get<std::string>();
    frames_.push_back(std::move(e));
  }
  void close(std::uint16_t code, std::string) override {
    std::lock_guard<std::mutex> g(mtx_);
    closed_ = code;
  }
  std::vector<protocol::envelope> frames() const {
    std::lock_guard<std::mutex> g(mtx_);
    return frames_;
  }
  /// The frames of one type, in the order they were sent.
  std::vector<protocol::envelope> of_type(const std::string& type) const {
    std::vector<protocol::envelope> out;
    for (auto& f : frames())
      if (f.type == type) out.push_back(f);
    return out;
  }
  std::optional<std::uint16_t> closed() const {
    std::lock_guard<std::mutex> g(mtx_);
    return closed_;
  }

 private:
  mutable std::mutex mtx_;
  std::vector<protocol::envelope> frames_;
  std::optional<std::uint16_t> closed_;
};

/// Bus callbacks held until the test runs them, so they happen at a point the test decides.
class held_callbacks {
 public:
  void add(std::function<void()> f) {
    std::lock_guard<std::mutex> g(mtx_);
    queue_.push_back(std::move(f));
  }
  /// Runs every held callback (and those they add); returns how many ran.
  std::size_t run_all() {
    std::size_t n = 0;
    while (true) {
      std::vector<std::function<void()>> batch;
      {
        std::lock_guard<std::mutex> g(mtx_);
        batch.swap(queue_);
      }
      if (batch.empty()) return n;
      for (auto& f : batch) f();
      n += batch.size();
    }
  }

 private:
  std::mutex mtx_;
  std::vector<std::function<void()>> queue_;
};

/// A gateway's actors on the test coordinator: registry and supervisor spawned as gateway_node does, on an
/// in-process bus whose callbacks run when the test consumes messages.
struct gateway_actors_fixture : test_coordinator_fixture<> {
  std::shared_ptr<held_callbacks> bus_callbacks = std::make_shared<held_callbacks>();
  std::shared_ptr<transport::metrics_registry> metrics = std::make_shared<transport::metrics_registry>();
  actors::context_ptr ctx;
  actors::gateway_supervisor_actor supervisor;

  explicit gateway_actors_fixture(protocol::gateway_config config = default_config()) {
    auto base = std::make_shared<actors::gateway_context>();
    base->config = std::move(config);
    base->node_id = "node-test";
    base->metrics = metrics;
    base->server_state = std::make_shared<transport::server_state>();
    base->validator = std::make_shared<protocol::static_token_validator>(std::vector<std::string>{"t"});
    base->handlers = std::make_shared<actors::handler_registry>();
    auto cluster = std::make_shared<actors::cluster_context>();
    cluster->name = "test";
    cluster->node_id = base->node_id;
    cluster->bus = cluster::make_local_bus([q = bus_callbacks](std::function<void()> f) { q->add(std::move(f)); });
    cluster->sessions = cluster->bus->bucket("sb_test_sessions", 1 << 20);
    base->cluster = std::move(cluster);
    base->registry = actors::spawn_agent_registry(sys, base);
    supervisor = actors::spawn_supervisor(sys, base);
    auto full = std::make_shared<actors::gateway_context>(*base);
    full->supervisor = supervisor;
    ctx = std::move(full);
    consume_messages();
  }

  /// Delivers every message and runs every bus callback, until neither is left (hides the coordinator's own
  /// consume_messages, which knows nothing of the bus).
  size_t consume_messages() {
    size_t n = 0;
    while (true) {
      const auto ran = test_coordinator_fixture<>::consume_messages() + bus_callbacks->run_all();
      if (ran == 0) return n;
      n += ran;
    }
  }

  /// The actor system waits for every actor when it goes: the supervisor takes its children with it.
  ~gateway_actors_fixture() override {
    self->send_exit(supervisor, caf::exit_reason::user_shutdown);
    consume_messages();
  }

  static protocol::gateway_config default_config() {
    protocol::gateway_config c;
    c.auth = protocol::auth_mode::none;
    return c;
  }

  /// A connected client (auth mode none: authenticated at once) and the sink it writes to.
  std::pair<actors::client_actor, std::shared_ptr<recording_sink>> connect(const std::string& id) {
    auto sink = std::make_shared<recording_sink>();
    auto client = actors::spawn_client(sys, ctx, id, sink, transport::peer_info{"127.0.0.1"});
    self->send(supervisor, client_started_atom_v, id, client);
    consume_messages();
    return {client, sink};
  }

  /// Delivers one client message, as the connection's strand would, and lets every actor react.
  void say(const actors::client_actor& client, const std::string& text) {
    self->send(client, actors::inbound_message{protocol::decode(text), std::chrono::steady_clock::now()});
    consume_messages();
  }

  /// Asks `whom` and returns the reply; the test fails if there is none.
  template <class Reply, class Handle, class... Ts>
  Reply ask(const Handle& whom, Ts... xs) {
    std::optional<Reply> out;
    auto pending = self->request(whom, caf::infinite, xs...);
    consume_messages();
    // Every message was delivered above: the answer is in the mailbox now, or there is none.
    CAF_REQUIRE(!self->mailbox().empty());
    pending.receive([&](Reply& r) { out = std::move(r); },
                    [&](caf::error& e) { CAF_FAIL("request failed: " << to_string(e)); });
    CAF_REQUIRE(out.has_value());
    return std::move(*out);
  }
};

}  // namespace sb::test

// The relay's control plane on CAF's deterministic test coordinator: connections are fakes that record
// what the actors told them, so who hosts a tunnel, which ports its clients see, a replaced host, the V1
// port session and the end of an idle tunnel are checked message by message.
#define CAF_SUITE actors.relay
#include <atomic>
#include <mutex>

#include "actor_fixture.hpp"
#include "actors/relay.hpp"

using namespace sb;
using namespace sb::actors;
using tunnel::protocol_version;
using tunnel::io::relay_role;

namespace {

std::atomic<std::uint64_t> next_id{0};

/// What a fake connection was told.
struct told {
  std::mutex mtx;
  std::vector<tunnel::io::relay_tunnel_view> views;
  std::optional<std::uint32_t> closed_with;
  int v1_port_sessions = 0;
};

template <class Base>
class fake_link : public Base {
 public:
  fake_link(std::string tunnel, protocol_version v, relay_role r) : tunnel_(std::move(tunnel)), version_(v), role_(r) {}
  std::uint64_t id() const override { return id_; }
  relay_role role() const override { return role_; }
  const std::string& tunnel_id() const override { return tunnel_; }
  protocol_version version() const override { return version_; }
  tunnel::io::relay_link_stats stats() const override { return {10, 20, 1, true}; }
  void close(std::uint32_t reason, const std::string&) override {
    std::lock_guard<std::mutex> g(seen->mtx);
    seen->closed_with = reason;
  }
  std::shared_ptr<told> seen = std::make_shared<told>();

 private:
  std::uint64_t id_ = ++next_id;
  std::string tunnel_;
  protocol_version version_;
  relay_role role_;
};

class fake_host : public fake_link<tunnel::io::relay_host_handle> {
 public:
  using fake_link::fake_link;
  void serve_terminated_clients() override {
    std::lock_guard<std::mutex> g(seen->mtx);
    ++seen->v1_port_sessions;
  }
};

class fake_client : public fake_link<tunnel::io::relay_client_handle> {
 public:
  using fake_link::fake_link;
  void show(tunnel::io::relay_tunnel_view view) override {
    std::lock_guard<std::mutex> g(seen->mtx);
    seen->views.push_back(std::move(view));
  }
};

struct fixture : test_coordinator_fixture<> {
  std::shared_ptr<tunnel::io::relay_counters> counters = std::make_shared<tunnel::io::relay_counters>();
  relay_directory_actor directory = spawn_relay_directory(sys, counters);
  std::shared_ptr<tunnel::io::relay_control> control = std::make_shared<relay_actor_control>(sys, directory);

  ~fixture() {
    // Tunnel and connection actors are linked to the directory: they all end with it.
    caf::anon_send_exit(directory, caf::exit_reason::user_shutdown);
    consume_messages();
  }

  std::shared_ptr<fake_host> host(protocol_version v = protocol_version::v2) {
    return std::make_shared<fake_host>("t1", v, relay_role::host);
  }
  std::shared_ptr<fake_client> client(relay_role r = relay_role::client) {
    return std::make_shared<fake_client>("t1", protocol_version::v2, r);
  }

  /// The ports of the last view a client was shown, and whether it had a host.
  std::pair<std::vector<std::uint32_t>, bool> last_view(const fake_client& c) {
    std::lock_guard<std::mutex> g(c.seen->mtx);
    CAF_REQUIRE(!c.seen->views.empty());
    std::vector<std::uint32_t> ports;
    for (const auto& [p, _] : c.seen->views.back().ports) ports.push_back(p);
    return {ports, c.seen->views.back().host != nullptr};
  }

  optional_version host_version_of(const std::string& tunnel) {
    optional_version out;
    auto pending = self->request(directory, caf::infinite, host_version_atom_v, tunnel);
    consume_messages();
    pending.receive([&](optional_version& v) { out = v; }, [&](caf::error& e) { CAF_FAIL(to_string(e)); });
    return out;
  }
};

}  // namespace

CAF_TEST_FIXTURE_SCOPE(relay_control_plane, fixture)

CAF_TEST(a client that came first is shown the host and its ports as they arrive) {
  auto c = client();
  auto c_events = control->client_opened(c);
  consume_messages();
  CAF_CHECK(last_view(*c).first.empty());
  CAF_CHECK(!last_view(*c).second);
  CAF_CHECK(counters->tunnels_active.load() == 1u);

  auto h = host();
  auto h_events = control->host_opened(h);
  consume_messages();
  CAF_CHECK(last_view(*c).second);
  h_events->ready();
  h_events->port_changed(8080, "127.0.0.1", true);
  h_events->port_changed(9090, "127.0.0.1", true);
  consume_messages();
  CAF_CHECK(last_view(*c).first == (std::vector<std::uint32_t>{8080, 9090}));
  h_events->port_changed(8080, {}, false);
  consume_messages();
  CAF_CHECK(last_view(*c).first == (std::vector<std::uint32_t>{9090}));
  CAF_CHECK(host_version_of("t1") == optional_version{protocol_version::v2});

  // The host goes: the client sees no host and no ports, and keeps waiting.
  h_events->closed(11, "bye");
  consume_messages();
  CAF_CHECK(last_view(*c).first.empty());
  CAF_CHECK(!last_view(*c).second);
  CAF_CHECK(host_version_of("t1") == optional_version{});
}

CAF_TEST(a second host replaces the first with reason 12 and the ports start over) {
  auto c = client();
  auto c_events = control->client_opened(c);
  auto first = host();
  auto first_events = control->host_opened(first);
  consume_messages();
  first_events->port_changed(8080, "127.0.0.1", true);
  consume_messages();
  auto second = host();
  auto second_events = control->host_opened(second);
  consume_messages();
  CAF_CHECK(first->seen->closed_with == std::optional<std::uint32_t>{12});
  CAF_CHECK(counters->hosts_replaced.load() == 1u);
  CAF_CHECK(last_view(*c).first.empty());
  // The replaced host's last words change nothing.
  first_events->port_changed(7070, "127.0.0.1", true);
  first_events->closed(12, "replaced");
  second_events->port_changed(9090, "127.0.0.1", true);
  consume_messages();
  CAF_CHECK(last_view(*c).first == (std::vector<std::uint32_t>{9090}));
  CAF_CHECK(last_view(*c).second);
}

CAF_TEST(a V1 host gets the relay session of its own once a terminated client and the host are ready) {
  auto h = host(protocol_version::v1);
  auto h_events = control->host_opened(h);
  consume_messages();
  h_events->ready();
  consume_messages();
  CAF_CHECK(h->seen->v1_port_sessions == 0);  // no client: nothing to learn ports for
  auto piped = client(relay_role::piped_client);
  auto piped_events = control->client_opened(piped);
  consume_messages();
  piped_events->ready();
  consume_messages();
  CAF_CHECK(h->seen->v1_port_sessions == 0);  // a piped client talks to the host itself
  auto c = client();
  auto c_events = control->client_opened(c);
  consume_messages();
  c_events->ready();
  consume_messages();
  CAF_CHECK(h->seen->v1_port_sessions == 1);
}

CAF_TEST(a tunnel whose last connection ended is forgotten and a new one starts fresh) {
  auto h = host();
  auto h_events = control->host_opened(h);
  consume_messages();
  CAF_CHECK(counters->tunnels_active.load() == 1u);
  h_events->closed(11, "bye");
  consume_messages();
  CAF_CHECK(counters->tunnels_active.load() == 0u);
  auto c = client();
  auto c_events = control->client_opened(c);
  consume_messages();
  CAF_CHECK(counters->tunnels_active.load() == 1u);
  CAF_CHECK(!last_view(*c).second);
}

CAF_TEST(close_all drops every connection of every tunnel) {
  auto h = host();
  auto h_events = control->host_opened(h);
  auto c = client();
  auto c_events = control->client_opened(c);
  consume_messages();
  self->send(directory, close_all_atom_v);
  consume_messages();
  CAF_CHECK(h->seen->closed_with == std::optional<std::uint32_t>{0});
  CAF_CHECK(c->seen->closed_with == std::optional<std::uint32_t>{0});
}

CAF_TEST_FIXTURE_SCOPE_END()

// The tunnel host's supervisor on CAF's deterministic test coordinator: the endpoint registration answers
// at once (inline, through run_blocking), so each connection attempt fails the way the test chose, and each
// backoff delay passes when the test fires the timer. The retry policy is checked without a single sleep.
#define CAF_SUITE actors.tunnel
#include "actor_fixture.hpp"
#include "actors/tunnel_host.hpp"

using namespace sb;
using namespace sb::actors;

namespace {

/// Counts what the supervisor did through its callbacks.
struct observed {
  int resolves = 0;
  int refreshes = 0;
  int gave_up = 0;
  std::string why;
};

tunnel_host_config config_failing_with(int http_status, std::shared_ptr<observed> seen) {
  tunnel_host_config c;
  c.tunnel_id = "t-1";
  c.token = "first";
  c.ports = {8080};
  c.backoff.initial = std::chrono::milliseconds(100);
  c.backoff.cap = std::chrono::milliseconds(800);
  c.run_blocking = [](std::function<void()> job) { job(); };
  c.resolve = [seen, http_status](const std::string&) {
    ++seen->resolves;
    return relay_endpoint_result{{}, http_status, http_status ? "refused" : "connection refused"};
  };
  c.on_gave_up = [seen](const std::string& why) {
    ++seen->gave_up;
    seen->why = why;
  };
  return c;
}

struct fixture : test_coordinator_fixture<> {
  std::shared_ptr<observed> seen = std::make_shared<observed>();

  tunnel_info info(const tunnel_supervisor_actor& sup) {
    std::optional<tunnel_info> out;
    auto pending = self->request(sup, caf::infinite, info_atom_v);
    consume_messages();
    CAF_REQUIRE(!self->mailbox().empty());
    pending.receive([&](tunnel_info& i) { out = std::move(i); },
                    [&](caf::error& e) { CAF_FAIL("no info: " << to_string(e)); });
    CAF_REQUIRE(out.has_value());
    return *out;
  }
};

}  // namespace

CAF_TEST_FIXTURE_SCOPE(tunnel_supervisor, fixture)

CAF_TEST(a network failure is retried after a backoff that grows to its cap) {
  auto sup = spawn_tunnel_supervisor(sys, config_failing_with(0, seen));
  consume_messages();
  CAF_CHECK_EQUAL(seen->resolves, 1);
  std::int64_t previous_bound = 0;
  for (int attempt = 1; attempt <= 6; ++attempt) {
    auto i = info(sup);
    CAF_CHECK_EQUAL(i.status, "disconnected");
    CAF_CHECK_EQUAL(i.attempts, static_cast<std::uint64_t>(attempt));
    CAF_REQUIRE(i.next_retry.has_value());
    // Full jitter: the wait is somewhere in [0, min(cap, initial * 2^(attempt-1))].
    const std::int64_t bound = std::min<std::int64_t>(800, 100LL << (attempt - 1));
    CAF_CHECK_LESS_OR_EQUAL(*i.next_retry - protocol::now_ms(), bound);
    CAF_CHECK_GREATER_OR_EQUAL(bound, previous_bound);
    previous_bound = bound;
    // The delay passes: exactly one timer, the restart.
    CAF_CHECK(sched.trigger_timeout());
    consume_messages();
    CAF_CHECK_EQUAL(seen->resolves, attempt + 1);
  }
  CAF_CHECK_EQUAL(seen->gave_up, 0);
  self->send_exit(sup, caf::exit_reason::user_shutdown);
  consume_messages();
}

CAF_TEST(a 401 refreshes the token once and a second 401 stops) {
  auto config = config_failing_with(401, seen);
  std::vector<std::string> tokens_used;
  config.resolve = [this, &tokens_used](const std::string& token) {
    ++seen->resolves;
    tokens_used.push_back(token);
    return relay_endpoint_result{{}, 401, "unauthorized"};
  };
  config.refresh_token = [this]() -> std::optional<std::string> {
    ++seen->refreshes;
    return std::string("fresh");
  };
  auto sup = spawn_tunnel_supervisor(sys, config);
  consume_messages();
  CAF_CHECK_EQUAL(seen->refreshes, 1);
  CAF_CHECK_EQUAL(seen->resolves, 2);
  CAF_CHECK_EQUAL(tokens_used, (std::vector<std::string>{"first", "fresh"}));
  CAF_CHECK_EQUAL(seen->gave_up, 1);
  const auto last = info(sup);  // a named value: a check must not hold a reference into a temporary
  CAF_CHECK_EQUAL(last.status, "disconnected");
  CAF_CHECK(!sched.trigger_timeout());  // no retry is scheduled
  self->send_exit(sup, caf::exit_reason::user_shutdown);
  consume_messages();
}

CAF_TEST(403 and 404 stop at once with no refresh and no retry) {
  for (int status : {403, 404}) {
    auto seen_here = std::make_shared<observed>();
    auto config = config_failing_with(status, seen_here);
    config.refresh_token = [seen_here]() -> std::optional<std::string> {
      ++seen_here->refreshes;
      return std::string("fresh");
    };
    auto sup = spawn_tunnel_supervisor(sys, config);
    consume_messages();
    CAF_CHECK_EQUAL(seen_here->resolves, 1);
    CAF_CHECK_EQUAL(seen_here->refreshes, 0);
    CAF_CHECK_EQUAL(seen_here->gave_up, 1);
    CAF_CHECK(seen_here->why.find(std::to_string(status)) != std::string::npos);
    CAF_CHECK(!sched.trigger_timeout());
    self->send_exit(sup, caf::exit_reason::user_shutdown);
    consume_messages();
  }
}

CAF_TEST(the attempt limit stops the retries) {
  auto config = config_failing_with(0, seen);
  config.backoff.max_attempts = 3;
  auto sup = spawn_tunnel_supervisor(sys, config);
  consume_messages();
  while (sched.trigger_timeout()) consume_messages();
  CAF_CHECK_EQUAL(seen->resolves, 3);
  CAF_CHECK_EQUAL(seen->gave_up, 1);
  self->send_exit(sup, caf::exit_reason::user_shutdown);
  consume_messages();
}

CAF_TEST_FIXTURE_SCOPE_END()

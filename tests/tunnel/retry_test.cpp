// Backoff schedule, full jitter, error mapping and the retry rules of the official SDK.
#include "tunnel/retry.hpp"

#include <catch2/catch.hpp>

using namespace sb::tunnel;
using namespace std::chrono_literals;

TEST_CASE("the backoff ceiling doubles from the initial delay up to the cap") {
  backoff_policy p;
  CHECK(backoff_ceiling(p, 0) == 1000ms);
  CHECK(backoff_ceiling(p, 1) == 2000ms);
  CHECK(backoff_ceiling(p, 2) == 4000ms);
  CHECK(backoff_ceiling(p, 3) == 8000ms);
  CHECK(backoff_ceiling(p, 4) == 16000ms);
  CHECK(backoff_ceiling(p, 5) == 16000ms);
  CHECK(backoff_ceiling(p, 1000) == 16000ms);
  backoff_policy q{100ms, 3.0, 1000ms, 0, 6500ms};
  CHECK(backoff_ceiling(q, 0) == 100ms);
  CHECK(backoff_ceiling(q, 1) == 300ms);
  CHECK(backoff_ceiling(q, 2) == 900ms);
  CHECK(backoff_ceiling(q, 3) == 1000ms);
}

TEST_CASE("full jitter stays within the ceiling and spreads over it") {
  backoff_policy p;
  std::mt19937_64 rng(42);
  std::chrono::milliseconds lo = 100000ms, hi = 0ms;
  for (int i = 0; i < 2000; ++i) {
    const auto d = full_jitter(p, 3, rng);
    REQUIRE(d >= 0ms);
    REQUIRE(d <= 8000ms);
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  CHECK(lo < 1000ms);
  CHECK(hi > 7000ms);
}

TEST_CASE("HTTP statuses and SSH reasons map to typed errors") {
  CHECK(classify(401, 0, false, false, "").kind == error_kind::unauthorized);
  CHECK(classify(403, 0, false, false, "").kind == error_kind::forbidden);
  CHECK(classify(404, 0, false, false, "").kind == error_kind::not_found);
  CHECK(classify(429, 0, false, false, "").kind == error_kind::too_many_requests);
  CHECK(classify(502, 0, false, false, "").kind == error_kind::bad_gateway);
  CHECK(classify(503, 0, false, false, "").kind == error_kind::service_unavailable);
  CHECK(classify(500, 0, false, false, "").kind == error_kind::server_error);
  CHECK(classify(418, 0, false, false, "").kind == error_kind::server_error);
  CHECK(classify(0, 0, true, false, "refused").kind == error_kind::network);
  CHECK(classify(0, 10, true, true, "reset").kind == error_kind::connection_lost);
  CHECK(classify(0, 12, false, true, "").kind == error_kind::replaced);
  CHECK(classify(0, 2, false, true, "").kind == error_kind::protocol);
  CHECK(classify(403, 0, false, false, "").http_status == 403);
  CHECK(to_string(error_kind::not_found) == "notFound");
}

TEST_CASE("401 refreshes the token once, and a second 401 stops") {
  tunnel_error e{error_kind::unauthorized, 401, ""};
  retry_state s;
  CHECK(decide(e, s, 0) == next_step::refresh_token_then_retry);
  s.token_refreshed = true;
  CHECK(decide(e, s, 0) == next_step::stop);
}

TEST_CASE("403, 404, 500, a replaced host and protocol errors are fatal") {
  retry_state s;
  for (auto k : {error_kind::forbidden, error_kind::not_found, error_kind::server_error, error_kind::replaced,
                 error_kind::protocol})
    CHECK(decide(tunnel_error{k, 0, ""}, s, 0) == next_step::stop);
}

TEST_CASE("network failures and lost connections retry until the attempt limit") {
  retry_state s;
  CHECK(decide(tunnel_error{error_kind::network, 0, ""}, s, 0) == next_step::retry_after_backoff);
  CHECK(decide(tunnel_error{error_kind::connection_lost, 0, ""}, s, 0) == next_step::retry_after_backoff);
  s.attempts = 5;
  CHECK(decide(tunnel_error{error_kind::network, 0, ""}, s, 5) == next_step::stop);
  CHECK(decide(tunnel_error{error_kind::network, 0, ""}, s, 6) == next_step::retry_after_backoff);
}

TEST_CASE("throttling statuses retry at least 6.5 s apart and give up after three") {
  backoff_policy p;
  std::mt19937_64 rng(1);
  tunnel_error e{error_kind::service_unavailable, 503, ""};
  CHECK(retry_delay(p, e, 0, rng) >= 6500ms);
  retry_state s;
  s.throttled_attempts = 2;
  CHECK(decide(e, s, 0) == next_step::retry_after_backoff);
  s.throttled_attempts = 3;
  CHECK(decide(e, s, 0) == next_step::stop);
}

TEST_CASE("statuses are spelled as the SDK spells them") {
  CHECK(to_string(connection_status::none) == "none");
  CHECK(to_string(connection_status::connecting) == "connecting");
  CHECK(to_string(connection_status::refreshing_token) == "refreshingTunnelAccessToken");
  CHECK(to_string(connection_status::connected) == "connected");
  CHECK(to_string(connection_status::disconnected) == "disconnected");
}

#pragma once
// Connection status, typed tunnel errors and the retry rules of the official SDK (devtunnels-protocol.md §4),
// plus exponential backoff with full jitter. Pure: the actor that owns a host connection asks these what to
// do.
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace sb::tunnel {

enum class connection_status { none, connecting, refreshing_token, connected, disconnected };
/// The SDK's spelling: none, connecting, refreshingTunnelAccessToken, connected, disconnected.
std::string_view to_string(connection_status s);

enum class error_kind {
  unauthorized,         // 401: the token is invalid or expired
  forbidden,            // 403: the token lacks the scope
  not_found,            // 404: no such tunnel
  too_many_requests,    // 429
  bad_gateway,          // 502
  service_unavailable,  // 503
  server_error,         // 500 and other HTTP failures
  network,              // refused, reset, unreachable, timed out
  connection_lost,      // an established session dropped
  replaced,             // another host took the tunnel (SSH reason 12)
  protocol,             // the relay broke the protocol or closed the session for another reason
};
std::string_view to_string(error_kind k);

struct tunnel_error {
  error_kind kind = error_kind::protocol;
  int http_status = 0;  // 0 when the failure was not an HTTP refusal
  std::string message;
};

/// Maps what a connection attempt saw to a typed error.
tunnel_error classify(int http_status, std::uint32_t ssh_reason, bool network, bool was_connected,
                      const std::string& message);

enum class next_step {
  retry_after_backoff,
  refresh_token_then_retry,  // 401: refresh once, retry at once
  stop,                      // fatal: 403, 404, 500, replaced, a second 401, attempts exhausted
};

struct retry_state {
  bool token_refreshed = false;     // a refresh already happened for the current failure streak
  unsigned attempts = 0;            // failed attempts since the last success
  unsigned throttled_attempts = 0;  // of those, 429/502/503
};

next_step decide(const tunnel_error& error, const retry_state& state, unsigned max_attempts);

struct backoff_policy {
  std::chrono::milliseconds initial{1000};
  double factor = 2.0;
  std::chrono::milliseconds cap{16000};  // the SDK doubles 1 s up to 16 s
  unsigned max_attempts = 0;             // 0: keep trying
  /// 429/502/503 wait at least this long (the SDK bumps its delay to 6.5 s for them).
  std::chrono::milliseconds throttled_minimum{6500};
};

/// min(cap, initial * factor^attempt): the upper bound of the wait before attempt `attempt` (0-based).
std::chrono::milliseconds backoff_ceiling(const backoff_policy& p, unsigned attempt);
/// "Full jitter": uniform in [0, ceiling], so many hosts restarting at once do not retry in lockstep.
std::chrono::milliseconds full_jitter(const backoff_policy& p, unsigned attempt, std::mt19937_64& rng);
/// The wait before the next attempt for `error`.
std::chrono::milliseconds retry_delay(const backoff_policy& p, const tunnel_error& error, unsigned attempt,
                                      std::mt19937_64& rng);

}  // namespace sb::tunnel

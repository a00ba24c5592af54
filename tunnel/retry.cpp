#include "tunnel/retry.hpp"

#include <algorithm>
#include <cmath>

namespace sb::tunnel {

namespace {
constexpr std::uint32_t ssh_connection_lost = 10;
constexpr std::uint32_t ssh_too_many_connections = 12;
constexpr unsigned max_throttled_attempts = 3;  // the SDK gives up on 429/502/503 after attempt 3
}  // namespace

std::string_view to_string(connection_status s) {
  switch (s) {
    case connection_status::none:
      return "none";
    case connection_status::connecting:
      return "connecting";
    case connection_status::refreshing_token:
      return "refreshingTunnelAccessToken";
    case connection_status::connected:
      return "connected";
    case connection_status::disconnected:
      return "disconnected";
  }
  return "none";
}

std::string_view to_string(error_kind k) {
  switch (k) {
    case error_kind::unauthorized:
      return "unauthorized";
    case error_kind::forbidden:
      return "forbidden";
    case error_kind::not_found:
      return "notFound";
    case error_kind::too_many_requests:
      return "tooManyRequests";
    case error_kind::bad_gateway:
      return "badGateway";
    case error_kind::service_unavailable:
      return "serviceUnavailable";
    case error_kind::server_error:
      return "serverError";
    case error_kind::network:
      return "network";
    case error_kind::connection_lost:
      return "connectionLost";
    case error_kind::replaced:
      return "replaced";
    case error_kind::protocol:
      return "protocol";
  }
  return "protocol";
}

tunnel_error classify(int http_status, std::uint32_t ssh_reason, bool network, bool was_connected,
                      const std::string& message) {
  tunnel_error e;
  e.http_status = http_status;
  e.message = message;
  if (http_status != 0) {
    switch (http_status) {
      case 401:
        e.kind = error_kind::unauthorized;
        break;
      case 403:
        e.kind = error_kind::forbidden;
        break;
      case 404:
        e.kind = error_kind::not_found;
        break;
      case 429:
        e.kind = error_kind::too_many_requests;
        break;
      case 502:
        e.kind = error_kind::bad_gateway;
        break;
      case 503:
        e.kind = error_kind::service_unavailable;
        break;
      default:
        e.kind = error_kind::server_error;
    }
    return e;
  }
  if (ssh_reason == ssh_too_many_connections) {
    e.kind = error_kind::replaced;
  } else if (network || ssh_reason == ssh_connection_lost) {
    e.kind = was_connected ? error_kind::connection_lost : error_kind::network;
  } else {
    e.kind = error_kind::protocol;
  }
  return e;
}

next_step decide(const tunnel_error& error, const retry_state& state, unsigned max_attempts) {
  if (max_attempts != 0 && state.attempts >= max_attempts) return next_step::stop;
  switch (error.kind) {
    case error_kind::unauthorized:
      return state.token_refreshed ? next_step::stop : next_step::refresh_token_then_retry;
    case error_kind::too_many_requests:
    case error_kind::bad_gateway:
    case error_kind::service_unavailable:
      return state.throttled_attempts >= max_throttled_attempts ? next_step::stop
                                                                : next_step::retry_after_backoff;
    case error_kind::network:
    case error_kind::connection_lost:
      return next_step::retry_after_backoff;
    default:
      return next_step::stop;
  }
}

std::chrono::milliseconds backoff_ceiling(const backoff_policy& p, unsigned attempt) {
  const double raw = static_cast<double>(p.initial.count()) * std::pow(p.factor, std::min(attempt, 60u));
  const double capped = std::min(raw, static_cast<double>(p.cap.count()));
  return std::chrono::milliseconds(static_cast<std::int64_t>(capped));
}

std::chrono::milliseconds full_jitter(const backoff_policy& p, unsigned attempt, std::mt19937_64& rng) {
  const auto ceiling = backoff_ceiling(p, attempt).count();
  std::uniform_int_distribution<std::int64_t> pick(0, std::max<std::int64_t>(0, ceiling));
  return std::chrono::milliseconds(pick(rng));
}

std::chrono::milliseconds retry_delay(const backoff_policy& p, const tunnel_error& error, unsigned attempt,
                                      std::mt19937_64& rng) {
  auto delay = full_jitter(p, attempt, rng);
  const bool throttled = error.kind == error_kind::too_many_requests ||
                         error.kind == error_kind::bad_gateway ||
                         error.kind == error_kind::service_unavailable;
  if (throttled) delay = std::max(delay, p.throttled_minimum);
  return delay;
}

}  // namespace sb::tunnel

#include "transport/metrics.hpp"

#include <sstream>

namespace sb::transport {

void labeled_counter::add(const std::string& label, std::uint64_t n) {
  std::lock_guard<std::mutex> guard(mtx_);
  auto it = values_.find(label);
  if (it != values_.end()) {
    it->second += n;
    return;
  }
  if (values_.size() >= max_labels) {
    values_["_other"] += n;
    return;
  }
  values_.emplace(label, n);
}

std::uint64_t labeled_counter::get(const std::string& label) const {
  std::lock_guard<std::mutex> guard(mtx_);
  auto it = values_.find(label);
  return it == values_.end() ? 0 : it->second;
}

std::map<std::string, std::uint64_t> labeled_counter::snapshot() const {
  std::lock_guard<std::mutex> guard(mtx_);
  return values_;
}

void histogram::observe(double seconds) {
  for (std::size_t i = 0; i < bounds.size(); ++i)
    if (seconds <= bounds[i]) buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<std::uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

std::string histogram::render(const std::string& name, const std::string& help) const {
  std::ostringstream out;
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " histogram\n";
  for (std::size_t i = 0; i < bounds.size(); ++i)
    out << name << "_bucket{le=\"" << bounds[i] << "\"} " << buckets_[i].load() << '\n';
  out << name << "_bucket{le=\"+Inf\"} " << count_.load() << '\n';
  out << name << "_sum " << static_cast<double>(sum_micros_.load()) / 1e6 << '\n';
  out << name << "_count " << count_.load() << '\n';
  return out.str();
}

namespace {

// Label values are restricted by the protocol ([a-z0-9_.:-]) or are our own error codes, but escape anyway.
std::string escape_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

template <class T>
void scalar(std::ostringstream& out, const char* name, const char* type, const char* help, const T& value) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n'
      << name << ' ' << value.load() << '\n';
}

void family(std::ostringstream& out, const char* name, const char* label, const char* help,
            const labeled_counter& counter) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " counter\n";
  for (const auto& [value, n] : counter.snapshot())
    out << name << '{' << label << "=\"" << escape_label(value) << "\"} " << n << '\n';
}

}  // namespace

std::string metrics_registry::render() const {
  std::ostringstream out;
  scalar(out, "switchboard_connections", "gauge", "Open WebSocket connections.", connections);
  scalar(out, "switchboard_sessions", "gauge", "Live sessions.", sessions);
  scalar(out, "switchboard_agents", "gauge", "Registered agents.", agents);
  scalar(out, "switchboard_agents_online", "gauge", "Agents with status online.", agents_online);
  scalar(out, "switchboard_connections_total", "counter", "WebSocket connections accepted.",
         connections_total);
  scalar(out, "switchboard_rejected_upgrades_total", "counter", "Upgrades refused (origin, drain).",
         rejected_upgrades);
  scalar(out, "switchboard_slow_consumers_dropped_total", "counter",
         "Connections closed with 4008 because their send queue overflowed.", slow_consumers_dropped);
  scalar(out, "switchboard_rate_limit_closes_total", "counter",
         "Connections closed with 4008 for staying over the rate limit.", rate_limit_closes);
  scalar(out, "switchboard_heartbeat_timeouts_total", "counter", "Connections closed for missing pongs.",
         heartbeat_timeouts);
  scalar(out, "switchboard_routes_total", "counter", "Requests routed to agents.", routes_total);
  family(out, "switchboard_messages_in_total", "type", "Client messages received, by type.", messages_in);
  family(out, "switchboard_messages_out_total", "type", "Messages sent to clients, by type.", messages_out);
  family(out, "switchboard_errors_total", "code", "Error replies sent, by code.", errors);
  family(out, "switchboard_limit_exceeded_total", "limit",
         "Inputs refused or connections closed by a configured bound, by its key.", limits_exceeded);
  if (const int ts = tunnel_status.load(); ts >= 0) {
    static const char* names[] = {"none", "connecting", "refreshingTunnelAccessToken", "connected",
                                  "disconnected"};
    out << "# HELP switchboard_tunnel_status Tunnel host connection status (1 for the current one).\n"
           "# TYPE switchboard_tunnel_status gauge\n";
    for (int i = 0; i < 5; ++i)
      out << "switchboard_tunnel_status{status=\"" << names[i] << "\"} " << (i == ts ? 1 : 0) << '\n';
    scalar(out, "switchboard_tunnel_reconnects_total", "counter",
           "Tunnel host reconnections after a lost session.", tunnel_reconnects);
  }
  out << broadcast_latency.render("switchboard_broadcast_latency_seconds",
                                  "From reading a message to queueing its broadcast to every member.");
  return out.str();
}

}  // namespace sb::transport

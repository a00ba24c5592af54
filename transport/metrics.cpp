#include "transport/metrics.hpp"

#include "transport/prometheus_text.hpp"

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

std::string metrics_registry::render() const {
  prometheus_text out;
  auto gauge = [&](const char* name, const char* help, const std::atomic<std::int64_t>& v) {
    out.scalar(name, "gauge", help, v.load());
  };
  auto counter = [&](const char* name, const char* help, const std::atomic<std::uint64_t>& v) {
    out.scalar(name, "counter", help, v.load());
  };
  gauge("switchboard_connections", "Open WebSocket connections.", connections);
  gauge("switchboard_sessions", "Live sessions.", sessions);
  gauge("switchboard_agents", "Registered agents.", agents);
  gauge("switchboard_agents_online", "Agents with status online.", agents_online);
  counter("switchboard_connections_total", "WebSocket connections accepted.", connections_total);
  counter("switchboard_rejected_upgrades_total", "Upgrades refused (origin, drain).", rejected_upgrades);
  counter("switchboard_slow_consumers_dropped_total",
          "Connections closed with 4008 because their send queue overflowed.", slow_consumers_dropped);
  counter("switchboard_rate_limit_closes_total", "Connections closed with 4008 for staying over the rate limit.",
          rate_limit_closes);
  counter("switchboard_heartbeat_timeouts_total", "Connections closed for missing pongs.", heartbeat_timeouts);
  counter("switchboard_routes_total", "Requests routed to agents.", routes_total);
  out.family("switchboard_messages_in_total", "counter", "type", "Client messages received, by type.",
             messages_in.snapshot());
  out.family("switchboard_messages_out_total", "counter", "type", "Messages sent to clients, by type.",
             messages_out.snapshot());
  out.family("switchboard_errors_total", "counter", "code", "Error replies sent, by code.", errors.snapshot());
  out.family("switchboard_limit_exceeded_total", "counter", "limit",
             "Inputs refused or connections closed by a configured bound, by its key.",
             limits_exceeded.snapshot());
  if (const int ts = tunnel_status.load(); ts >= 0) {
    static const char* names[] = {"none", "connecting", "refreshingTunnelAccessToken", "connected",
                                  "disconnected"};
    std::map<std::string, std::uint64_t> status;
    for (int i = 0; i < 5; ++i) status[names[i]] = i == ts ? 1 : 0;
    out.family("switchboard_tunnel_status", "gauge", "status",
               "Tunnel host connection status (1 for the current one).", status);
    counter("switchboard_tunnel_reconnects_total", "Tunnel host reconnections after a lost session.",
            tunnel_reconnects);
  }
  if (const int link = cluster_link.load(); link >= 0) {
    static const char* names[] = {"connected", "reconnecting", "closed"};
    std::map<std::string, std::uint64_t> state;
    for (int i = 0; i < 3; ++i) state[names[i]] = i == link ? 1 : 0;
    out.family("switchboard_cluster_link", "gauge", "state", "The node's link to NATS (1 for the current state).",
               state);
    gauge("switchboard_cluster_nodes", "Cluster members this node sees, itself included.", cluster_nodes);
    counter("switchboard_cluster_nodes_lost_total", "Nodes declared gone after clusterNodeTimeoutMs of silence.",
            cluster_nodes_lost);
    counter("switchboard_cluster_outages_total", "Times this node lost its link to NATS.", cluster_outages);
    counter("switchboard_cluster_resyncs_total",
            "Session, presence and agent records this node put back into KV after a reconnect or a repair.",
            cluster_resyncs);
    counter("switchboard_cluster_unsent_total",
            "Broadcast deliveries to members on other nodes not made (and not counted in delivered) while the "
            "link to NATS was down.",
            cluster_unsent);
  }
  counter("switchboard_cluster_published_total", "Broadcast frames published for members on other nodes.",
          cluster_published);
  counter("switchboard_cluster_received_total", "Frames from other nodes delivered to members here.",
          cluster_received);
  counter("switchboard_cluster_rejected_total", "Malformed records, frames or heartbeats read from the bus.",
          cluster_rejected);
  counter("switchboard_cluster_conflicts_total", "Session record writes that lost a race to another and retried.",
          cluster_conflicts);
  out.raw(broadcast_latency.render("switchboard_broadcast_latency_seconds",
                                   "From reading a message to queueing its broadcast to every member."));
  return out.str();
}

}  // namespace sb::transport

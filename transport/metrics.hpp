#pragma once
// One metrics registry per node: atomic counters, gauges and a histogram, rendered as Prometheus text.
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace sb::transport {

/// A counter family with one label. Label values come from clients (message types), so their number is
/// capped; past the cap they are counted under "_other".
class labeled_counter {
 public:
  static constexpr std::size_t max_labels = 256;
  void add(const std::string& label, std::uint64_t n = 1);
  std::uint64_t get(const std::string& label) const;
  std::map<std::string, std::uint64_t> snapshot() const;

 private:
  mutable std::mutex mtx_;
  std::map<std::string, std::uint64_t> values_;
};

/// Fixed-bucket histogram of durations in seconds.
class histogram {
 public:
  static constexpr std::array<double, 12> bounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                    0.01,   0.025,   0.05,   0.1,   0.25,   1.0};
  void observe(double seconds);
  std::string render(const std::string& name, const std::string& help) const;
  std::uint64_t count() const { return count_.load(); }

 private:
  std::array<std::atomic<std::uint64_t>, bounds.size()> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_micros_{0};
};

struct metrics_registry {
  std::atomic<std::int64_t> connections{0};
  std::atomic<std::int64_t> sessions{0};
  std::atomic<std::int64_t> agents{0};
  std::atomic<std::int64_t> agents_online{0};
  std::atomic<std::uint64_t> connections_total{0};
  std::atomic<std::uint64_t> rejected_upgrades{0};
  std::atomic<std::uint64_t> slow_consumers_dropped{0};
  std::atomic<std::uint64_t> rate_limit_closes{0};
  std::atomic<std::uint64_t> heartbeat_timeouts{0};
  std::atomic<std::uint64_t> routes_total{0};
  // Tunnel host (when this process hosts one): status as tunnel::connection_status, -1 without a tunnel.
  std::atomic<int> tunnel_status{-1};
  std::atomic<std::uint64_t> tunnel_reconnects{0};
  // The cluster bus (README "Cluster"): nodes seen, the link to NATS, what crossed it.
  std::atomic<std::int64_t> cluster_nodes{1};
  std::atomic<int> cluster_link{-1};  // -1: single node; else cluster::link_state
  std::atomic<std::uint64_t> cluster_published{0};   // frames published for members on other nodes
  std::atomic<std::uint64_t> cluster_received{0};    // frames from other nodes delivered here
  std::atomic<std::uint64_t> cluster_rejected{0};    // malformed records, frames or heartbeats from the bus
  std::atomic<std::uint64_t> cluster_conflicts{0};   // compare-and-set writes that lost a race and retried
  std::atomic<std::uint64_t> cluster_nodes_lost{0};  // nodes declared gone after clusterNodeTimeoutMs
  std::atomic<std::uint64_t> cluster_outages{0};     // times the link to NATS was lost
  std::atomic<std::uint64_t> cluster_resyncs{0};     // records put back in KV after a reconnect or a repair
  std::atomic<std::uint64_t> cluster_unsent{0};      // deliveries to other nodes not attempted: link down
  labeled_counter messages_in;
  labeled_counter messages_out;
  labeled_counter errors;
  // Every hostile-input bound that refused something, by its config key (maxJsonDepth, authTimeoutMs, ...).
  labeled_counter limits_exceeded;
  histogram broadcast_latency;

  std::string render() const;
};

}  // namespace sb::transport

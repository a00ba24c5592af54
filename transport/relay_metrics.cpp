#include "transport/relay_metrics.hpp"

#include "transport/prometheus_text.hpp"

namespace sb::transport {

std::string render_relay_metrics(const relay_hub& hub, const tunnel::management_api& api) {
  prometheus_text out;
  const auto load = hub.load();
  const auto& hub_counters = hub.counters();
  const auto& api_counters = api.counters();
  auto gauge = [&](const char* name, const char* help, std::size_t v) {
    out.scalar(name, "gauge", help, static_cast<std::uint64_t>(v));
  };
  auto counter = [&](const char* name, const char* help, std::uint64_t v) {
    out.scalar(name, "counter", help, v);
  };
  gauge("switchboard_relay_tunnels_connected", "Tunnels with a host or a client connected.", load.tunnels);
  gauge("switchboard_relay_hosts", "Host connections open.", load.hosts);
  gauge("switchboard_relay_clients", "Client connections open.", load.clients);
  gauge("switchboard_relay_stored_tunnels", "Tunnels in the store.", api.stored_tunnels());
  counter("switchboard_relay_hosts_accepted_total", "Host WebSockets accepted.",
          hub_counters.hosts_accepted.load());
  counter("switchboard_relay_clients_accepted_total", "Client WebSockets accepted.",
          hub_counters.clients_accepted.load());
  counter("switchboard_relay_hosts_replaced_total", "Hosts disconnected because a newer host of their tunnel came.",
          load.hosts_replaced);
  counter("switchboard_relay_store_write_failures_total",
          "Changes refused (507/503) because the store could not be saved.",
          api_counters.store_write_failures.load());
  out.family("switchboard_relay_limit_exceeded_total", "counter", "limit",
             "Requests refused or connections closed by a configured bound, by its flag.",
             {{"max-json-depth", api_counters.json_too_deep.load()},
              {"ssh-handshake-timeout-ms", hub_counters.ssh_handshake_timeouts.load()},
              {"idle-timeout-ms", hub_counters.idle_timeouts.load()}});
  return out.str();
}

}  // namespace sb::transport

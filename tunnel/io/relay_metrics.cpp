#include "tunnel/io/relay_metrics.hpp"

#include "transport/prometheus_text.hpp"

namespace sb::tunnel::io {

using transport::prometheus_text;

std::string render_relay_metrics(const relay_hub& hub, const tunnel::management_api& api) {
  prometheus_text out;
  const auto& c = hub.counters();
  const auto& api_counters = api.counters();
  auto gauge = [&](const char* name, const char* help, std::uint64_t v) { out.scalar(name, "gauge", help, v); };
  auto counter = [&](const char* name, const char* help, std::uint64_t v) { out.scalar(name, "counter", help, v); };
  gauge("switchboard_relay_tunnels_connected", "Tunnels with a host or a client connected.", c.tunnels_active);
  gauge("switchboard_relay_hosts", "Host connections open.", c.hosts_open);
  gauge("switchboard_relay_clients", "Client connections open.", c.clients_open);
  gauge("switchboard_relay_stored_tunnels", "Tunnels in the store.", api.stored_tunnels());
  counter("switchboard_relay_hosts_accepted_total", "Host WebSockets accepted.", c.hosts_accepted);
  counter("switchboard_relay_clients_accepted_total", "Client WebSockets accepted.", c.clients_accepted);
  counter("switchboard_relay_hosts_replaced_total", "Hosts disconnected because a newer host of their tunnel came.",
          c.hosts_replaced);
  counter("switchboard_relay_ssh_handshakes_total", "Relay SSH sessions (hosts and clients) that became ready.",
          c.ssh_handshakes);
  counter("switchboard_relay_received_bytes_total", "Relay WebSocket payload bytes received.", c.bytes_in);
  counter("switchboard_relay_sent_bytes_total", "Relay WebSocket payload bytes sent.", c.bytes_out);
  out.family("switchboard_relay_auth_failures_total", "counter", "status",
             "Relay WebSocket upgrades refused: 401 no or a bad token, 403 a token without the scope, 404 no "
             "such tunnel.",
             {{"401", c.unauthorized.load()}, {"403", c.forbidden.load()}, {"404", c.not_found.load()}});
  counter("switchboard_relay_store_write_failures_total",
          "Changes refused (507/503) because the store could not be saved.",
          api_counters.store_write_failures.load());
  out.family("switchboard_relay_limit_exceeded_total", "counter", "limit",
             "Requests refused or connections closed by a configured bound, by its flag.",
             {{"max-json-depth", api_counters.json_too_deep.load()},
              {"ssh-handshake-timeout-ms", c.ssh_handshake_timeouts.load()},
              {"idle-timeout-ms", c.idle_timeouts.load()}});
  return out.str();
}

}  // namespace sb::tunnel::io

#pragma once
// The cluster bus on NATS (nats.c): subjects on one connection, KV buckets on JetStream. The connection
// reconnects for ever on its own; while it is down, publishes queue in nats.c's reconnect buffer, requests and
// KV operations fail with `unavailable` or `timeout`, and watches restart (all current values again) once it
// is back, so a watcher's copy converges after an outage, even if the server lost its streams.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cluster/bus.hpp"

namespace sb::cluster {

struct nats_settings {
  std::vector<std::string> servers;  // nats://host:port or tls://host:port
  std::string client_name;           // shown by the NATS server's monitoring (the node id)
  // Credentials: at most one of token, user+password, creds file, nkey seed file (with its public key).
  std::string token;
  std::string user, password;
  std::string creds_file;
  std::string nkey_public, nkey_seed_file;
  // TLS: on when a server URL says tls:// or a CA file is given.
  std::string ca_file;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds reconnect_wait{250};
  std::chrono::milliseconds ping_interval{1000};  // with 2 pings missed, a dead server is noticed in ~2 s
  std::chrono::milliseconds kv_timeout{2000};     // each KV operation, JetStream API call included
  int reconnect_buffer_bytes = 8 * 1024 * 1024;   // publishes held while disconnected
  int kv_replicas = 1;                            // 3 on a 3-server NATS cluster
};

/// Starts connecting (in the background when the server is not up yet). Throws std::runtime_error for
/// settings nats.c refuses (unreadable CA or creds file, a malformed URL).
std::shared_ptr<bus> make_nats_bus(const nats_settings& settings);

}  // namespace sb::cluster

#pragma once
// Where the relay's data plane and its control plane meet. The data plane (relay_hub) runs each relay
// WebSocket's SSH session on its strand and moves the bytes; the control plane (actors/relay.cpp) knows
// which host and which clients each tunnel has and which ports the host forwards. A connection reports what
// happened through its relay_link_events; the control plane answers through the connection's handle, whose
// calls post onto its strand. Neither side waits for the other, and nothing here names an actor.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "tunnel/relay_messages.hpp"

namespace sb::tunnel::io {

enum class relay_role {
  host,
  client,        // its SSH session ends at the relay
  piped_client,  // a V1 client of a V1 host: its bytes are piped into the host's session unseen
};
const char* name_of(relay_role role);

/// Live numbers of one relay WebSocket, readable from any thread.
struct relay_link_stats {
  std::uint64_t bytes_in = 0, bytes_out = 0;  // WebSocket payload bytes, either way
  std::uint64_t channels = 0;                 // channels opened over its SSH session
  bool ready = false;                         // SSH session ready (piped: the first bytes came)
};

/// One relay WebSocket as the control plane sees it. Every call may come from any thread.
class relay_link_handle {
 public:
  virtual ~relay_link_handle() = default;
  virtual std::uint64_t id() const = 0;  // unique within the relay process
  virtual relay_role role() const = 0;
  virtual const std::string& tunnel_id() const = 0;
  virtual protocol_version version() const = 0;
  virtual relay_link_stats stats() const = 0;
  /// Ends the connection: with an SSH disconnect carrying `reason`, or, for reason 0, by dropping it (the
  /// peer sees a lost connection and reconnects, as after a relay crash).
  virtual void close(std::uint32_t reason, const std::string& why) = 0;
};

class relay_host_handle : public relay_link_handle {
 public:
  /// A V1 host tells its ports only inside a client's own SSH session. For the clients whose session the
  /// relay terminates, the relay opens one such session of its own into the host (once; later calls do
  /// nothing) and learns the ports there, reported as a V2 host's are.
  virtual void serve_terminated_clients() = 0;
};

/// A tunnel as its clients must see it: the host (null: none connected) and the ports it forwards.
struct relay_tunnel_view {
  std::shared_ptr<relay_host_handle> host;
  std::map<std::uint32_t, std::string> ports;  // port -> the address the host forwarded it with
};

class relay_client_handle : public relay_link_handle {
 public:
  /// The tunnel as it is now. The first view starts the client: a V1 client of a V1 host is piped end to
  /// end, any other has its SSH session with the relay. Later views announce and withdraw the ports that
  /// changed.
  virtual void show(relay_tunnel_view view) = 0;
};

/// Where one connection reports, from its strand, in order.
class relay_link_events {
 public:
  virtual ~relay_link_events() = default;
  virtual void ready() = 0;
  virtual void port_changed(std::uint32_t port, const std::string& address, bool added) = 0;  // hosts only
  /// Exactly once; nothing follows.
  virtual void closed(std::uint32_t reason, const std::string& message) = 0;
};

class relay_control {
 public:
  virtual ~relay_control() = default;
  /// A relay WebSocket was upgraded. The connection reports to what this returns.
  virtual std::shared_ptr<relay_link_events> host_opened(std::shared_ptr<relay_host_handle> host) = 0;
  virtual std::shared_ptr<relay_link_events> client_opened(std::shared_ptr<relay_client_handle> client) = 0;
  /// The protocol of the tunnel's connected host, for choosing a client's subprotocol; `done` runs once, on
  /// any thread.
  virtual void host_version(const std::string& tunnel_id,
                            std::function<void(std::optional<protocol_version>)> done) = 0;
};

}  // namespace sb::tunnel::io

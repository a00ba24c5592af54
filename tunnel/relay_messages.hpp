#pragma once
// Dev Tunnels relay protocol constants and the messages it extends (devtunnels-protocol.md §1, §3): port
// forward requests carrying an access token, forwarded-tcpip opens carrying a token and an E2E request, and
// open confirmations carrying the E2E answer.
#include <optional>
#include <string>

#include "tunnel/ssh/wire.hpp"

namespace sb::tunnel {

using ssh::bytes;

namespace subprotocol {
inline constexpr const char* host_v1 = "tunnel-relay-host";
inline constexpr const char* host_v2 = "tunnel-relay-host-v2-dev";
inline constexpr const char* client_v1 = "tunnel-relay-client";
inline constexpr const char* client_v2 = "tunnel-relay-client-v2-dev";
}  // namespace subprotocol

inline constexpr const char* client_stream_channel = "client-ssh-session-stream";
inline constexpr const char* forwarded_tcpip = "forwarded-tcpip";
inline constexpr const char* direct_tcpip = "direct-tcpip";
inline constexpr const char* tcpip_forward = "tcpip-forward";
inline constexpr const char* cancel_tcpip_forward = "cancel-tcpip-forward";
inline constexpr const char* refresh_ports = "RefreshPorts";

enum class protocol_version { v1, v2 };
/// "v1" or "v2", as logs, admin answers and `status connected vN` name it.
inline const char* version_name(protocol_version v) { return v == protocol_version::v2 ? "v2" : "v1"; }

/// `tcpip-forward` / `cancel-tcpip-forward` payload; V2 appends the access token.
struct port_forward_request {
  std::string address = "127.0.0.1";
  std::uint32_t port = 0;
  std::optional<std::string> access_token;
};
bytes encode(const port_forward_request& r);
std::optional<port_forward_request> decode_port_forward_request(const bytes& data);

/// A global request read as a port change: nullopt when it is neither `tcpip-forward` nor
/// `cancel-tcpip-forward`; otherwise whether the port is added, and the request, absent when its payload is
/// malformed or names port 0 (to be refused).
struct port_forward_change {
  bool add = false;
  std::optional<port_forward_request> request;
};
std::optional<port_forward_change> read_port_forward(const std::string& request_name, const bytes& data);

/// REQUEST_SUCCESS payload of a port forward: the port (readers tolerate its absence).
bytes encode_port_success(std::uint32_t port);
std::optional<std::uint32_t> decode_port_success(const bytes& data);

/// `forwarded-tcpip` / `direct-tcpip` open data; the V2 form appends a token and an E2E request.
struct forwarded_channel_open {
  std::string host = "127.0.0.1";
  std::uint32_t port = 0;
  std::string originator_ip = "127.0.0.1";
  std::uint32_t originator_port = 0;
  bool extended = false;
  std::string access_token;
  bool e2e_requested = false;
};
bytes encode(const forwarded_channel_open& o);
std::optional<forwarded_channel_open> decode_forwarded_channel_open(const bytes& data);

/// What follows the standard open-confirmation fields in V2: whether E2E encryption is on.
bytes encode_open_confirmation(bool e2e_enabled);
bool decode_open_confirmation(const bytes& data);

}  // namespace sb::tunnel

#include "tunnel/relay_messages.hpp"

namespace sb::tunnel {

bytes encode(const port_forward_request& r) {
  ssh::writer w;
  w.string(r.address).u32(r.port);
  if (r.access_token) w.string(*r.access_token);
  return w.take();
}

std::optional<port_forward_change> read_port_forward(const std::string& request_name, const bytes& data) {
  const bool add = request_name == tcpip_forward;
  if (!add && request_name != cancel_tcpip_forward) return std::nullopt;
  auto r = decode_port_forward_request(data);
  if (r && r->port == 0) r.reset();
  return port_forward_change{add, std::move(r)};
}

std::optional<port_forward_request> decode_port_forward_request(const bytes& data) {
  ssh::reader rd(data);
  port_forward_request r;
  r.address = rd.string();
  r.port = rd.u32();
  if (!rd.ok() || r.port > 65535) return std::nullopt;
  if (!rd.at_end()) {
    r.access_token = rd.string();
    if (!rd.ok()) return std::nullopt;
  }
  return r;
}

bytes encode_port_success(std::uint32_t port) { return ssh::writer().u32(port).take(); }

std::optional<std::uint32_t> decode_port_success(const bytes& data) {
  if (data.size() < 4) return std::nullopt;
  ssh::reader rd(data);
  return rd.u32();
}

bytes encode(const forwarded_channel_open& o) {
  ssh::writer w;
  w.string(o.host).u32(o.port).string(o.originator_ip).u32(o.originator_port);
  if (o.extended) w.string(o.access_token).boolean(o.e2e_requested);
  return w.take();
}

std::optional<forwarded_channel_open> decode_forwarded_channel_open(const bytes& data) {
  ssh::reader rd(data);
  forwarded_channel_open o;
  o.host = rd.string();
  o.port = rd.u32();
  o.originator_ip = rd.string();
  o.originator_port = rd.u32();
  if (!rd.ok() || o.port > 65535 || o.originator_port > 65535) return std::nullopt;
  if (!rd.at_end()) {
    o.extended = true;
    o.access_token = rd.string();
    o.e2e_requested = rd.at_end() ? false : rd.boolean();
    if (!rd.ok()) return std::nullopt;
  }
  return o;
}

bytes encode_open_confirmation(bool e2e_enabled) { return ssh::writer().boolean(e2e_enabled).take(); }

bool decode_open_confirmation(const bytes& data) { return !data.empty() && data[0] != 0; }

}  // namespace sb::tunnel

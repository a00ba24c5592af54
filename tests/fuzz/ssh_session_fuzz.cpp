// Fuzz target: the SSH message parsers of tunnel/ssh/session.hpp and the Dev Tunnels messages of
// tunnel/relay_messages.hpp. Byte 0 picks the case:
//   bit 0  our side is the server (else the client)
//   bit 1  raw: the rest is the peer's byte stream from the very first byte (version line, KEXINIT, ECDH,
//          ...); otherwise a real peer first completes a `none` key exchange with us and the rest is a
//          sequence of SSH payloads (u16 length, bytes) framed as `none` packets, so the fuzzer reaches the
//          connection protocol: channel opens with Dev Tunnels V2 extensions, data, window adjusts, requests
//   bit 2  V1 static none (zero-cookie KEXINIT) instead of V2's negotiated none
// We answer what the peer asks (accept channels, echo data, reply to requests) so that later messages find
// live state. The relay message decoders also run on the raw input. Property: nothing crashes or hangs.
#include <cstdint>
#include <memory>

#include "fuzz_input.hpp"
#include "tunnel/relay_messages.hpp"
#include "tunnel/ssh/session.hpp"

using namespace sb::tunnel;
using namespace sb::tunnel::ssh;

namespace {

std::shared_ptr<const ecdsa_key> host_key() {
  static const auto key = std::make_shared<ecdsa_key>(ecdsa_key::generate());
  return key;
}

session_config config(role r, bool static_none, bool offer_ecdh) {
  session_config c;
  c.role = r;
  c.static_none = static_none;
  c.kex = offer_ecdh ? std::vector<std::string>{"none", "ecdh-sha2-nistp384", "ecdh-sha2-nistp256"}
                     : std::vector<std::string>{"none"};
  c.host_key = host_key();
  c.accept_auth = [](const std::string&, const std::string&, const bytes&) { return true; };
  c.window = 64 * 1024;
  return c;
}

// Reacts to every event the way the relay, host and client do, and checks the Dev Tunnels extensions.
void answer(session& s) {
  for (int guard = 0; guard < 10000; ++guard) {
    auto e = s.poll();
    if (!e) return;
    if (auto* open = std::get_if<ev::channel_open>(&*e)) {
      (void)decode_forwarded_channel_open(open->data);
      if (open->id % 2)
        s.accept_channel(open->id, encode_open_confirmation(true));
      else
        s.reject_channel(open->id, open_failure::connect_failed, "no");
    } else if (auto* req = std::get_if<ev::global_request>(&*e)) {
      auto forward = decode_port_forward_request(req->data);
      if (req->want_reply)
        s.global_reply(forward.has_value(), encode_port_success(forward ? forward->port : 0));
    } else if (auto* reply = std::get_if<ev::global_reply>(&*e)) {
      (void)decode_port_success(reply->data);
    } else if (auto* confirmed = std::get_if<ev::channel_confirmed>(&*e)) {
      (void)decode_open_confirmation(confirmed->data);
    } else if (auto* in = std::get_if<ev::channel_data>(&*e)) {
      s.consumed(in->id, in->data.size());
      (void)s.send(in->id, in->data);
    } else if (auto* creq = std::get_if<ev::channel_request>(&*e)) {
      if (creq->want_reply) s.channel_reply(creq->id, creq->name.size() % 2 == 0);
    } else if (auto* eof = std::get_if<ev::channel_eof>(&*e)) {
      s.close_channel(eof->id);
    }
  }
}

void feed_raw(session& s, const std::uint8_t* p, std::size_t n) {
  // Pieces of varying size, as TCP would deliver them.
  for (std::size_t at = 0, piece = 1; at < n; at += piece, piece = piece * 2 % 61 + 1) {
    s.receive(p + at, std::min(piece, n - at));
    answer(s);
    (void)s.take_output();
  }
}

bool handshake(session& us, session& peer) {
  us.start();
  peer.start();
  for (int i = 0; i < 100; ++i) {
    auto a = us.take_output();
    auto b = peer.take_output();
    if (!a.empty()) peer.receive(a);
    if (!b.empty()) us.receive(b);
    while (peer.poll()) {
    }
    if (a.empty() && b.empty()) break;
  }
  answer(us);
  return us.ready() && peer.ready();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bytes all(data + 1, data + size);
  (void)decode_port_forward_request(all);
  (void)decode_port_success(all);
  (void)decode_forwarded_channel_open(all);
  (void)decode_open_confirmation(all);

  const std::uint8_t mode = data[0];
  const role ours = (mode & 1) ? role::server : role::client;
  const role theirs = ours == role::server ? role::client : role::server;
  const bool raw = mode & 2;
  const bool static_none = mode & 4;

  session us(config(ours, static_none, raw));
  if (raw) {
    us.start();
    (void)us.take_output();
    feed_raw(us, data + 1, size - 1);
    return 0;
  }

  session peer(config(theirs, static_none, false));
  sb_fuzz::require(handshake(us, peer), "a none key exchange between two of our sessions completes");
  // A channel of our own, so that confirmations, data and closes addressed to it find one.
  (void)us.open_channel(forwarded_tcpip, encode(forwarded_channel_open{}));
  (void)us.take_output();

  packet_sealer framer;  // `none`: the length and padding the peer would send
  reader r(data + 1, size - 1);
  while (r.ok() && !r.at_end() && !us.closed()) {
    const std::uint8_t hi = r.u8(), lo = r.u8();
    const std::size_t len = std::min<std::size_t>((std::size_t(hi) << 8) | lo, r.remaining());
    bytes payload(len);
    for (auto& b : payload) b = r.u8();
    if (!r.ok()) break;
    us.receive(framer.seal(payload));
    answer(us);
    (void)us.take_output();
  }
  return 0;
}

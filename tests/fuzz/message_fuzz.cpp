// Fuzz target: one WebSocket text frame through the gateway's decoder (protocol::decode) and, for whatever
// decodes, every payload rule of protocol/payloads.hpp (a client may put any payload under any type, so each
// rule sees every payload). Properties: nothing throws, the envelope re-encodes, and the encoded frame
// decodes again to the same id, type and sessionId.
#include <cstdint>

#include "fuzz_input.hpp"
#include "protocol/json_bounds.hpp"
#include "protocol/message.hpp"
#include "protocol/payloads.hpp"

namespace {

using namespace sb::protocol;

void every_payload_rule(const envelope& msg) {
  const json& p = msg.payload;
  (void)parse_connect(p);
  (void)parse_auth(p);
  (void)parse_session_create(msg);
  (void)parse_session_patch(p);
  (void)parse_presence(p);
  (void)parse_chat(p);
  (void)parse_agent_register(p);
  (void)parse_agent_unregister(p);
  (void)parse_agent_status(p);
  (void)parse_route_request(p);
  (void)parse_route_response(p);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = sb_fuzz::as_view(data, size);
  // Every payload rule on the frame's JSON itself, whatever its shape: the rules must stand on their own, not
  // rely on decode having vetted the envelope.
  auto raw = parse_untrusted_json(text, default_max_json_depth);
  if (raw.ok()) {
    envelope bare;
    bare.payload = std::move(raw.value);
    every_payload_rule(bare);
  }

  auto result = decode(text, default_max_json_depth);
  if (auto* err = std::get_if<decode_error>(&result)) {
    // The error reply is built from the decoder's message and the id it could read.
    (void)encode(make_error(err->code, err->message, err->id));
    return 0;
  }
  auto& msg = std::get<envelope>(result);
  (void)classify(msg.type);
  every_payload_rule(msg);

  const auto frame = encode(msg);
  auto again = decode(frame, default_max_json_depth);
  auto* back = std::get_if<envelope>(&again);
  sb_fuzz::require(back != nullptr, "an encoded envelope decodes again");
  sb_fuzz::require(back->id == msg.id && back->type == msg.type && back->session_id == msg.session_id,
                   "id, type and sessionId survive a round trip");

  return 0;
}

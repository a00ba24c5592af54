#include "actors/context.hpp"

namespace sb::actors {

void send_to(const transport::sink_ptr& sink, const protocol::envelope& msg,
             transport::metrics_registry& metrics) {
  if (!sink) return;
  metrics.messages_out.add(msg.type);
  sink->send(protocol::encode_shared(msg));
}

}  // namespace sb::actors

#pragma once
// What the supervisor and the agent registry share when the bus comes back and they write their records again.
#include <caf/all.hpp>
#include <memory>

#include "actors/type_ids.hpp"
#include "transport/metrics.hpp"

namespace sb::actors {

/// The answer handler of one resync write: counted when it landed; otherwise `owner` hears
/// resync_failed_atom and resyncs again a little later (the bus may be back before JetStream is).
template <class Handle>
cluster::revision_handler resync_write_done(Handle owner, std::shared_ptr<transport::metrics_registry> metrics) {
  return [owner = std::move(owner), metrics = std::move(metrics)](cluster::result<std::uint64_t> done) {
    if (cluster::value_of(done))
      metrics->cluster_resyncs.fetch_add(1);
    else
      caf::anon_send(owner, resync_failed_atom_v);
  };
}

/// How long a failed resync waits before the next (a session's reconcile doubles it per failure, up to
/// max_retry_delay: a record that keeps failing is not hammered).
constexpr std::chrono::milliseconds resync_retry{500};
constexpr std::chrono::milliseconds max_retry_delay{30000};

}  // namespace sb::actors

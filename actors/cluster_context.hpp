#pragma once
// How a gateway node's actors reach the cluster: the bus, this cluster's names on it, and the buckets. The
// same actors run on NATS and on the in-process bus of a single node; only `shared` tells them apart (with
// nobody else on the bus, a broadcast is not published at all).
#include <memory>
#include <string>

#include "cluster/bus.hpp"
#include "cluster/subjects.hpp"

namespace sb::actors {

struct cluster_context {
  std::shared_ptr<cluster::bus> bus;
  std::string name;     // clusterName
  std::string node_id;  // this node
  bool shared = false;  // other nodes may be on the bus (NATS)
  std::shared_ptr<cluster::kv_bucket> sessions;  // one record per session (cluster/records.hpp)
  std::shared_ptr<cluster::kv_bucket> presence;  // one entry per authenticated client
  std::shared_ptr<cluster::kv_bucket> agents;    // one record per agent

  /// Every node with members of the session subscribes here; broadcasts are published here once.
  std::string session_subject(const std::string& session_id) const {
    return name + ".session." + cluster::encode_token(session_id);
  }
  /// The KV key of any id (a session's, a client's, an agent's).
  static std::string key_of(const std::string& id) { return cluster::encode_token(id); }
  std::string session_key(const std::string& session_id) const { return key_of(session_id); }
  /// Every node's heartbeats.
  std::string heartbeat_subject() const { return name + ".nodes.heartbeat"; }
  static std::string bucket_name(const std::string& cluster_name, const char* what) {
    return "sb_" + cluster_name + "_" + what;
  }
};

using cluster_ptr = std::shared_ptr<const cluster_context>;

}  // namespace sb::actors

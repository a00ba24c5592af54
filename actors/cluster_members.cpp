// The members actor: this node's view of the cluster. Every clusterHeartbeatMs it publishes a heartbeat
// (id, address, state, load) and looks for nodes silent for clusterNodeTimeoutMs; those are gone, and the
// supervisor removes their clients from every session. NATS does the transport; the verdict is ours, so a
// node that loses its own link to NATS declares nobody gone (it is the one cut off), and after a reconnect it
// gives every node a full timeout to be heard again.
#include <spdlog/spdlog.h>

#include <caf/all.hpp>

#include "actors/spawn.hpp"
#include "cluster/records.hpp"

namespace sb::actors {

namespace {

struct peer {
  cluster::heartbeat last;
  steady_time heard{};
};

struct members_state {
  static inline const char* name = "sb.cluster_members";
  context_ptr ctx;
  std::string address;
  std::map<std::string, peer> peers;  // other live nodes
  cluster::link_state link = cluster::link_state::reconnecting;
  std::uint64_t nodes_lost = 0;
  cluster::subscription_ptr heartbeats;
};

using members_ptr = cluster_members_actor::stateful_pointer<members_state>;

std::chrono::milliseconds interval(const members_state& st) {
  return std::chrono::milliseconds(st.ctx->config.cluster_heartbeat_ms);
}

cluster::heartbeat own_heartbeat(const members_state& st, const char* state) {
  const auto& m = *st.ctx->metrics;
  cluster::heartbeat h;
  h.node_id = st.ctx->node_id;
  h.address = st.address;
  h.state = state;
  h.clients = static_cast<std::uint64_t>(std::max<std::int64_t>(0, m.connections.load()));
  h.sessions = static_cast<std::uint64_t>(std::max<std::int64_t>(0, m.sessions.load()));
  h.agents = static_cast<std::uint64_t>(std::max<std::int64_t>(0, m.agents_online.load()));
  h.sent_at = protocol::now_ms();
  return h;
}

void publish_heartbeat(members_ptr self, const char* state) {
  const auto& st = self->state;
  const auto& cl = *st.ctx->cluster;
  cl.bus->publish(cl.heartbeat_subject(), cluster::encode(own_heartbeat(st, state)));
}

void update_gauge(members_state& st) { st.ctx->metrics->cluster_nodes.store(static_cast<std::int64_t>(st.peers.size() + 1)); }

void lose(members_ptr self, const std::string& node_id, const char* why) {
  auto& st = self->state;
  st.peers.erase(node_id);
  ++st.nodes_lost;
  st.ctx->metrics->cluster_nodes_lost.fetch_add(1);
  update_gauge(st);
  spdlog::warn("cluster: node {} is gone ({})", node_id, why);
  self->send(st.ctx->supervisor, node_lost_atom_v, node_id);
}

void on_heartbeat(members_ptr self, const std::string& data) {
  auto& st = self->state;
  auto h = cluster::decode_heartbeat(data);
  if (!h) {
    st.ctx->metrics->cluster_rejected.fetch_add(1);
    return;
  }
  if (h->node_id == st.ctx->node_id) return;
  if (h->state == "leaving") {
    if (st.peers.count(h->node_id)) lose(self, h->node_id, "it left");
    return;
  }
  auto [it, added] = st.peers.try_emplace(h->node_id);
  it->second.last = std::move(*h);
  it->second.heard = std::chrono::steady_clock::now();
  if (added) {
    spdlog::info("cluster: node {} joined ({})", it->first, it->second.last.address);
    update_gauge(st);
  }
}

void on_tick(members_ptr self) {
  auto& st = self->state;
  publish_heartbeat(self, st.ctx->server_state->draining.load() ? "draining" : "alive");
  if (st.link == cluster::link_state::connected) {
    const auto deadline = std::chrono::steady_clock::now() - std::chrono::milliseconds(st.ctx->config.cluster_node_timeout_ms);
    std::vector<std::string> silent;
    for (const auto& [id, p] : st.peers)
      if (p.heard < deadline) silent.push_back(id);
    for (const auto& id : silent) lose(self, id, "no heartbeat");
  }
  self->delayed_send(self, interval(st), heartbeat_tick_atom_v);
}

void on_link(members_ptr self, cluster::link_state link) {
  auto& st = self->state;
  if (link == st.link) return;
  spdlog::warn("cluster: link to the bus {}", cluster::to_string(link));
  if (st.link == cluster::link_state::connected) st.ctx->metrics->cluster_outages.fetch_add(1);
  st.link = link;
  st.ctx->metrics->cluster_link.store(static_cast<int>(link));
  if (link != cluster::link_state::connected) return;
  // Back after an outage: nobody was heard meanwhile through no fault of theirs.
  for (auto& [_, p] : st.peers) p.heard = std::chrono::steady_clock::now();
  // And what this node holds goes back into KV: the NATS server may have restarted without it.
  self->send(st.ctx->supervisor, resync_atom_v);
}

cluster_view view_of(const members_state& st) {
  cluster_view out;
  const auto& cl = *st.ctx->cluster;
  out.name = cl.name;
  out.bus = cl.bus->describe();
  out.link = std::string(cluster::to_string(st.link));
  out.nodes_lost = st.nodes_lost;
  const auto self = own_heartbeat(st, st.ctx->server_state->draining.load() ? "draining" : "alive");
  out.members.push_back({self.node_id, self.address, self.state, true, self.sent_at, self.clients, self.sessions, self.agents});
  for (const auto& [id, p] : st.peers)
    out.members.push_back({id, p.last.address, p.last.state, false, p.last.sent_at, p.last.clients, p.last.sessions,
                           p.last.agents});
  return out;
}

}  // namespace

cluster_members_actor::behavior_type members_behavior(members_ptr self, context_ptr ctx, std::string address) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.address = std::move(address);
  const auto& cl = *st.ctx->cluster;
  auto me = caf::actor_cast<cluster_members_actor>(self);
  st.link = cl.bus->state();
  st.ctx->metrics->cluster_link.store(cl.shared ? static_cast<int>(st.link) : -1);
  cl.bus->on_state_change([me](cluster::link_state s) { caf::anon_send(me, bus_state_atom_v, s); });
  if (cl.shared)
    st.heartbeats = cl.bus->subscribe(cl.heartbeat_subject(), [me](cluster::message m) {
      caf::anon_send(me, heartbeat_atom_v, std::move(m.data));
    });
  self->attach_functor([bus = cl.bus] { bus->on_state_change(nullptr); });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    // A last heartbeat that says goodbye: the others drop this node now instead of after the timeout.
    if (self->state.ctx->cluster->shared) publish_heartbeat(self, "leaving");
    self->quit(msg.reason);
  });
  if (cl.shared) self->send(self, heartbeat_tick_atom_v);
  return {
      [self](heartbeat_atom, const std::string& data) { on_heartbeat(self, data); },
      [self](heartbeat_tick_atom) { on_tick(self); },
      [self](bus_state_atom, cluster::link_state s) { on_link(self, s); },
      [self](cluster_view_atom) { return view_of(self->state); },
      [self](status_atom) {
        const auto& s = self->state;
        return actor_status{"cluster", self->mailbox().size(),
                            members_status{s.peers.size() + 1, std::string(cluster::to_string(s.link))}};
      },
  };
}

cluster_members_actor spawn_cluster_members(caf::actor_system& sys, context_ptr ctx, std::string address) {
  return sys.spawn(members_behavior, std::move(ctx), std::move(address));
}

}  // namespace sb::actors

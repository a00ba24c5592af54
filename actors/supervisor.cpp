// The gateway supervisor: the indexes (client id -> actor, session id -> this node's session actor), the
// cluster's session directory (watched from the sessions bucket), and cleanup of children that end. A crashed
// client is cleaned up as if it had disconnected; a crashed session is dropped from the index (its members'
// next request answers SESSION_NOT_FOUND); a crashed agent registry is restarted, empty, and every client is
// given the new handle. When another node dies, its members leave every session they were in.
#include <spdlog/spdlog.h>

#include <caf/all.hpp>
#include <map>
#include <set>
#include <variant>

#include "actors/arrival_order.hpp"
#include "actors/resync.hpp"
#include "actors/spawn.hpp"
#include "cluster/records.hpp"
#include "cluster/subjects.hpp"
#include "cluster/watch_sweep.hpp"

namespace sb::actors {

namespace {

using protocol::error_code;

/// What a monitored child is, so its DOWN message is handled for its kind.
struct client_child {
  std::string id;
};
struct session_child {
  std::string id;
};
struct registry_child {};
using child_kind = std::variant<client_child, session_child, registry_child>;

/// What the supervisor knows of a session anywhere in the cluster, from the bucket's watch.
struct directory_entry {
  std::uint64_t revision = 0;
  std::size_t members = 0;
  std::set<std::string> nodes;  // nodes with members
};

struct supervisor_state {
  static inline const char* name = "sb.supervisor";
  context_ptr ctx;  // carries this supervisor, for the sessions it spawns
  std::map<std::string, client_actor> clients;
  std::map<std::string, presence_entry> presence;  // authenticated clients only
  std::map<std::string, session_actor> sessions;    // sessions with members here (or an op in flight)
  std::map<std::string, directory_entry> directory; // every session of the cluster (clustered nodes only)
  std::map<std::string, cluster::presence_record> remote_presence;  // other nodes' authenticated clients
  arrival_order arrivals;  // both of the above, in the order this node first saw them
  cluster::subscription_ptr sessions_watch, presence_watch;
  cluster::watch_sweep sessions_sweep, presence_sweep;
  bool resync_scheduled = false;  // a presence write of the last resync failed: another comes
  registry_actor registry;
  std::uint64_t registry_restarts = 0;
  std::map<caf::actor_addr, child_kind> watched;
};

using supervisor_ptr = gateway_supervisor_actor::stateful_pointer<supervisor_state>;

template <class Handle>
void watch(supervisor_ptr self, const Handle& child, child_kind kind) {
  self->state.watched.emplace(child.address(), std::move(kind));
  self->monitor(child);
}

op_result session_not_found(const std::string& sid) {
  return op_result::fail(error_code::session_not_found, "session '" + sid + "' not found");
}

/// This node's actor for a session, spawned when there is none yet.
session_actor session_for(supervisor_ptr self, const std::string& sid) {
  auto& st = self->state;
  if (auto it = st.sessions.find(sid); it != st.sessions.end()) return it->second;
  auto session = spawn_session(self->system(), st.ctx, sid);
  st.sessions[sid] = session;
  watch(self, session, session_child{sid});
  return session;
}

/// The answer for a session operation of a client that is not a member here: the session may still exist
/// on other nodes (NOT_IN_SESSION) or nowhere (SESSION_NOT_FOUND).
op_result not_here(const supervisor_state& st, const std::string& sid, const std::string& cid) {
  if (st.directory.count(sid))
    return op_result::fail(error_code::not_in_session, "client " + cid + " is not in session '" + sid + "'");
  return session_not_found(sid);
}

/// Asks this node's session actor and hands its answer back. A session actor may end (its last member here
/// left) with the request already in its mailbox; then a new one is spawned and asked, once per attempt.
template <class Reply, class... Ts>
void ask_session(supervisor_ptr self, const std::string& sid, caf::typed_response_promise<Reply> rp,
                 std::function<Reply()> when_gone, bool spawn, int attempts, Ts... xs) {
  auto& st = self->state;
  auto it = st.sessions.find(sid);
  if (it == st.sessions.end() && !spawn) {
    rp.deliver(when_gone());
    return;
  }
  auto session = spawn ? session_for(self, sid) : it->second;
  self->request(session, internal_request_timeout, xs...)
      .then([rp](Reply& r) mutable { rp.deliver(std::move(r)); },
            [self, sid, rp, when_gone, spawn, attempts, session, xs...](caf::error& err) mutable {
              auto& s = self->state;
              if (err != caf::sec::request_receiver_down || attempts <= 1) {
                spdlog::error("session {}: request failed: {}", sid, to_string(err));
                rp.deliver(when_gone());
                return;
              }
              if (auto i = s.sessions.find(sid); i != s.sessions.end() && i->second == session) s.sessions.erase(i);
              ask_session<Reply>(self, sid, rp, when_gone, spawn, attempts - 1, xs...);
            });
}

constexpr int session_attempts = 3;

/// The key's session id and what the record says of it; nullopt for a key or record that is not ours.
std::optional<std::pair<std::string, directory_entry>> read_directory_entry(const supervisor_state& st,
                                                                            const cluster::kv_entry& e) {
  auto sid = cluster::decode_token(e.key);
  if (sid.empty()) return std::nullopt;
  directory_entry out;
  out.revision = e.revision;
  if (e.deleted) return std::make_pair(std::move(sid), out);
  auto rec = cluster::decode_session_record(e.value, st.ctx->config.max_json_depth);
  if (!rec || rec->id != sid) return std::nullopt;
  out.members = rec->members.size();
  for (const auto& m : rec->members) out.nodes.insert(m.node_id);
  return std::make_pair(std::move(sid), out);
}

void on_record_changed(supervisor_ptr self, cluster::kv_entry& e) {
  auto& st = self->state;
  auto entry = read_directory_entry(st, e);
  if (!entry) {
    st.ctx->metrics->cluster_rejected.fetch_add(1);
    return;
  }
  auto& [sid, info] = *entry;
  if (e.deleted) {
    st.directory.erase(sid);
  } else {
    st.sessions_sweep.heard(sid);
    st.directory[sid] = std::move(info);
  }
  if (auto it = st.sessions.find(sid); it != st.sessions.end()) self->send(it->second, record_changed_atom_v, std::move(e));
}

void drop_node_presence(supervisor_ptr self, const std::string& node_id);

/// Another node died: its members leave every session they were in. Every survivor does this for the
/// sessions it knows; compare-and-set makes the removal happen once.
void on_node_lost(supervisor_ptr self, const std::string& node_id) {
  auto& st = self->state;
  std::size_t touched = 0;
  for (const auto& [sid, info] : st.directory) {
    if (!info.nodes.count(node_id)) continue;
    self->send(session_for(self, sid), node_lost_atom_v, node_id);
    ++touched;
  }
  spdlog::warn("node {} is gone: removing its members from {} sessions", node_id, touched);
  drop_node_presence(self, node_id);
  self->send(st.registry, node_lost_atom_v, node_id);
}

bool shared(const supervisor_state& st) { return st.ctx->cluster && st.ctx->cluster->shared; }

/// Follows every session record and presence entry of the cluster (a clustered node only: alone, the
/// indexes here are the whole picture).
void watch_cluster(supervisor_ptr self) {
  auto& st = self->state;
  if (!shared(st)) return;
  const auto& cl = st.ctx->cluster;
  auto me = caf::actor_cast<gateway_supervisor_actor>(self);
  st.sessions_watch = cl->sessions->watch(">", [me](std::optional<cluster::kv_entry> e) {
    if (e)
      caf::anon_send(me, record_changed_atom_v, std::move(*e));
    else
      caf::anon_send(me, records_synced_atom_v);
  });
  st.presence_watch = cl->presence->watch(">", [me](std::optional<cluster::kv_entry> e) {
    if (e)
      caf::anon_send(me, presence_changed_atom_v, std::move(*e));
    else
      caf::anon_send(me, presence_synced_atom_v);
  });
}

/// A watch caught up after starting over: sessions whose records vanished meanwhile leave the directory (a
/// session with members here makes its record again, see session.cpp).
void on_records_synced(supervisor_ptr self) {
  auto& st = self->state;
  for (const auto& sid : st.sessions_sweep.stale(st.directory)) {
    st.directory.erase(sid);
    if (auto it = st.sessions.find(sid); it != st.sessions.end()) self->send(it->second, resync_atom_v);
  }
}

// -- presence: the local entries here, everyone else's from the presence bucket --

void set_presence(supervisor_ptr self, const std::string& client_id, presence_entry entry) {
  auto& st = self->state;
  if (shared(st)) {
    cluster::presence_record r{client_id, st.ctx->node_id, entry.status, entry.role, entry.device_id};
    st.ctx->cluster->presence->put(cluster_context::key_of(client_id), cluster::encode(r), nullptr);
  }
  st.arrivals.add(client_id);
  st.presence[client_id] = std::move(entry);
}

void drop_presence(supervisor_ptr self, const std::string& client_id) {
  auto& st = self->state;
  if (!st.presence.erase(client_id)) return;
  st.arrivals.remove(client_id);
  if (shared(st)) st.ctx->cluster->presence->erase(cluster_context::key_of(client_id), std::nullopt, nullptr);
}

void forget_remote(supervisor_state& st, const std::string& client_id) {
  if (st.remote_presence.erase(client_id)) st.arrivals.remove(client_id);
}

void on_presence_changed(supervisor_ptr self, const cluster::kv_entry& e) {
  auto& st = self->state;
  const auto cid = cluster::decode_token(e.key);
  if (cid.empty()) return;
  if (e.deleted) {
    forget_remote(st, cid);
    return;
  }
  auto r = cluster::decode_presence_record(e.value);
  if (!r || r->client_id != cid) {
    st.ctx->metrics->cluster_rejected.fetch_add(1);
    return;
  }
  if (r->node_id == st.ctx->node_id) {
    // Ours: the local map is the truth. One we do not hold is left from before a restart of this node.
    if (!st.presence.count(cid)) st.ctx->cluster->presence->erase(e.key, e.revision, nullptr);
    return;
  }
  st.presence_sweep.heard(cid);
  st.arrivals.add(cid);
  st.remote_presence[cid] = std::move(*r);
}

void on_presence_synced(supervisor_ptr self) {
  auto& st = self->state;
  for (const auto& cid : st.presence_sweep.stale(st.remote_presence)) forget_remote(st, cid);
}

/// The bus is back (or reached for the first time): this node's presence entries are written again, and every
/// session here and the registry put their part back. A NATS server that restarted lost all of it; one that
/// did not keeps the same values, so writing them again changes nothing.
void resync(supervisor_ptr self) {
  auto& st = self->state;
  if (!shared(st)) return;
  st.resync_scheduled = false;
  auto me = caf::actor_cast<gateway_supervisor_actor>(self);
  for (const auto& [cid, entry] : st.presence) {
    cluster::presence_record r{cid, st.ctx->node_id, entry.status, entry.role, entry.device_id};
    st.ctx->cluster->presence->put(cluster_context::key_of(cid), cluster::encode(r),
                                   resync_write_done(me, st.ctx->metrics));
  }
  for (const auto& [_, session] : st.sessions) self->send(session, resync_atom_v);
  if (st.registry) self->send(st.registry, resync_atom_v);
}

/// A resync write failed: one more resync after a pause, however many writes failed.
void resync_later(supervisor_ptr self) {
  auto& st = self->state;
  if (st.resync_scheduled) return;
  st.resync_scheduled = true;
  self->delayed_send(self, resync_retry, resync_atom_v);
}

/// A dead node's clients are not present any more: every survivor removes their entries.
void drop_node_presence(supervisor_ptr self, const std::string& node_id) {
  auto& st = self->state;
  for (auto it = st.remote_presence.begin(); it != st.remote_presence.end();) {
    if (it->second.node_id != node_id) {
      ++it;
      continue;
    }
    st.ctx->cluster->presence->erase(cluster_context::key_of(it->first), std::nullopt, nullptr);
    st.arrivals.remove(it->first);
    it = st.remote_presence.erase(it);
  }
}

presence_page presence_after(const supervisor_state& st, std::uint64_t after, std::uint32_t limit) {
  const auto found = st.arrivals.after(after, limit);
  presence_page out;
  out.total = st.arrivals.size();
  out.next = found.next;
  out.clients.reserve(found.ids.size());
  for (const auto* id : found.ids) {
    if (auto it = st.presence.find(*id); it != st.presence.end()) {
      out.clients.push_back(it->second);
    } else if (auto r = st.remote_presence.find(*id); r != st.remote_presence.end()) {
      out.clients.push_back(presence_entry{r->second.client_id, r->second.role, r->second.device_id, r->second.status});
    }
  }
  return out;
}

void start_registry(supervisor_ptr self) {
  auto& st = self->state;
  st.registry = spawn_agent_registry(self->system(), st.ctx);
  watch(self, st.registry, registry_child{});
}

void on_client_down(supervisor_ptr self, const std::string& id, const caf::error& reason) {
  auto& st = self->state;
  st.clients.erase(id);
  drop_presence(self, id);
  if (!reason || reason == caf::exit_reason::normal) return;
  // The client could not say goodbye: do it for it, so no session keeps a dead member and no agent stays
  // online.
  spdlog::error("client {}: ended abnormally ({}), cleaning up", id, to_string(reason));
  for (const auto& [_, session] : st.sessions) self->send(session, client_gone_atom_v, id);
  self->send(st.registry, client_gone_atom_v, id);
}

void on_session_down(supervisor_ptr self, const caf::actor_addr& source, const std::string& id,
                     const caf::error& reason) {
  auto& st = self->state;
  if (auto s = st.sessions.find(id); s != st.sessions.end() && s->second.address() == source)
    st.sessions.erase(s);
  if (!reason || reason == caf::exit_reason::normal || reason == caf::exit_reason::user_shutdown) return;
  spdlog::error("session {}: ended abnormally: {}", id, to_string(reason));
  // Its members here lost their session: they leave the cluster's record too (announced to the members
  // elsewhere), and the session ends if nobody else is in it.
  self->send(session_for(self, id), node_lost_atom_v, st.ctx->node_id);
}

void on_registry_down(supervisor_ptr self, const caf::error& reason) {
  auto& st = self->state;
  ++st.registry_restarts;
  spdlog::error("agent registry ended ({}); restarting it (restart {})", to_string(reason),
                st.registry_restarts);
  start_registry(self);
  for (const auto& [_, c] : st.clients) self->send(c, registry_atom_v, st.registry);
}

void on_down(supervisor_ptr self, const caf::down_msg& dm) {
  auto& st = self->state;
  auto it = st.watched.find(dm.source);
  if (it == st.watched.end()) return;
  const auto kind = std::move(it->second);
  st.watched.erase(it);
  if (auto* c = std::get_if<client_child>(&kind)) return on_client_down(self, c->id, dm.reason);
  if (auto* s = std::get_if<session_child>(&kind)) return on_session_down(self, dm.source, s->id, dm.reason);
  // The registry: a shutdown (exit handler below) ends it on purpose; anything else restarts it.
  if (dm.reason == caf::exit_reason::user_shutdown) return;
  on_registry_down(self, dm.reason);
}

/// A page of an index in id order: up to `limit` entries after `cursor`.
template <class Handle>
index_page<Handle> page_of(const std::map<std::string, Handle>& index, const std::string& cursor,
                           std::uint64_t limit) {
  index_page<Handle> out;
  out.total = index.size();
  auto it = cursor.empty() ? index.begin() : index.upper_bound(cursor);
  for (; it != index.end() && out.entries.size() < limit; ++it) out.entries.emplace_back(*it);
  if (it != index.end() && !out.entries.empty()) out.more = out.entries.back().first;
  return out;
}

/// The entry for `id`, as a page of zero or one.
template <class Handle>
index_page<Handle> find_in(const std::map<std::string, Handle>& index, const std::string& id) {
  index_page<Handle> out;
  out.total = index.size();
  if (auto it = index.find(id); it != index.end()) out.entries.emplace_back(*it);
  return out;
}

std::size_t drain_clients(supervisor_ptr self) {
  auto& st = self->state;
  st.ctx->server_state->draining.store(true);
  for (const auto& [_, c] : st.clients) self->send(c, drain_atom_v);
  spdlog::info("draining: closing {} clients with 1001", st.clients.size());
  return st.clients.size();
}

}  // namespace

gateway_supervisor_actor::behavior_type supervisor_behavior(supervisor_ptr self, context_ptr ctx) {
  auto own = std::make_shared<gateway_context>(*ctx);
  own->supervisor = caf::actor_cast<gateway_supervisor_actor>(self);
  self->state.ctx = std::move(own);
  self->state.registry = ctx->registry;
  if (self->state.registry)
    watch(self, self->state.registry, registry_child{});
  else
    start_registry(self);
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  watch_cluster(self);
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto& st = self->state;
    for (const auto& [_, c] : st.clients) self->send_exit(c, msg.reason);
    for (const auto& [_, s] : st.sessions) self->send_exit(s, msg.reason);
    self->send_exit(st.registry, msg.reason);
    self->quit(msg.reason);
  });
  return {
      [self](client_started_atom, const std::string& client_id, const client_actor& client) {
        auto& st = self->state;
        st.clients[client_id] = client;
        watch(self, client, client_child{client_id});
        // A client spawned with a registry that has since been restarted learns the current one.
        if (st.registry != st.ctx->registry) self->send(client, registry_atom_v, st.registry);
      },
      [self](presence_atom, const std::string& client_id, presence_entry& entry) {
        set_presence(self, client_id, std::move(entry));
      },
      [self](presence_list_atom, std::uint64_t after, std::uint32_t limit) {
        return presence_after(self->state, after, limit);
      },
      [self](client_gone_atom, const std::string& client_id) {
        self->state.clients.erase(client_id);
        drop_presence(self, client_id);
      },
      [self](presence_changed_atom, const cluster::kv_entry& e) { on_presence_changed(self, e); },
      [self](create_atom, const std::string& sid, json& metadata, member& m) {
        auto rp = self->make_response_promise<session_joined>();
        ask_session<session_joined>(
            self, sid, rp, [sid] { return session_joined{op_result::fail(error_code::internal, "session '" + sid + "' did not answer"), {}}; },
            true, session_attempts, create_atom_v, std::move(metadata), std::move(m));
        return rp;
      },
      [self](join_atom, const std::string& sid, member& m) {
        auto rp = self->make_response_promise<session_joined>();
        ask_session<session_joined>(
            self, sid, rp, [sid] { return session_joined{session_not_found(sid), {}}; }, true, session_attempts,
            join_atom_v, std::move(m));
        return rp;
      },
      [self](leave_atom, const std::string& sid, const std::string& cid) {
        auto rp = self->make_response_promise<op_result>();
        ask_session<op_result>(
            self, sid, rp, [self, sid, cid] { return not_here(self->state, sid, cid); }, false, session_attempts,
            leave_atom_v, cid);
        return rp;
      },
      [self](patch_atom, const std::string& sid, const std::string& cid, json& patch) {
        auto rp = self->make_response_promise<op_result>();
        ask_session<op_result>(
            self, sid, rp, [self, sid, cid] { return not_here(self->state, sid, cid); }, false, session_attempts,
            patch_atom_v, cid, std::move(patch));
        return rp;
      },
      [self](broadcast_atom, const std::string& sid, const std::string& cid, protocol::envelope& msg,
             steady_time received) {
        auto rp = self->make_response_promise<op_result>();
        ask_session<op_result>(
            self, sid, rp, [self, sid, cid] { return not_here(self->state, sid, cid); }, false, session_attempts,
            broadcast_atom_v, cid, std::move(msg), received);
        return rp;
      },
      [self](record_changed_atom, cluster::kv_entry& e) { on_record_changed(self, e); },
      [self](records_synced_atom) { on_records_synced(self); },
      [self](presence_synced_atom) { on_presence_synced(self); },
      [self](resync_atom) { resync(self); },
      [self](resync_failed_atom) { resync_later(self); },
      [self](node_lost_atom, const std::string& node_id) { on_node_lost(self, node_id); },
      [self](client_page_atom, const std::string& cursor, std::uint64_t limit) {
        return page_of(self->state.clients, cursor, limit);
      },
      [self](session_page_atom, const std::string& cursor, std::uint64_t limit) {
        return page_of(self->state.sessions, cursor, limit);
      },
      [self](find_client_atom, const std::string& id) { return find_in(self->state.clients, id); },
      [self](find_session_atom, const std::string& id) { return find_in(self->state.sessions, id); },
      [self](registry_atom) { return self->state.registry; },
      [self](node_stats_atom) {
        const auto& st = self->state;
        return node_stats{st.clients.size(), st.presence.size(), st.sessions.size(),
                          shared(st) ? st.directory.size() : st.sessions.size()};
      },
      [self](kick_atom, const std::string& client_id, std::string& reason) {
        auto it = self->state.clients.find(client_id);
        if (it == self->state.clients.end()) return false;
        self->send(it->second, kick_atom_v, std::move(reason));
        return true;
      },
      [self](drain_atom) { return drain_clients(self); },
      [self](status_atom) {
        const auto& st = self->state;
        return actor_status{st.ctx->node_id, self->mailbox().size(),
                            supervisor_status{st.clients.size(), st.sessions.size(),
                                              st.ctx->server_state->draining.load(), st.registry_restarts}};
      },
  };
}

gateway_supervisor_actor spawn_supervisor(caf::actor_system& sys, context_ptr ctx) {
  return sys.spawn(supervisor_behavior, std::move(ctx));
}

}  // namespace sb::actors

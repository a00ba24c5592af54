// The session actor: this node's part of one session. The session itself is a record in the cluster's
// sessions bucket (metadata, every member on every node, join order), changed only by compare-and-set, so
// concurrent joins on two nodes never lose a member. The actor holds the members connected here, a copy of
// the record, and a subscription to the session's subject: a broadcast is queued on the local members'
// connections and published once for the other nodes, whose session actors queue it on theirs.
//
// Record changes run one at a time (read, change, compare-and-set, retry on conflict). Presence join/leave
// events come from the difference between two records, so a member removed by another node (its node died)
// is announced here exactly like one that left here.
//
// The members connected here are the truth about this node's part of the record. A record that lacks one of
// them (NATS restarted and lost the bucket, another node thought this one dead, a leave written during an
// outage) or lists one that is gone is repaired by a reconcile op: read, put ours back, drop our stale ones,
// create the record again when it is gone. The node runs one for every session after the bus reconnects.
//
//   live --(no member here and nothing in flight)--> ended (quits; the supervisor drops its index entry)
#include <spdlog/spdlog.h>

#include <caf/all.hpp>
#include <deque>
#include <set>

#include "actors/resync.hpp"
#include "actors/spawn.hpp"
#include "actors/type_ids.hpp"
#include "cluster/records.hpp"
#include "protocol/merge_patch.hpp"

namespace sb::actors {

namespace {

using protocol::error_code;
using record = cluster::session_record;

/// Compare-and-set retries of one change before it gives up (each retry means another node won a race).
constexpr int max_write_attempts = 64;

/// One change of the record, run to completion before the next.
struct record_op {
  bool create = false;     // the record must not exist yet
  bool reconcile = false;  // reads afresh, and creates the record when it is gone
  /// Changes the record: an op_result ends the op with that answer; false means nothing needs writing.
  std::function<std::variant<bool, op_result>(record&)> change;
  std::function<void()> done;               // the record now holds the change
  std::function<void(op_result)> failed;   // it does not, and will not
};

struct session_state {
  static inline const char* name = "sb.session";
  context_ptr ctx;
  std::string id;
  std::optional<record> current;  // the record at `revision`, once read
  std::uint64_t revision = 0;
  std::map<std::string, member> locals;  // members connected to this node
  std::deque<record_op> ops;
  bool running = false;
  std::uint64_t op_seq = 0;  // tags the bus's answers, so a late one for an earlier op is ignored
  int attempts = 0;
  std::optional<record> proposed;  // what the running op wrote
  std::uint64_t broadcasts = 0;
  std::set<std::string> leaving;  // local members whose leave is queued: the record may lose them
  std::set<std::string> unannounced;  // local members the record lost (not by their leave): announced when they go
  bool reconcile_queued = false;
  bool retry_scheduled = false;  // a failed reconcile is tried again after retry_delay
  std::chrono::milliseconds retry_delay = resync_retry;  // doubles per failure up to max_retry_delay
  bool stale = false;            // the bus came back: the copy and its revision must be read again first
  cluster::subscription_ptr fanout;
};


using session_ptr = session_actor::stateful_pointer<session_state>;

const cluster_context& cluster_of(const session_state& st) { return *st.ctx->cluster; }
const std::string& node_of(const session_state& st) { return cluster_of(st).node_id; }

session_info describe(const record& r) {
  session_info out{r.id, {}, r.metadata, r.created_at};
  for (const auto& m : r.members) out.clients.push_back(m.client_id);
  return out;
}

// -- delivery ------------------------------------------------------------------------------------------------

/// Queues one frame on every local member but `except`; returns how many got it.
std::size_t deliver_here(session_state& st, const protocol::frame& frame, const std::string& type,
                         const std::string& except) {
  std::size_t n = 0;
  for (const auto& [cid, m] : st.locals) {
    if (cid == except) continue;
    m.sink->send(frame);
    ++n;
  }
  if (n > 0) st.ctx->metrics->messages_out.add(type, n);
  return n;
}

/// To every member of the session but `except`, here and on the other nodes; returns how many that is.
std::size_t broadcast(session_ptr self, const protocol::envelope& msg, const std::string& except) {
  auto& st = self->state;
  auto frame = protocol::encode_shared(msg);
  const auto here = deliver_here(st, frame, msg.type, except);
  ++st.broadcasts;
  const auto& cl = cluster_of(st);
  if (!cl.shared || !st.current) return here;
  const auto elsewhere = st.current->members_on_other_nodes(cl.node_id);
  if (elsewhere > 0 && cl.bus->state() != cluster::link_state::connected) {
    // NATS is away: a publish now could be flushed after the other nodes resubscribe and be lost for them,
    // so it is not made, and `delivered` counts only the members here. The sender knows who got it.
    st.ctx->metrics->cluster_unsent.fetch_add(elsewhere);
    return here;
  }
  if (elsewhere > 0) {
    cl.bus->publish(cl.session_subject(st.id), cluster::encode(cluster::fanout{cl.node_id, except, *frame}));
    st.ctx->metrics->cluster_published.fetch_add(1);
  }
  return here + elsewhere;
}

/// A frame another node published for this session.
void on_fanout(session_ptr self, const std::string& data) {
  auto& st = self->state;
  auto f = cluster::decode_fanout(data);
  if (!f) {
    st.ctx->metrics->cluster_rejected.fetch_add(1);
    return;
  }
  if (f->origin_node == node_of(st)) return;  // ours, delivered here already
  st.ctx->metrics->cluster_received.fetch_add(1);
  deliver_here(st, std::make_shared<const std::string>(std::move(f->frame)), "_cluster", f->except_client);
}

/// A presence event for the members here (every node announces to its own members from the record).
void announce_here(session_ptr self, const char* event, const std::string& client_id) {
  auto& st = self->state;
  auto msg =
      protocol::make_event("presence", {{"event", event}, {"clientId", client_id}, {"sessionId", st.id}}, st.id);
  deliver_here(st, protocol::encode_shared(msg), msg.type, client_id);
}

// -- the record ----------------------------------------------------------------------------------------------

void queue_reconcile(session_ptr self);

/// True when the record lists every member here (but those leaving) and no member of ours that is gone.
bool matches_locals(const session_state& st, const record& r) {
  for (const auto& m : r.members)
    if (m.node_id == node_of(st) && !st.locals.count(m.client_id)) return false;
  for (const auto& [cid, _] : st.locals)
    if (!st.leaving.count(cid) && !r.find(cid)) return false;
  return true;
}

/// Takes a newer record: members that appeared or vanished are announced to the members here. A member
/// connected here stays, whatever the record says, and the record is repaired.
void adopt(session_ptr self, record next, std::uint64_t revision) {
  auto& st = self->state;
  // A watch event for what we already hold; after a reconnect the bucket may be new, its revisions from 1.
  if (st.current && !st.stale && revision <= st.revision) return;
  st.stale = false;
  if (st.current) {
    std::set<std::string> before, after;
    for (const auto& m : st.current->members) before.insert(m.client_id);
    for (const auto& m : next.members) after.insert(m.client_id);
    for (const auto& cid : after)
      if (!before.count(cid)) {
        if (!st.locals.count(cid))
          announce_here(self, "join", cid);
        else
          st.unannounced.erase(cid);  // put back: it never left
      }
    for (const auto& cid : before) {
      if (after.count(cid)) continue;
      if (!st.locals.count(cid) || st.leaving.count(cid))
        announce_here(self, "leave", cid);
      else
        st.unannounced.insert(cid);  // still here: the record is repaired, or it leaves before that
    }
  }
  st.current = std::move(next);
  st.revision = revision;
  // While an op runs, the record and the members here differ until it is done: checked when it finishes.
  if (!st.running && !matches_locals(st, *st.current)) queue_reconcile(self);
}

void run_next(session_ptr self);

void finish_op(session_ptr self) {
  auto& st = self->state;
  st.ops.pop_front();
  st.running = false;
  st.proposed.reset();
  if (st.current && !st.retry_scheduled && !matches_locals(st, *st.current)) queue_reconcile(self);
  run_next(self);
}

void fail_op(session_ptr self, op_result why) {
  auto& st = self->state;
  auto failed = st.ops.front().failed;
  if (failed) failed(std::move(why));
  finish_op(self);
}

/// The record to make again when it is gone: the last copy (other nodes' members included, so their members
/// here see no leave and join while their nodes reconcile; a node that died meanwhile is dropped by node_lost).
record seed_record(const session_state& st) {
  if (st.current) return *st.current;
  record fresh;
  fresh.id = st.id;
  fresh.created_at = protocol::now_ms();
  return fresh;
}

op_result unavailable(const char* doing, cluster::bus_error e) {
  spdlog::warn("session: {} failed: cluster bus {}", doing, cluster::to_string(e));
  return op_result::fail(error_code::internal, std::string("cluster unavailable (") + std::string(cluster::to_string(e)) + ")");
}

void read_record(session_ptr self) {
  auto& st = self->state;
  const auto seq = st.op_seq;
  cluster_of(st).sessions->get(cluster_of(st).session_key(st.id),
                                [me = caf::actor_cast<session_actor>(self), seq](cluster::result<cluster::kv_entry> r) {
                                  caf::anon_send(me, kv_read_atom_v, seq, std::move(r));
                                });
}

void write_done(session_ptr self, cluster::result<std::uint64_t> r);

/// Applies the running op to the record it read and writes the result with compare-and-set.
void attempt(session_ptr self) {
  auto& st = self->state;
  auto& op = st.ops.front();
  if (!st.current) return fail_op(self, op_result::fail(error_code::session_not_found, "session '" + st.id + "' not found"));
  record next = *st.current;
  auto outcome = op.change(next);
  if (auto* refused = std::get_if<op_result>(&outcome)) return fail_op(self, std::move(*refused));
  if (!std::get<bool>(outcome)) {
    if (op.done) op.done();
    return finish_op(self);
  }
  const auto& cl = cluster_of(st);
  const auto seq = st.op_seq;
  auto me = caf::actor_cast<session_actor>(self);
  const bool ends = next.members.empty();
  st.proposed = std::move(next);
  if (ends) {
    // The last member left: the session ends, unless someone joined since the revision we read.
    cl.sessions->erase(cl.session_key(st.id), st.revision, [me, seq](std::optional<cluster::bus_error> e) {
      caf::anon_send(me, kv_written_atom_v, seq,
                     e ? cluster::result<std::uint64_t>{*e} : cluster::result<std::uint64_t>{std::uint64_t{0}});
    });
    return;
  }
  cl.sessions->update(cl.session_key(st.id), cluster::encode(*st.proposed), st.revision,
                      [me, seq](cluster::result<std::uint64_t> r) { caf::anon_send(me, kv_written_atom_v, seq, std::move(r)); });
}

void create_record(session_ptr self) {
  auto& st = self->state;
  auto& op = st.ops.front();
  record fresh;
  if (op.reconcile) {
    fresh = seed_record(st);
  } else {
    fresh.id = st.id;
    fresh.created_at = protocol::now_ms();
  }
  auto outcome = op.change(fresh);
  if (auto* refused = std::get_if<op_result>(&outcome)) return fail_op(self, std::move(*refused));
  if (op.reconcile && fresh.members.empty()) {  // gone, and nobody to make it again for
    st.current.reset();
    if (op.done) op.done();
    return finish_op(self);
  }
  const auto& cl = cluster_of(st);
  const auto seq = st.op_seq;
  st.proposed = std::move(fresh);
  cl.sessions->create(cl.session_key(st.id), cluster::encode(*st.proposed),
                      [me = caf::actor_cast<session_actor>(self), seq](cluster::result<std::uint64_t> r) {
                        caf::anon_send(me, kv_written_atom_v, seq, std::move(r));
                      });
}

void read_done(session_ptr self, cluster::result<cluster::kv_entry> r) {
  auto& st = self->state;
  if (auto* entry = cluster::value_of(r)) {
    auto rec = cluster::decode_session_record(entry->value, st.ctx->config.max_json_depth);
    if (!rec || rec->id != st.id) {
      st.ctx->metrics->cluster_rejected.fetch_add(1);
      return fail_op(self, op_result::fail(error_code::internal, "the session's cluster record is malformed"));
    }
    adopt(self, std::move(*rec), entry->revision);
    return attempt(self);
  }
  const auto e = *cluster::error_of(r);
  if (e == cluster::bus_error::not_found) {
    if (st.ops.front().reconcile) return create_record(self);  // seeded from the copy still held
    st.current.reset();
    return attempt(self);
  }
  fail_op(self, unavailable("read", e));
}

void write_done(session_ptr self, cluster::result<std::uint64_t> r) {
  auto& st = self->state;
  auto& op = st.ops.front();
  if (auto* revision = cluster::value_of(r)) {
    if (st.proposed->members.empty()) {
      spdlog::info("session {}: empty, removed", st.id);
      st.current.reset();
    } else {
      adopt(self, std::move(*st.proposed), *revision);
    }
    if (op.done) op.done();
    return finish_op(self);
  }
  const auto e = *cluster::error_of(r);
  if (e == cluster::bus_error::conflict) {
    if (op.create)
      return fail_op(self, op_result::fail(error_code::session_exists, "session '" + st.id + "' already exists"));
    st.ctx->metrics->cluster_conflicts.fetch_add(1);
    if (++st.attempts > max_write_attempts)
      return fail_op(self, op_result::fail(error_code::internal, "session '" + st.id + "' is changing too fast"));
    return read_record(self);  // someone else wrote first: read theirs, apply ours to it
  }
  if (e == cluster::bus_error::invalid)
    return fail_op(self, op_result::fail(error_code::invalid_message, "the session would exceed the cluster's record size"));
  fail_op(self, unavailable("write", e));
}

/// Starts the next op, or ends the actor when no member is here and nothing is left to do.
void run_next(session_ptr self) {
  auto& st = self->state;
  if (st.running) return;
  if (st.ops.empty()) {
    if (st.locals.empty() && !st.retry_scheduled) self->quit();
    return;
  }
  st.running = true;
  st.attempts = 0;
  ++st.op_seq;
  if (st.ops.front().create) return create_record(self);
  if (!st.current || st.stale || st.ops.front().reconcile) return read_record(self);
  attempt(self);
}

void enqueue(session_ptr self, record_op op) {
  self->state.ops.push_back(std::move(op));
  run_next(self);
}

op_result not_member(const session_state& st, const std::string& client_id) {
  return op_result::fail(error_code::not_in_session, "client " + client_id + " is not in session '" + st.id + "'");
}

// -- operations ----------------------------------------------------------------------------------------------

/// Adds `m` to the record (as a member on this node) and, once written, to the members here.
caf::result<session_joined> join(session_ptr self, member m, bool create, json metadata) {
  auto rp = self->make_response_promise<session_joined>();
  record_op op;
  op.create = create;
  const auto cid = m.client_id;
  op.change = [self, cid, create, metadata = std::move(metadata)](record& r) -> std::variant<bool, op_result> {
    auto& st = self->state;
    if (create) r.metadata = metadata.is_object() ? metadata : json::object();
    if (r.find(cid)) return false;
    if (r.members.size() >= st.ctx->config.max_session_members) {
      st.ctx->metrics->limits_exceeded.add("maxSessionMembers");
      return op_result::fail(error_code::invalid_message,
                             "session '" + st.id + "' is full (maxSessionMembers is " +
                                 std::to_string(st.ctx->config.max_session_members) + ")");
    }
    r.add(cid, node_of(st));
    return true;
  };
  op.done = [self, rp, m = std::move(m)]() mutable {
    auto& st = self->state;
    if (st.current) st.locals[m.client_id] = m;
    rp.deliver(session_joined{op_result::ok(describe(*st.current)), caf::actor_cast<session_actor>(self)});
  };
  op.failed = [rp](op_result why) mutable { rp.deliver(session_joined{std::move(why), {}}); };
  enqueue(self, std::move(op));
  return rp;
}

/// A member here is gone. Its leave is announced here now if the record lost it earlier without one.
void gone_here(session_ptr self, const std::string& client_id) {
  auto& st = self->state;
  st.locals.erase(client_id);
  st.leaving.erase(client_id);
  if (st.unannounced.erase(client_id)) announce_here(self, "leave", client_id);
}

/// Removes a member here from the record; `rp` (when set) gets the answer.
void leave(session_ptr self, const std::string& client_id, std::optional<caf::typed_response_promise<op_result>> rp) {
  self->state.leaving.insert(client_id);
  record_op op;
  op.change = [client_id](record& r) -> std::variant<bool, op_result> { return r.remove(client_id); };
  op.done = [self, client_id, rp]() mutable {
    gone_here(self, client_id);
    if (rp) rp->deliver(op_result::ok());
  };
  op.failed = [self, client_id, rp](op_result why) mutable {
    // The record is gone or unreachable: the member is not here either way (a reconcile drops it from the
    // record once the bus is back).
    gone_here(self, client_id);
    if (rp) rp->deliver(why.error == error_code::session_not_found ? op_result::ok() : std::move(why));
  };
  enqueue(self, std::move(op));
}

caf::result<op_result> patch(session_ptr self, const std::string& client_id, const json& patch) {
  auto& st = self->state;
  if (!st.locals.count(client_id)) return not_member(st, client_id);
  auto rp = self->make_response_promise<op_result>();
  record_op op;
  op.change = [self, patch](record& r) -> std::variant<bool, op_result> {
    auto& s = self->state;
    // Patched on a copy: a patch that would cross maxSessionMetadataBytes is refused whole.
    json next = r.metadata;
    protocol::apply_merge_patch(next, patch);
    if (auto too_big = protocol::metadata_over_limit(next, s.ctx->config.max_session_metadata_bytes)) {
      s.ctx->metrics->limits_exceeded.add("maxSessionMetadataBytes");
      return op_result::fail(error_code::invalid_message, *too_big);
    }
    r.metadata = std::move(next);
    return true;
  };
  op.done = [self, rp, client_id]() mutable {
    auto& s = self->state;
    json body = describe(*s.current);
    broadcast(self, protocol::make_event("session_info", {{"session", body}}, s.id), client_id);
    rp.deliver(op_result::ok(std::move(body)));
  };
  op.failed = [rp](op_result why) mutable { rp.deliver(std::move(why)); };
  enqueue(self, std::move(op));
  return rp;
}

/// Members on a node that died leave the record (every surviving node tries; compare-and-set keeps it once).
/// This node's own id: the session actor that held them crashed.
void drop_node(session_ptr self, const std::string& node_id) {
  record_op op;
  op.change = [node_id](record& r) -> std::variant<bool, op_result> { return r.remove_node(node_id) > 0; };
  enqueue(self, std::move(op));
}

/// Puts the record back in line with the members here (see the top of this file). One at a time; a failure
/// (the bus not back yet) is retried until it succeeds or nobody is left here.
void queue_reconcile(session_ptr self) {
  auto& st = self->state;
  if (st.reconcile_queued || st.retry_scheduled || !cluster_of(st).shared) return;
  st.reconcile_queued = true;
  record_op op;
  op.reconcile = true;
  auto wrote = std::make_shared<bool>(false);
  op.change = [self, wrote](record& r) -> std::variant<bool, op_result> {
    auto& s = self->state;
    bool changed = false;
    std::vector<std::string> stale;
    for (const auto& m : r.members)
      if (m.node_id == node_of(s) && (!s.locals.count(m.client_id) || s.leaving.count(m.client_id)))
        stale.push_back(m.client_id);
    for (const auto& cid : stale) changed |= r.remove(cid);
    for (const auto& [cid, _] : s.locals)
      if (!s.leaving.count(cid) && !r.find(cid)) changed |= r.add(cid, node_of(s));
    *wrote = changed;
    return changed;  // (a record made again from the copy is written even when this changed nothing)
  };
  op.done = [self, wrote] {
    auto& s = self->state;
    s.reconcile_queued = false;
    s.retry_delay = resync_retry;
    if (*wrote) s.ctx->metrics->cluster_resyncs.fetch_add(1);
  };
  op.failed = [self](op_result why) {
    auto& s = self->state;
    s.reconcile_queued = false;
    const bool ours_listed = s.current && !matches_locals(s, *s.current);
    if ((s.locals.empty() && !ours_listed) || s.retry_scheduled) return;
    spdlog::warn("session {}: reconcile failed ({}), again in {} ms", s.id, why.message, s.retry_delay.count());
    s.retry_scheduled = true;
    self->delayed_send(self, s.retry_delay, resync_atom_v);
    s.retry_delay = std::min(s.retry_delay * 2, max_retry_delay);
  };
  enqueue(self, std::move(op));
}

op_result relay(session_ptr self, const std::string& client_id, protocol::envelope msg, steady_time received) {
  auto& st = self->state;
  if (!st.locals.count(client_id)) return not_member(st, client_id);
  msg.payload["from"] = client_id;
  msg.reply_to.reset();
  const auto n = broadcast(self, msg, client_id);
  if (received != steady_time{})
    st.ctx->metrics->broadcast_latency.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - received).count());
  return op_result::ok({{"delivered", n}});
}

/// A record another node wrote, from the supervisor's watch of the bucket.
void on_record_changed(session_ptr self, const cluster::kv_entry& e) {
  auto& st = self->state;
  if (e.deleted) {
    // Removed by a node that read a record without our members (written while ours were cut off).
    if (!st.locals.empty()) queue_reconcile(self);
    return;
  }
  auto rec = cluster::decode_session_record(e.value, st.ctx->config.max_json_depth);
  if (!rec || rec->id != st.id) {
    st.ctx->metrics->cluster_rejected.fetch_add(1);
    return;
  }
  adopt(self, std::move(*rec), e.revision);
}

}  // namespace

session_actor::behavior_type session_behavior(session_ptr self, context_ptr ctx, std::string id) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.id = std::move(id);
  st.ctx->metrics->sessions.fetch_add(1);
  self->attach_functor([metrics = st.ctx->metrics] { metrics->sessions.fetch_sub(1); });
  const auto& cl = cluster_of(st);
  if (cl.shared)
    // Subscribed before any join is written, so no broadcast sent after a member joined can miss it.
    st.fanout = cl.bus->subscribe(cl.session_subject(st.id), [me = caf::actor_cast<session_actor>(self)](
                                                               cluster::message m) {
      caf::anon_send(me, fanout_atom_v, std::move(m.data));
    });
  return {
      [self](create_atom, json& metadata, member& m) { return join(self, std::move(m), true, std::move(metadata)); },
      [self](join_atom, member& m) { return join(self, std::move(m), false, json::object()); },
      [self](leave_atom, const std::string& client_id) -> caf::result<op_result> {
        if (!self->state.locals.count(client_id)) return not_member(self->state, client_id);
        auto rp = self->make_response_promise<op_result>();
        leave(self, client_id, rp);
        return rp;
      },
      [self](patch_atom, const std::string& client_id, const json& p) { return patch(self, client_id, p); },
      [self](broadcast_atom, const std::string& client_id, protocol::envelope& msg, steady_time received) {
        return relay(self, client_id, std::move(msg), received);
      },
      [self](presence_update_atom, const std::string& client_id, const json& fields) {
        auto& s = self->state;
        if (!s.locals.count(client_id)) return;
        json payload = fields;
        payload["event"] = "update";
        payload["clientId"] = client_id;
        payload["sessionId"] = s.id;
        broadcast(self, protocol::make_event("presence", std::move(payload), s.id), client_id);
      },
      [self](client_gone_atom, const std::string& client_id) {
        if (self->state.locals.count(client_id)) leave(self, client_id, std::nullopt);
      },
      [self](node_lost_atom, const std::string& node_id) { drop_node(self, node_id); },
      [self](resync_atom) {
        // After a reconnect the bucket may be a new one whose revisions start again from 1: every op reads first.
        auto& s = self->state;
        s.retry_scheduled = false;
        s.stale = true;
        queue_reconcile(self);
      },
      [self](kv_read_atom, std::uint64_t seq, cluster::result<cluster::kv_entry>& r) {
        if (self->state.running && seq == self->state.op_seq) read_done(self, std::move(r));
      },
      [self](kv_written_atom, std::uint64_t seq, cluster::result<std::uint64_t>& r) {
        if (self->state.running && seq == self->state.op_seq) write_done(self, std::move(r));
      },
      [self](record_changed_atom, const cluster::kv_entry& e) { on_record_changed(self, e); },
      [self](fanout_atom, const std::string& data) { on_fanout(self, data); },
      [self](info_atom) {
        const auto& s = self->state;
        return s.current ? describe(*s.current) : session_info{s.id, {}, json::object(), 0};
      },
      [self](status_atom) {
        const auto& s = self->state;
        return actor_status{s.id, self->mailbox().size(), session_status{s.locals.size(), s.broadcasts}};
      },
  };
}

session_actor spawn_session(caf::actor_system& sys, context_ptr ctx, std::string session_id) {
  return sys.spawn(session_behavior, std::move(ctx), std::move(session_id));
}

}  // namespace sb::actors

#include "actors/admin_commands.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <caf/all.hpp>
#include <memory>
#include <mutex>
#include <optional>

#include "protocol/json_bounds.hpp"

namespace sb::actors {

namespace {

using json = nlohmann::json;
using verb = protocol::admin_command::verb;
using asker = caf::event_based_actor*;
using respond_fn = std::function<void(json)>;

/// The subject on which a node answers the admin commands other nodes pass on for ids they do not hold.
std::string node_admin_subject(const cluster_context& cl, const std::string& node_id) {
  return cl.name + ".node." + node_id + ".admin";
}

/// The command as another node's admin subject takes it.
json remote_form(const protocol::admin_command& c) {
  json j = {{"cmd", c.what == verb::kick ? "kick" : c.what == verb::client ? "client" : "session"}, {"id", c.id}};
  if (c.what == verb::kick && !c.reason.empty()) j["reason"] = c.reason;
  return j;
}

/// For an id this node does not hold: asks every other node; the first that holds it answers, else
/// `not_here` is the answer.
void ask_other_nodes(asker self, const context_ptr& ctx, const protocol::admin_command& c, json not_here,
                     const respond_fn& respond) {
  if (!ctx->cluster || !ctx->cluster->shared || !ctx->members) return respond(std::move(not_here));
  self->request(ctx->members, status_ask_timeout, cluster_view_atom_v)
      .then(
          [ctx, c, not_here, respond](cluster_view& view) {
            std::vector<std::string> others;
            for (const auto& m : view.members)
              if (!m.self) others.push_back(m.node_id);
            if (others.empty()) return respond(not_here);
            struct collector {
              std::mutex m;
              std::size_t remaining;
              bool answered = false;
              json not_here;
              respond_fn respond;
            };
            auto acc = std::make_shared<collector>();
            acc->remaining = others.size();
            acc->not_here = not_here;
            acc->respond = respond;
            const auto body = remote_form(c).dump();
            for (const auto& node : others)
              ctx->cluster->bus->request(
                  node_admin_subject(*ctx->cluster, node), body, status_ask_timeout,
                  [acc](cluster::result<std::string> r) {
                    std::unique_lock lock(acc->m);
                    --acc->remaining;
                    if (acc->answered) return;
                    if (auto* text = cluster::value_of(r)) {
                      auto parsed = protocol::parse_untrusted_json(*text);
                      if (parsed.ok() && parsed.value.is_object() && parsed.value.value("ok", false)) {
                        acc->answered = true;
                        lock.unlock();
                        return acc->respond(std::move(parsed.value));
                      }
                    }
                    if (acc->remaining == 0) {
                      acc->answered = true;
                      lock.unlock();
                      acc->respond(acc->not_here);
                    }
                  });
          },
          [respond, not_here](caf::error&) { respond(not_here); });
}

json stats(const context_ptr& ctx, const node_stats& n) {
  const auto& m = *ctx->metrics;
  auto total = [](const transport::labeled_counter& c) {
    std::uint64_t sum = 0;
    for (const auto& [_, v] : c.snapshot()) sum += v;
    return sum;
  };
  return {{"nodeId", ctx->node_id},
          {"uptimeMs", std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                             ctx->started)
                           .count()},
          {"draining", ctx->server_state->draining.load()},
          {"connections", m.connections.load()},
          {"clients", n.clients},
          {"authenticatedClients", n.authenticated_clients},
          {"sessions", n.sessions},
          {"agents", m.agents.load()},
          {"agentsOnline", m.agents_online.load()},
          {"messagesIn", total(m.messages_in)},
          {"messagesOut", total(m.messages_out)},
          {"errors", total(m.errors)},
          {"slowConsumersDropped", m.slow_consumers_dropped.load()},
          {"routes", m.routes_total.load()}};
}

/// `stats` of this node and, on a clustered node, the cluster's total: connections and online agents summed
/// over every member's last heartbeat, sessions counted once each from the sessions bucket.
void with_cluster_total(asker self, const context_ptr& ctx, const node_stats& n, const respond_fn& respond) {
  auto local = stats(ctx, n);
  if (!ctx->cluster || !ctx->cluster->shared || !ctx->members) return respond(admin_ok(std::move(local)));
  self->request(ctx->members, status_ask_timeout, cluster_view_atom_v)
      .then(
          [respond, local, sessions = n.cluster_sessions](cluster_view& view) mutable {
            std::uint64_t clients = 0, agents = 0;
            for (const auto& m : view.members) {
              clients += m.clients;
              agents += m.agents;
            }
            local["cluster"] = {{"nodes", view.members.size()}, {"connections", clients}, {"sessions", sessions},
                                {"agentsOnline", agents}, {"link", view.link}};
            respond(admin_ok(std::move(local)));
          },
          [respond, local](caf::error&) mutable {
            local["cluster"] = nullptr;  // the members actor did not answer: no total rather than a wrong one
            respond(admin_ok(std::move(local)));
          });
}

/// Renders a page of info answers: sorted by id, cut short at page_byte_budget, oversized entries listed by
/// id and size alone; `next` when more follow.
template <class Info>
json render_page(answers<Info> list, const char* key, const char* id_key, std::size_t total,
                 std::optional<std::string> more) {
  json entries = json::array();
  std::size_t bytes = 0;
  auto next = std::move(more);
  for (auto& [id, info] : list) {
    if (!info) continue;  // gone or silent: left out of its page without ending the listing
    json e = *info;
    auto size = e.dump(-1, ' ', false, json::error_handler_t::replace).size();
    if (size > max_entry_bytes) {
      e = {{id_key, id}, {"truncated", true}, {"bytes", size}};
      size = e.dump().size();
    }
    if (!entries.empty() && bytes + size > page_byte_budget) {
      next = entries.back()[id_key].template get<std::string>();
      break;
    }
    bytes += size;
    entries.push_back(std::move(e));
  }
  json out = {{key, std::move(entries)}, {"total", total}};
  if (next) out["next"] = *next;
  return out;
}

template <class Handle, class Info>
void page_infos(asker self, const index_page<Handle>& page, const char* key, const char* id_key,
                const respond_fn& respond) {
  fan_in<Info>(
      self, page.entries,
      [respond, key, id_key, total = page.total, more = page.more](answers<Info> list) {
        respond(admin_ok(render_page(std::move(list), key, id_key, total, more)));
      },
      info_atom_v);
}

template <class Handle, class Info>
void one_info(asker self, const index_page<Handle>& found, const char* what, const std::string& id,
              const respond_fn& respond, const std::function<void(json)>& elsewhere) {
  if (found.entries.empty()) return elsewhere(admin_fail(std::string("no ") + what + " '" + id + "'"));
  self->request(found.entries.front().second, status_ask_timeout, info_atom_v)
      .then([respond, what](Info& info) { respond(admin_ok({{what, info}})); },
            [respond, what](caf::error&) { respond(admin_fail(std::string(what) + " did not answer")); });
}

/// `actors`: the supervisor, every client, every session and the registry, each asked live.
void list_actors(asker self, const context_ptr& ctx, const respond_fn& respond) {
  const auto sup = ctx->supervisor;
  const auto everything = std::numeric_limits<std::uint64_t>::max();
  auto targets = std::make_shared<std::vector<std::pair<std::string, status_actor>>>();
  targets->emplace_back(ctx->node_id, sup);
  self->request(sup, status_ask_timeout, client_page_atom_v, std::string{}, everything)
      .then(
          [=](client_page& clients) {
            for (auto& [id, c] : clients.entries) targets->emplace_back(id, c);
            self->request(sup, status_ask_timeout, session_page_atom_v, std::string{}, everything)
                .then(
                    [=](session_page& sessions) {
                      for (auto& [id, s] : sessions.entries) targets->emplace_back(id, s);
                      self->request(sup, status_ask_timeout, registry_atom_v)
                          .then(
                              [=](registry_actor& registry) {
                                targets->emplace_back("agents", registry);
                                if (ctx->members) targets->emplace_back("cluster", ctx->members);
                                fan_in<actor_status>(
                                    self, *targets,
                                    [respond](answers<actor_status> list) {
                                      json out = json::array();
                                      for (auto& [id, status] : list)
                                        out.push_back(status ? json(*status)
                                                             : json{{"kind", "unknown"},
                                                                    {"id", id},
                                                                    {"mailbox", nullptr},
                                                                    {"state", "unresponsive"}});
                                      respond(admin_ok({{"actors", std::move(out)}}));
                                    },
                                    status_atom_v);
                              },
                              [respond](caf::error&) { respond(admin_fail("node did not answer")); });
                    },
                    [respond](caf::error&) { respond(admin_fail("node did not answer")); });
          },
          [respond](caf::error&) { respond(admin_fail("node did not answer")); });
}

void list_agents(asker self, const context_ptr& ctx, const protocol::admin_command& c, const respond_fn& respond) {
  self->request(ctx->supervisor, status_ask_timeout, registry_atom_v)
      .then(
          [self, c, respond](registry_actor& registry) {
            self->request(registry, status_ask_timeout, agent_page_atom_v, c.cursor, c.limit)
                .then([respond](agent_page& page) { respond(admin_ok(page)); },
                      [respond](caf::error&) { respond(admin_fail("agent registry did not answer")); });
          },
          [respond](caf::error&) { respond(admin_fail("node did not answer")); });
}

json set_log_level(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") return admin_fail("unknown log level '" + level + "'");
  spdlog::set_level(parsed);
  return admin_ok({{"level", level}});
}


void run(asker self, const context_ptr& ctx, const protocol::admin_command& c, const respond_fn& respond,
         bool this_node_only) {
  const auto sup = ctx->supervisor;
  // kick, client and session name ids that may be held by another node.
  auto elsewhere = [self, ctx, c, respond, this_node_only](json not_here) {
    if (this_node_only) return respond(std::move(not_here));
    ask_other_nodes(self, ctx, c, std::move(not_here), respond);
  };
  auto silent = [respond](caf::error& err) { respond(admin_fail("node did not answer: " + to_string(err))); };
  switch (c.what) {
    case verb::stats:
      self->request(sup, status_ask_timeout, node_stats_atom_v)
          .then([self, ctx, respond](node_stats& n) { with_cluster_total(self, ctx, n, respond); }, silent);
      return;
    case verb::actors:
      return list_actors(self, ctx, respond);
    case verb::clients:
      self->request(sup, status_ask_timeout, client_page_atom_v, c.cursor, c.limit)
          .then([self, respond](client_page& page) {
                  page_infos<client_actor, client_info>(self, page, "clients", "clientId", respond);
                },
                silent);
      return;
    case verb::client:
      self->request(sup, status_ask_timeout, find_client_atom_v, c.id)
          .then([self, respond, elsewhere, id = c.id](client_page& found) {
                  one_info<client_actor, client_info>(self, found, "client", id, respond, elsewhere);
                },
                silent);
      return;
    case verb::sessions:
      self->request(sup, status_ask_timeout, session_page_atom_v, c.cursor, c.limit)
          .then([self, respond](session_page& page) {
                  page_infos<session_actor, session_info>(self, page, "sessions", "id", respond);
                },
                silent);
      return;
    case verb::session:
      self->request(sup, status_ask_timeout, find_session_atom_v, c.id)
          .then([self, respond, elsewhere, id = c.id](session_page& found) {
                  one_info<session_actor, session_info>(self, found, "session", id, respond, elsewhere);
                },
                silent);
      return;
    case verb::agents:
      return list_agents(self, ctx, c, respond);
    case verb::kick:
      self->request(sup, status_ask_timeout, kick_atom_v, c.id, c.reason)
          .then([respond, elsewhere, id = c.id](bool kicked) {
                  if (kicked) return respond(admin_ok({{"kicked", id}}));
                  elsewhere(admin_fail("no client '" + id + "'"));
                },
                silent);
      return;
    case verb::drain:
      self->request(sup, status_ask_timeout, drain_atom_v)
          .then([respond](std::size_t clients) { respond(admin_ok({{"draining", true}, {"clients", clients}})); },
                silent);
      return;
    case verb::log:
      return respond(set_log_level(c.level));
    case verb::cluster:
      self->request(ctx->members, status_ask_timeout, cluster_view_atom_v)
          .then([respond](cluster_view& view) { respond(admin_ok(view)); }, silent);
      return;
    case verb::tunnel:
    case verb::ports_add:
    case verb::ports_remove:
      return respond(admin_fail("no tunnel is configured on this node"));
    case verb::tunnels:
      return respond(admin_fail("unknown command 'tunnels': this is a gateway, not a relay"));
  }
}

}  // namespace

json admin_ok(json result) { return {{"ok", true}, {"result", std::move(result)}}; }
json admin_fail(std::string message) { return {{"ok", false}, {"error", std::move(message)}}; }

void run_gateway_admin(caf::actor_system& sys, context_ptr ctx, protocol::admin_command command,
                       std::function<void(json)> respond, bool this_node_only) {
  // A short-lived actor bridges the socket thread to the actors without blocking either; it ends once its
  // last request is answered.
  sys.spawn([ctx = std::move(ctx), command = std::move(command), respond = std::move(respond),
             this_node_only](asker self) { run(self, ctx, command, respond, this_node_only); });
}

cluster::subscription_ptr serve_node_admin(caf::actor_system& sys, context_ptr ctx, hand_off_fn hand_off) {
  if (!ctx->cluster || !ctx->cluster->shared) return nullptr;
  const auto& cl = *ctx->cluster;
  return cl.bus->subscribe(node_admin_subject(cl, ctx->node_id), [&sys, ctx, bus = cl.bus, hand_off = std::move(hand_off)](cluster::message m) {
    if (m.reply_to.empty()) return;
    auto answer = [bus, reply = m.reply_to](json j) { bus->publish(reply, j.dump(-1, ' ', false, json::error_handler_t::replace)); };
    auto request = protocol::parse_untrusted_json(m.data, 8);
    if (!request.ok() || m.data.size() > 64 * 1024) return answer(admin_fail("malformed request"));
    auto parsed = protocol::parse_admin_command(request.value);
    if (auto* error = std::get_if<std::string>(&parsed)) return answer(admin_fail(*error));
    auto& command = std::get<protocol::admin_command>(parsed);
    // Only the lookups and kick that name one id: nothing else is run for another node.
    if (command.what != verb::kick && command.what != verb::client && command.what != verb::session)
      return answer(admin_fail("not a command other nodes may pass on"));
    hand_off([&sys, ctx, command = std::move(command), answer]() mutable {
      run_gateway_admin(sys, ctx, std::move(command), answer, true);
    });
  });
}

}  // namespace sb::actors

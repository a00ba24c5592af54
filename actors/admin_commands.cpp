#include "actors/admin_commands.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <caf/all.hpp>
#include <memory>
#include <optional>

namespace sb::actors {

namespace {

using json = nlohmann::json;
using verb = protocol::admin_command::verb;
using asker = caf::event_based_actor*;
using respond_fn = std::function<void(json)>;

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
              const respond_fn& respond) {
  if (found.entries.empty()) return respond(admin_fail(std::string("no ") + what + " '" + id + "'"));
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

json cluster(const context_ptr& ctx) {
  return admin_ok({{"members", json::array({{{"nodeId", ctx->node_id},
                                             {"self", true},
                                             {"state", ctx->server_state->draining.load() ? "draining" : "alive"}}})}});
}

void run(asker self, const context_ptr& ctx, const protocol::admin_command& c, const respond_fn& respond) {
  const auto sup = ctx->supervisor;
  auto silent = [respond](caf::error& err) { respond(admin_fail("node did not answer: " + to_string(err))); };
  switch (c.what) {
    case verb::stats:
      self->request(sup, status_ask_timeout, node_stats_atom_v)
          .then([ctx, respond](node_stats& n) { respond(admin_ok(stats(ctx, n))); }, silent);
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
          .then([self, respond, id = c.id](client_page& found) {
                  one_info<client_actor, client_info>(self, found, "client", id, respond);
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
          .then([self, respond, id = c.id](session_page& found) {
                  one_info<session_actor, session_info>(self, found, "session", id, respond);
                },
                silent);
      return;
    case verb::agents:
      return list_agents(self, ctx, c, respond);
    case verb::kick:
      self->request(sup, status_ask_timeout, kick_atom_v, c.id, c.reason)
          .then([respond, id = c.id](bool kicked) {
                  respond(kicked ? admin_ok({{"kicked", id}}) : admin_fail("no client '" + id + "'"));
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
      return respond(cluster(ctx));
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
                       std::function<void(json)> respond) {
  // A short-lived actor bridges the socket thread to the actors without blocking either; it ends once its
  // last request is answered.
  sys.spawn([ctx = std::move(ctx), command = std::move(command), respond = std::move(respond)](asker self) {
    run(self, ctx, command, respond);
  });
}

}  // namespace sb::actors

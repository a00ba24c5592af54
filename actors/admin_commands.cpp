// Admin socket commands (PROTOCOL.md "Admin socket"). Live state is asked from the actors that own it, never
// read from a separate bookkeeping copy.
#include "actors/admin_commands.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <caf/all.hpp>
#include <optional>
#include <variant>

#include "actors/supervisor.hpp"
#include "actors/type_ids.hpp"

namespace sb::actors {

namespace {

constexpr auto ask_timeout = std::chrono::seconds(3);

json ok(json result) { return {{"ok", true}, {"result", std::move(result)}}; }
json fail(std::string message) { return {{"ok", false}, {"error", std::move(message)}}; }

/// Asks every target with `atom` and hands the answers to `done`; a target that does not answer in time is
/// reported through `on_silent` instead of holding up the rest.
template <class Atom>
void fan_in(supervisor_actor* self, std::vector<std::pair<std::string, caf::actor>> targets, Atom atom,
            std::function<json(const std::string&)> on_silent, std::function<void(json)> done) {
  struct collector {
    std::size_t remaining;
    json results = json::array();
    std::function<void(json)> done;
  };
  auto acc = std::make_shared<collector>(collector{targets.size(), json::array(), std::move(done)});
  if (targets.empty()) return acc->done(std::move(acc->results));
  for (auto& [id, target] : targets) {
    auto finish_one = [acc](json item) {
      if (!item.is_null()) acc->results.push_back(std::move(item));
      if (--acc->remaining == 0) acc->done(std::move(acc->results));
    };
    self->request(target, ask_timeout, atom)
        .then([finish_one](json& answer) { finish_one(std::move(answer)); },
              [finish_one, on_silent, id = id](caf::error&) {
                finish_one(on_silent ? on_silent(id) : json());
              });
  }
}

std::vector<std::pair<std::string, caf::actor>> entries(const std::map<std::string, caf::actor>& index) {
  return {index.begin(), index.end()};
}

std::optional<std::string> string_arg(const json& request, const char* key) {
  auto it = request.find(key);
  if (it == request.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

caf::result<json> ask_one(supervisor_actor* self, const std::map<std::string, caf::actor>& index,
                          const json& request, const char* what, const std::string& result_key) {
  auto id = string_arg(request, "id");
  auto rp = self->make_response_promise<json>();
  if (!id) return rp.deliver(fail(std::string("'") + what + "' needs a string 'id'"));
  auto it = index.find(*id);
  if (it == index.end()) return rp.deliver(fail(std::string("no ") + what + " '" + *id + "'"));
  self->request(it->second, ask_timeout, info_atom_v)
      .then(
          [rp, result_key](json& info) mutable {
            rp.deliver(ok({{result_key, std::move(info)}}));
          },
          [rp, what](caf::error&) mutable { rp.deliver(fail(std::string(what) + " did not answer")); });
  return rp;
}

caf::result<json> list_actors(supervisor_actor* self) {
  auto& st = self->state;
  auto targets = entries(st.clients);
  for (const auto& s : st.sessions) targets.push_back(s);
  targets.emplace_back("agents", st.ctx->registry);
  json own = {{"kind", "supervisor"},
              {"id", st.ctx->node_id},
              {"mailbox", self->mailbox().size()},
              {"state",
               {{"clients", st.clients.size()},
                {"sessions", st.sessions.size()},
                {"draining", st.ctx->server_state->draining.load()}}}};
  auto rp = self->make_response_promise<json>();
  fan_in(
      self, std::move(targets), status_atom_v,
      [](const std::string& id) -> json {
        return {{"kind", "unknown"}, {"id", id}, {"mailbox", nullptr}, {"state", "unresponsive"}};
      },
      [rp, own](json list) mutable {
        list.insert(list.begin(), own);
        rp.deliver(ok({{"actors", std::move(list)}}));
      });
  return rp;
}

json stats(supervisor_actor* self) {
  const auto& st = self->state;
  const auto& m = *st.ctx->metrics;
  auto total = [](const transport::labeled_counter& c) {
    std::uint64_t n = 0;
    for (const auto& [_, v] : c.snapshot()) n += v;
    return n;
  };
  return ok({{"nodeId", st.ctx->node_id},
             {"uptimeMs", std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - st.ctx->started)
                              .count()},
             {"draining", st.ctx->server_state->draining.load()},
             {"connections", m.connections.load()},
             {"clients", st.clients.size()},
             {"authenticatedClients", st.presence.size()},
             {"sessions", st.sessions.size()},
             {"agents", m.agents.load()},
             {"agentsOnline", m.agents_online.load()},
             {"messagesIn", total(m.messages_in)},
             {"messagesOut", total(m.messages_out)},
             {"errors", total(m.errors)},
             {"slowConsumersDropped", m.slow_consumers_dropped.load()},
             {"routes", m.routes_total.load()}});
}

}  // namespace

json drain_clients(supervisor_actor* self) {
  auto& st = self->state;
  st.ctx->server_state->draining.store(true);
  for (const auto& [_, c] : st.clients) self->send(c, drain_atom_v);
  spdlog::info("draining: closing {} clients with 1001", st.clients.size());
  return ok({{"draining", true}, {"clients", st.clients.size()}});
}

namespace {

json kick(supervisor_actor* self, const json& request) {
  auto id = string_arg(request, "id");
  if (!id) return fail("'kick' needs a string 'id'");
  auto it = self->state.clients.find(*id);
  if (it == self->state.clients.end()) return fail("no client '" + *id + "'");
  self->send(it->second, kick_atom_v, string_arg(request, "reason").value_or("kicked by operator"));
  return ok({{"kicked", *id}});
}

json set_log_level(const json& request) {
  auto level = string_arg(request, "level");
  if (!level) return fail("'log' needs a string 'level'");
  auto parsed = spdlog::level::from_str(*level);
  if (parsed == spdlog::level::off && *level != "off") return fail("unknown log level '" + *level + "'");
  spdlog::set_level(parsed);
  return ok({{"level", *level}});
}

/// Answers at once. Returning a json straight into caf::result<json> would brace-wrap it into an array.
caf::result<json> now(supervisor_actor* self, json answer) {
  auto rp = self->make_response_promise<json>();
  rp.deliver(std::move(answer));
  return rp;
}

struct page_request {
  std::string cursor;
  std::uint64_t limit = default_page_limit;
};

std::variant<page_request, std::string> page_args(const json& request) {
  page_request page;
  if (auto it = request.find("cursor"); it != request.end() && !it->is_null()) {
    if (!it->is_string()) return std::string("'cursor' must be a string (the 'next' of the page before)");
    page.cursor = it->get<std::string>();
  }
  if (auto it = request.find("limit"); it != request.end() && !it->is_null()) {
    if (!it->is_number_unsigned() || it->get<std::uint64_t>() < 1 ||
        it->get<std::uint64_t>() > max_page_limit)
      return "'limit' must be an integer from 1 to " + std::to_string(max_page_limit);
    page.limit = it->get<std::uint64_t>();
  }
  return page;
}

/// A page of the actors in `index` (ordered by id), each asked live: up to `limit` after `cursor`, sorted by
/// `id_key` and cut short at page_byte_budget; `next` when more follow. An actor that does not answer in time
/// is left out of its page without ending the listing.
caf::result<json> collect_page(supervisor_actor* self, const std::map<std::string, caf::actor>& index,
                               const json& request, const std::string& key, const std::string& id_key) {
  auto args = page_args(request);
  if (auto* err = std::get_if<std::string>(&args)) return now(self, fail(*err));
  const auto& page = std::get<page_request>(args);
  std::vector<std::pair<std::string, caf::actor>> targets;
  auto it = page.cursor.empty() ? index.begin() : index.upper_bound(page.cursor);
  for (; it != index.end() && targets.size() < page.limit; ++it) targets.emplace_back(*it);
  std::optional<std::string> more;
  if (it != index.end()) more = targets.back().first;
  const auto total = index.size();
  auto rp = self->make_response_promise<json>();
  fan_in(self, std::move(targets), info_atom_v, nullptr, [rp, key, id_key, more, total](json list) mutable {
    auto id_of = [&id_key](const json& e) { return e.is_object() ? e.value(id_key, "") : ""; };
    std::sort(list.begin(), list.end(),
              [&id_of](const json& a, const json& b) { return id_of(a) < id_of(b); });
    json entries = json::array();
    std::size_t bytes = 0;
    auto next = more;
    for (auto& e : list) {
      auto size = e.dump(-1, ' ', false, json::error_handler_t::replace).size();
      if (size > max_entry_bytes) {
        e = {{id_key, id_of(e)}, {"truncated", true}, {"bytes", size}};
        size = e.dump().size();
      }
      if (!entries.empty() && bytes + size > page_byte_budget) {
        next = id_of(entries.back());
        break;
      }
      bytes += size;
      entries.push_back(std::move(e));
    }
    json out = {{key, std::move(entries)}, {"total", total}};
    if (next) out["next"] = *next;
    rp.deliver(ok(std::move(out)));
  });
  return rp;
}

caf::result<json> list_agents(supervisor_actor* self, const json& request) {
  auto args = page_args(request);
  if (auto* err = std::get_if<std::string>(&args)) return now(self, fail(*err));
  const auto& page = std::get<page_request>(args);
  auto rp = self->make_response_promise<json>();
  self->request(self->state.ctx->registry, ask_timeout, list_atom_v, page.cursor, page.limit)
      .then([rp](json& result) mutable { rp.deliver(ok(std::move(result))); },
            [rp](caf::error&) mutable { rp.deliver(fail("agent registry did not answer")); });
  return rp;
}

}  // namespace

caf::result<json> run_admin_command(supervisor_actor* self, const json& request) {
  const auto cmd = string_arg(request, "cmd").value_or("");
  auto& st = self->state;
  if (cmd == "stats") return now(self, stats(self));
  if (cmd == "actors") return list_actors(self);
  if (cmd == "clients") return collect_page(self, st.clients, request, "clients", "clientId");
  if (cmd == "client") return ask_one(self, st.clients, request, "client", "client");
  if (cmd == "sessions") return collect_page(self, st.sessions, request, "sessions", "id");
  if (cmd == "session") return ask_one(self, st.sessions, request, "session", "session");
  if (cmd == "agents") return list_agents(self, request);
  if (cmd == "kick") return now(self, kick(self, request));
  if (cmd == "drain") return now(self, drain_clients(self));
  if (cmd == "log") return now(self, set_log_level(request));
  if (cmd == "cluster")
    return now(
        self,
        ok({{"members",
             json::array({{{"nodeId", st.ctx->node_id},
                           {"self", true},
                           {"state", st.ctx->server_state->draining.load() ? "draining" : "alive"}}})}}));
  if (cmd == "tunnel" || cmd == "ports.add" || cmd == "ports.remove")
    return now(self, fail("no tunnel is configured on this node"));
  return now(self, fail("unknown command '" + cmd + "'"));
}

}  // namespace sb::actors

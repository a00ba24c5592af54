// The gateway's actors on CAF's deterministic test coordinator: the supervisor's cleanup and restarts,
// session cleanup, and the registry's routing and route timeouts. Messages move only when the test delivers
// them and timers fire only when it triggers them, so each test says exactly what happens in which order.
#define CAF_SUITE actors.gateway
#include "actor_fixture.hpp"

using namespace sb;
using namespace sb::actors;
using sb::test::gateway_actors_fixture;
using json = nlohmann::json;

namespace {

std::string message(const std::string& type, const std::string& id, json payload,
                    std::optional<std::string> session = std::nullopt) {
  json m = {{"type", type}, {"id", id}, {"payload", std::move(payload)}};
  if (session) m["sessionId"] = *session;
  return m.dump();
}

/// The reply to message `id` among what a client was sent.
std::optional<protocol::envelope> reply_to(const test::recording_sink& sink, const std::string& id) {
  for (auto& f : sink.frames())
    if (f.reply_to == id) return f;
  return std::nullopt;
}

/// The type of the reply to message `id`, by value (a reference into a temporary would dangle in a check).
std::string reply_type(const test::recording_sink& sink, const std::string& id) {
  auto r = reply_to(sink, id);
  return r ? r->type : "(no reply)";
}

std::string error_code_of(const std::optional<protocol::envelope>& e) {
  if (!e || e->type != "error") return "(no error)";
  return e->payload.value("code", "");
}

}  // namespace

CAF_TEST_FIXTURE_SCOPE(gateway_actors, gateway_actors_fixture)

CAF_TEST(a registry that dies is restarted and clients reach the new one) {
  auto [client, sink] = connect("c-1");
  auto first = ask<registry_actor>(supervisor, registry_atom_v);
  self->send_exit(first, caf::exit_reason::kill);
  consume_messages();
  auto second = ask<registry_actor>(supervisor, registry_atom_v);
  CAF_CHECK(second);
  CAF_CHECK_NOT_EQUAL(first.address(), second.address());
  auto status = ask<actor_status>(supervisor, status_atom_v);
  CAF_CHECK_EQUAL(std::get<supervisor_status>(status.state).registry_restarts, 1u);
  // The client was told: its next agent operation is answered by the new registry, not with INTERNAL.
  say(client, message("agent_register", "r1", {{"agentId", "a-1"}, {"type", "bot"}, {"capabilities", {"x"}}}));
  auto ack = reply_to(*sink, "r1");
  CAF_REQUIRE(ack.has_value());
  CAF_CHECK_EQUAL(ack->type, "ack");
  // A client that connects later, with the context's first registry, is given the current one too.
  auto [late, late_sink] = connect("c-2");
  say(late, message("agent_register", "r2", {{"agentId", "a-2"}, {"type", "bot"}, {"capabilities", {"x"}}}));
  CAF_CHECK_EQUAL(reply_type(*late_sink, "r2"), "ack");
  auto page = ask<agent_page>(second, agent_page_atom_v, std::string{}, std::uint64_t{10});
  CAF_CHECK_EQUAL(page.total, 2u);
}

CAF_TEST(a session that crashes is dropped and its members are told it is gone) {
  auto [client, sink] = connect("c-1");
  say(client, message("session_create", "s1", {{"sessionId", "room"}}));
  CAF_CHECK_EQUAL(reply_type(*sink, "s1"), "session_info");
  auto found = ask<session_page>(supervisor, find_session_atom_v, std::string("room"));
  CAF_REQUIRE_EQUAL(found.entries.size(), 1u);
  self->send_exit(found.entries.front().second, caf::exit_reason::kill);
  consume_messages();
  CAF_CHECK(ask<session_page>(supervisor, find_session_atom_v, std::string("room")).entries.empty());
  say(client, message("chat", "m1", {{"text", "hi"}}, "room"));
  CAF_CHECK_EQUAL(error_code_of(reply_to(*sink, "m1")), "SESSION_NOT_FOUND");
  // The id is free again.
  say(client, message("session_create", "s2", {{"sessionId", "room"}}));
  CAF_CHECK_EQUAL(reply_type(*sink, "s2"), "session_info");
}

CAF_TEST(a client that crashes leaves its sessions and its agents go offline) {
  auto [alice, alice_sink] = connect("c-alice");
  auto [bob, bob_sink] = connect("c-bob");
  say(alice, message("session_create", "s1", {{"sessionId", "room"}}));
  say(bob, message("session_join", "j1", json::object(), "room"));
  say(alice, message("agent_register", "r1", {{"agentId", "a-1"}, {"type", "bot"}, {"capabilities", {"x"}}}));
  self->send_exit(alice, caf::exit_reason::kill);
  consume_messages();
  bool told = false;
  for (auto& p : bob_sink->of_type("presence"))
    told |= p.payload.value("event", "") == "leave" && p.payload.value("clientId", "") == "c-alice";
  CAF_CHECK(told);
  auto info = ask<session_info>(ask<session_page>(supervisor, find_session_atom_v, std::string("room"))
                                    .entries.front()
                                    .second,
                                info_atom_v);
  CAF_CHECK_EQUAL(info.clients, std::vector<std::string>{"c-bob"});
  auto registry = ask<registry_actor>(supervisor, registry_atom_v);
  auto page = ask<agent_page>(registry, agent_page_atom_v, std::string{}, std::uint64_t{10});
  CAF_REQUIRE_EQUAL(page.agents.size(), 1u);
  CAF_CHECK_EQUAL(page.agents.front().status, "offline");
  CAF_CHECK(ask<client_page>(supervisor, find_client_atom_v, std::string("c-alice")).entries.empty());
}

CAF_TEST(the last member out ends the session) {
  auto [alice, alice_sink] = connect("c-alice");
  auto [bob, bob_sink] = connect("c-bob");
  say(alice, message("session_create", "s1", {{"sessionId", "room"}}));
  say(bob, message("session_join", "j1", json::object(), "room"));
  say(alice, message("session_leave", "l1", json::object(), "room"));
  CAF_CHECK_EQUAL(reply_type(*alice_sink, "l1"), "ack");
  CAF_CHECK_EQUAL(ask<session_page>(supervisor, find_session_atom_v, std::string("room")).entries.size(), 1u);
  self->send(bob, connection_closed_atom_v, std::uint16_t{1000});
  consume_messages();
  CAF_CHECK(ask<session_page>(supervisor, find_session_atom_v, std::string("room")).entries.empty());
}

CAF_TEST(a routed request reaches the least busy agent and its answer the requester) {
  auto [agent1, agent1_sink] = connect("c-agent1");
  auto [agent2, agent2_sink] = connect("c-agent2");
  auto [asker, asker_sink] = connect("c-asker");
  say(agent1, message("agent_register", "r1", {{"agentId", "a-1"}, {"type", "bot"}, {"capabilities", {"x"}}}));
  say(agent2, message("agent_register", "r2", {{"agentId", "a-2"}, {"type", "bot"}, {"capabilities", {"x"}}}));
  // The first request goes to the earliest registered; with one in flight there, the second to the other.
  say(asker, message("route_request", "q1", {{"capability", "x"}, {"request", {{"n", 1}}}}));
  say(asker, message("route_request", "q2", {{"capability", "x"}, {"request", {{"n", 2}}}}));
  auto at1 = agent1_sink->of_type("route_request");
  auto at2 = agent2_sink->of_type("route_request");
  CAF_REQUIRE_EQUAL(at1.size(), 1u);
  CAF_REQUIRE_EQUAL(at2.size(), 1u);
  CAF_CHECK_EQUAL(at1.front().payload["request"]["n"], 1);
  CAF_CHECK_EQUAL(at1.front().payload["from"], "c-asker");
  const auto request_id = at2.front().payload["requestId"].get<std::string>();
  say(agent2, message("route_response", "a1", {{"requestId", request_id}, {"response", {{"ok", true}}}}));
  CAF_CHECK_EQUAL(reply_type(*agent2_sink, "a1"), "ack");
  auto answer = reply_to(*asker_sink, "q2");
  CAF_REQUIRE(answer.has_value());
  CAF_CHECK_EQUAL(answer->type, "route_response");
  CAF_CHECK_EQUAL(answer->payload["agentId"], "a-2");
  CAF_CHECK_EQUAL(answer->payload["response"]["ok"], true);
  CAF_CHECK(!reply_to(*asker_sink, "q1").has_value());  // still in flight
}

CAF_TEST(a routed request nobody answers fails with ROUTE_TIMEOUT when its timer fires) {
  auto [agent, agent_sink] = connect("c-agent");
  auto [asker, asker_sink] = connect("c-asker");
  say(agent, message("agent_register", "r1", {{"agentId", "a-1"}, {"type", "bot"}, {"capabilities", {"x"}}}));
  say(asker, message("route_request", "q1", {{"agentId", "a-1"}, {"request", json::object()}}));
  CAF_CHECK_EQUAL(agent_sink->of_type("route_request").size(), 1u);
  CAF_CHECK(!reply_to(*asker_sink, "q1").has_value());
  // Just before routeTimeoutMs nothing happens; at it, the requester is told.
  const auto route_timeout = std::chrono::milliseconds(ctx->config.route_timeout_ms);
  advance_time(route_timeout - std::chrono::milliseconds(1));
  consume_messages();
  CAF_CHECK(!reply_to(*asker_sink, "q1").has_value());
  advance_time(std::chrono::milliseconds(1));
  consume_messages();
  CAF_CHECK_EQUAL(error_code_of(reply_to(*asker_sink, "q1")), "ROUTE_TIMEOUT");
  // A late answer finds nothing to answer.
  const auto request_id = agent_sink->of_type("route_request").front().payload["requestId"].get<std::string>();
  say(agent, message("route_response", "late", {{"requestId", request_id}, {"response", json::object()}}));
  CAF_CHECK_EQUAL(error_code_of(reply_to(*agent_sink, "late")), "ROUTE_NOT_FOUND");
}

CAF_TEST(an agent that disconnects fails its requests in flight with NO_AGENT at once) {
  auto [agent, agent_sink] = connect("c-agent");
  auto [asker, asker_sink] = connect("c-asker");
  say(agent, message("agent_register", "r1", {{"agentId", "a-1"}, {"type", "bot"}, {"capabilities", {"x"}}}));
  say(asker, message("route_request", "q1", {{"agentId", "a-1"}, {"request", json::object()}}));
  self->send(agent, connection_closed_atom_v, std::uint16_t{1001});
  consume_messages();
  CAF_CHECK_EQUAL(error_code_of(reply_to(*asker_sink, "q1")), "NO_AGENT");
}

CAF_TEST_FIXTURE_SCOPE_END()

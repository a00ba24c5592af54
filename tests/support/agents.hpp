#pragma once
// Agent steps the agent tests share: register, route, read what was routed, answer.
#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/gateway_fixture.hpp"
#include "support/ws_client.hpp"

namespace sb::test {


inline std::string error_code_of(const json& msg) {
  return msg["type"] == "error" ? msg["payload"].value("code", "") : "";
}

inline json agent_payload(const std::string& agent_id, const std::string& type,
                   std::vector<std::string> capabilities) {
  return {
      {"agentId", agent_id}, {"name", agent_id + " name"}, {"type", type}, {"capabilities", capabilities}};
}

/// Registers `client` as an agent and requires the ack.
inline void register_agent(ws_client& client, const std::string& agent_id, const std::string& type,
                    std::vector<std::string> capabilities) {
  auto r = client.request("agent_register", agent_payload(agent_id, type, std::move(capabilities)));
  INFO(r.dump());
  REQUIRE(r["type"] == "ack");
  REQUIRE(r["payload"]["agentId"] == agent_id);
}

/// Sends a route_request without waiting (the agent has to answer first); returns its message id.
inline std::string send_route(ws_client& client, json payload) {
  auto id = client.next_id();
  client.send({{"type", "route_request"}, {"id", id}, {"payload", std::move(payload)}});
  return id;
}

/// The reply to message `id`, if it arrives within `timeout`.
inline std::optional<json> reply_to(ws_client& client, const std::string& id,
                             std::chrono::milliseconds timeout = ws_client::default_timeout) {
  return client.wait_for([&](const json& m) { return m.value("replyTo", "") == id; }, timeout);
}

/// The next route_request delivered to an agent (with or without replyTo, so a wrong one is seen, not
/// skipped).
inline std::optional<json> routed(ws_client& agent, std::chrono::milliseconds timeout = ws_client::default_timeout) {
  return agent.wait_for([](const json& m) { return m.value("type", "") == "route_request"; }, timeout);
}

inline bool route_arrives_within(ws_client& agent, std::chrono::milliseconds window) {
  return !agent.none_within([](const json& m) { return m.value("type", "") == "route_request"; }, window);
}

/// Answers a routed request as the agent and requires the ack.
inline void answer(ws_client& agent, const json& route, json response) {
  auto ack = agent.request("route_response",
                           {{"requestId", route["payload"]["requestId"]}, {"response", std::move(response)}});
  INFO(ack.dump());
  REQUIRE(ack["type"] == "ack");
}

/// Waits until `requester`'s node routes to `agent` (on another node, the agents bucket's watch is
/// asynchronous): probes are answered until one comes back.
inline bool routable_from(ws_client& requester, const std::string& agent_id, ws_client& agent) {
  return eventually(
      [&] {
        auto id = send_route(requester, {{"agentId", agent_id}, {"request", {{"probe", true}}}});
        if (auto got = routed(agent, 300ms)) {
          answer(agent, *got, {{"probe", "ok"}});
          auto r = reply_to(requester, id);
          return r && (*r)["type"] == "route_response";
        }
        reply_to(requester, id, 300ms);
        return false;
      },
      10s);
}

}  // namespace sb::test

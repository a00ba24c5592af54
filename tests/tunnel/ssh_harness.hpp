#pragma once
// Two sans-I/O SSH sessions wired to each other in memory, for tests: bytes are moved both ways until both
// sides are quiet, and events are collected per side.
#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "tunnel/ssh/session.hpp"

namespace ssh_test {

using namespace sb::tunnel::ssh;

struct pair_harness {
  session client;
  session server;
  std::vector<event> client_events, server_events;

  pair_harness(session_config c, session_config s) : client(std::move(c)), server(std::move(s)) {
    client.start();
    server.start();
    pump();
  }

  // Moves bytes both ways until both sides are quiet, collecting events.
  void pump() {
    for (int i = 0; i < 10000; ++i) {
      auto a = client.take_output();
      auto b = server.take_output();
      if (!a.empty()) server.receive(a);
      if (!b.empty()) client.receive(b);
      while (auto e = client.poll()) client_events.push_back(std::move(*e));
      while (auto e = server.poll()) server_events.push_back(std::move(*e));
      if (a.empty() && b.empty()) return;
    }
  }

  template <class T>
  static std::vector<T> of(const std::vector<event>& events) {
    std::vector<T> out;
    for (const auto& e : events)
      if (auto* x = std::get_if<T>(&e)) out.push_back(*x);
    return out;
  }
};

inline session_config client_cfg() {
  session_config c;
  c.role = role::client;
  return c;
}

inline session_config server_cfg() {
  session_config s;
  s.role = role::server;
  s.host_key = std::make_shared<ecdsa_key>(ecdsa_key::generate());
  return s;
}

inline bytes pattern(std::size_t n, std::uint8_t seed = 7) {
  bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 31 + seed);
  return b;
}

// Opens a channel client -> server, accepts it, and returns both ids.
inline std::pair<std::uint32_t, std::uint32_t> open_pair(pair_harness& h,
                                                         const std::string& type = "session") {
  const auto cid = h.client.open_channel(type, writer().string(std::string_view("extra")).take());
  h.pump();
  auto opens = pair_harness::of<ev::channel_open>(h.server_events);
  REQUIRE(!opens.empty());
  const auto sid = opens.back().id;
  h.server.accept_channel(sid, writer().boolean(true).take());
  h.pump();
  return {cid, sid};
}

// Pumps until `expected` bytes arrived on the far side, consuming them as they come; returns them.
inline bytes receive_all(pair_harness& h, session& to, std::vector<event>& to_events, std::size_t expected) {
  bytes got;
  for (int round = 0; round < 100000 && got.size() < expected; ++round) {
    h.pump();
    for (auto it = to_events.begin(); it != to_events.end();) {
      if (auto* d = std::get_if<ev::channel_data>(&*it)) {
        got.insert(got.end(), d->data.begin(), d->data.end());
        to.consumed(d->id, d->data.size());
        it = to_events.erase(it);
      } else {
        ++it;
      }
    }
    if (!h.client.has_output() && !h.server.has_output() && got.size() < expected && round > 10) break;
  }
  return got;
}

// Sends `data` one way and returns what arrived on the far side.
inline bytes transfer(pair_harness& h, session& from, std::uint32_t from_id, session& to,
                      std::vector<event>& to_events, const bytes& data) {
  from.send(from_id, data);
  return receive_all(h, to, to_events, data.size());
}

}  // namespace ssh_test

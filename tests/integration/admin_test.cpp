// The admin Unix socket (PROTOCOL.md "Admin socket") and its command-line front end, against a real node.
#include <spdlog/spdlog.h>
#include <sys/wait.h>

#include <algorithm>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "support/gateway_fixture.hpp"

using namespace sb::test;

namespace {

bool is_ok(const json& answer) { return answer.is_object() && answer.value("ok", false) == true; }

/// A failure answer: ok false with an error text.
bool is_failure(const json& answer) {
  return answer.is_object() && answer.contains("ok") && answer["ok"] == false &&
         answer["error"].is_string() && !answer["error"].get<std::string>().empty();
}

/// The entry of `list` whose `key` is `value`, or null.
json find_by(const json& list, const char* key, const std::string& value) {
  for (const auto& e : list)
    if (e.value(key, "") == value) return e;
  return nullptr;
}

json stats(gateway_fixture& gw) {
  auto r = gw.admin({{"cmd", "stats"}});
  REQUIRE(is_ok(r));
  return r["result"];
}

/// Sends raw lines over the admin socket and reads one answer line per request line.
class raw_admin {
 public:
  explicit raw_admin(const std::string& path) : socket_(ioc_) { socket_.connect({path}); }

  json call(const std::string& line) {
    boost::asio::write(socket_, boost::asio::buffer(line + "\n"));
    auto n = boost::asio::read_until(socket_, input_, '\n');
    std::string text(boost::asio::buffers_begin(input_.data()),
                     boost::asio::buffers_begin(input_.data()) + n);
    input_.consume(n);
    return json::parse(text, nullptr, false);
  }

 private:
  boost::asio::io_context ioc_;
  boost::asio::local::stream_protocol::socket socket_;
  boost::asio::streambuf input_;
};

struct command_result {
  int exit_code;
  std::string out;
};

/// Runs a shell command and captures its standard output and exit code.
command_result run(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  const int status = ::pclose(pipe);
  REQUIRE(WIFEXITED(status));
  return {WEXITSTATUS(status), out};
}

std::string quoted(const std::string& s) { return "'" + s + "'"; }

}  // namespace

TEST_CASE("the admin socket file is created with mode 0600") {
  gateway_fixture gw;
  namespace fs = std::filesystem;
  const auto st = fs::status(gw.admin_path());
  CHECK(st.type() == fs::file_type::socket);
  CHECK((st.permissions() & fs::perms::all) == (fs::perms::owner_read | fs::perms::owner_write));
}

TEST_CASE("stats counts the clients, sessions and agents that exist") {
  gateway_fixture gw;
  auto s = stats(gw);
  CHECK(s["nodeId"] == gw.node->node_id());
  CHECK(s["draining"] == false);
  CHECK(s["uptimeMs"].is_number());
  CHECK(s["clients"] == 0);
  CHECK(s["sessions"] == 0);
  CHECK(s["agents"] == 0);

  auto a = gw.ready_client("dev-a");
  auto b = gw.ready_client("dev-b");
  auto unauthenticated = gw.connect();
  REQUIRE(a->request("session_create", {{"sessionId", "room-1"}})["type"] == "session_info");
  REQUIRE(b->request("session_create", {{"sessionId", "room-2"}})["type"] == "session_info");
  REQUIRE(b->request("agent_register",
                     {{"agentId", "agent-1"}, {"type", "t"}, {"capabilities", json::array()}})["type"] ==
          "ack");
  CHECK(eventually([&] {
    auto now = stats(gw);
    return now["clients"] == 3 && now["authenticatedClients"] == 2 && now["sessions"] == 2 &&
           now["agents"] == 1 && now["agentsOnline"] == 1;
  }));

  // b leaves: its session empties and goes, its agent goes offline but stays on record.
  b.reset();
  CHECK(eventually([&] {
    auto now = stats(gw);
    return now["clients"] == 2 && now["authenticatedClients"] == 1 && now["sessions"] == 1 &&
           now["agents"] == 1 && now["agentsOnline"] == 0;
  }));
  INFO(stats(gw).dump());
}

TEST_CASE(
    "actors lists the supervisor, the agent registry, every client and every session, each with mailbox and "
    "state") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  auto b = gw.ready_client();
  REQUIRE(a->request("session_create", {{"sessionId", "room-1"}})["type"] == "session_info");
  REQUIRE(b->request("session_join", json::object(), std::string("room-1"))["type"] == "session_info");
  REQUIRE(b->request("session_create", {{"sessionId", "room-2"}})["type"] == "session_info");
  const auto id_a = gateway_fixture::id_of(*a), id_b = gateway_fixture::id_of(*b);

  json actors;
  auto count_kind = [&](const std::string& kind) {
    return std::count_if(actors.begin(), actors.end(), [&](const json& e) { return e["kind"] == kind; });
  };
  auto has = [&](const std::string& kind, const std::string& id) {
    return std::any_of(actors.begin(), actors.end(),
                       [&](const json& e) { return e["kind"] == kind && e["id"] == id; });
  };
  CHECK(eventually([&] {
    auto r = gw.admin({{"cmd", "actors"}});
    if (!is_ok(r)) return false;
    actors = r["result"]["actors"];
    return count_kind("client") == 2 && count_kind("session") == 2;
  }));
  INFO(actors.dump());
  CHECK(count_kind("supervisor") == 1);
  CHECK(count_kind("agent_registry") == 1);
  CHECK(count_kind("client") == 2);
  CHECK(count_kind("session") == 2);
  CHECK(has("supervisor", gw.node->node_id()));
  CHECK(has("client", id_a));
  CHECK(has("client", id_b));
  CHECK(has("session", "room-1"));
  CHECK(has("session", "room-2"));
  for (const auto& e : actors) {
    INFO(e.dump());
    CHECK(e["kind"].is_string());
    CHECK(e["id"].is_string());
    CHECK(e["mailbox"].is_number_unsigned());
    CHECK(e.contains("state"));
    CHECK(e["state"].is_object());
  }

  // Asked live: a client that disconnects disappears from the list.
  b.reset();
  CHECK(eventually([&] {
    auto r = gw.admin({{"cmd", "actors"}});
    if (!is_ok(r)) return false;
    actors = r["result"]["actors"];
    return count_kind("client") == 1 && !has("client", id_b) && count_kind("session") == 1 &&
           !has("session", "room-2");
  }));
}

TEST_CASE("clients lists every connected client and client describes one") {
  gateway_fixture gw;
  auto a = gw.ready_client("laptop");
  auto b = gw.ready_client("phone");
  REQUIRE(a->request("session_create", {{"sessionId", "room-1"}})["type"] == "session_info");
  const auto id_a = gateway_fixture::id_of(*a), id_b = gateway_fixture::id_of(*b);

  json list;
  CHECK(eventually([&] {
    auto r = gw.admin({{"cmd", "clients"}});
    if (!is_ok(r)) return false;
    list = r["result"]["clients"];
    return list.size() == 2;
  }));
  INFO(list.dump());
  REQUIRE(list.is_array());
  CHECK(list.size() == 2);
  CHECK(find_by(list, "clientId", id_a)["deviceId"] == "laptop");
  CHECK(find_by(list, "clientId", id_b)["deviceId"] == "phone");

  auto one = gw.admin({{"cmd", "client"}, {"id", id_a}});
  REQUIRE(is_ok(one));
  const auto& c = one["result"]["client"];
  CHECK(c["clientId"] == id_a);
  CHECK(c["deviceId"] == "laptop");
  CHECK(c["authenticated"] == true);
  CHECK(c["sessions"] == json::array({"room-1"}));
  CHECK(c["address"] == "127.0.0.1");
}

TEST_CASE("client with an unknown or missing id is ok false") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  CHECK(is_failure(gw.admin({{"cmd", "client"}, {"id", "c-nosuch"}})));
  CHECK(is_failure(gw.admin({{"cmd", "client"}})));
  CHECK(is_ok(gw.admin({{"cmd", "client"}, {"id", gateway_fixture::id_of(*a)}})));
}

TEST_CASE("sessions lists every session and session describes one") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  auto b = gw.ready_client();
  REQUIRE(a->request("session_create", {{"sessionId", "room-1"}, {"metadata", {{"topic", "x"}}}})["type"] ==
          "session_info");
  REQUIRE(b->request("session_join", json::object(), std::string("room-1"))["type"] == "session_info");
  REQUIRE(b->request("session_create", {{"sessionId", "room-2"}})["type"] == "session_info");
  const auto id_a = gateway_fixture::id_of(*a), id_b = gateway_fixture::id_of(*b);

  auto r = gw.admin({{"cmd", "sessions"}});
  REQUIRE(is_ok(r));
  auto list = r["result"]["sessions"];
  INFO(list.dump());
  REQUIRE(list.size() == 2);
  CHECK(find_by(list, "id", "room-1")["clients"] == json::array({id_a, id_b}));
  CHECK(find_by(list, "id", "room-2")["clients"] == json::array({id_b}));

  auto one = gw.admin({{"cmd", "session"}, {"id", "room-1"}});
  REQUIRE(is_ok(one));
  const auto& s = one["result"]["session"];
  CHECK(s["id"] == "room-1");
  CHECK(s["clients"] == json::array({id_a, id_b}));
  CHECK(s["metadata"] == json{{"topic", "x"}});
  CHECK(s["createdAt"].is_number());

  CHECK(is_failure(gw.admin({{"cmd", "session"}, {"id", "no-room"}})));
}

TEST_CASE("agents lists every agent with its status and holder") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  auto b = gw.ready_client();
  REQUIRE(a->request("agent_register",
                     {{"agentId", "agent-a"}, {"type", "llm"}, {"capabilities", {"sum"}}})["type"] == "ack");
  REQUIRE(b->request("agent_register",
                     {{"agentId", "agent-b"}, {"type", "tool"}, {"capabilities", {"grep"}}})["type"] ==
          "ack");
  REQUIRE(b->request("agent_status", {{"agentId", "agent-b"}, {"status", "busy"}})["type"] == "ack");

  auto r = gw.admin({{"cmd", "agents"}});
  REQUIRE(is_ok(r));
  auto list = r["result"]["agents"];
  INFO(list.dump());
  REQUIRE(list.size() == 2);
  auto ra = find_by(list, "agentId", "agent-a");
  auto rb = find_by(list, "agentId", "agent-b");
  CHECK(ra["status"] == "online");
  CHECK(ra["type"] == "llm");
  CHECK(ra["capabilities"] == json::array({"sum"}));
  CHECK(ra["clientId"] == gateway_fixture::id_of(*a));
  CHECK(rb["status"] == "busy");
  CHECK(rb["clientId"] == gateway_fixture::id_of(*b));
}

namespace {

/// Registers `count` agents "<prefix>NNNN" from `client` and requires every ack.
void register_agents(ws_client& client, const std::string& prefix, int count, const json& metadata = {}) {
  for (int i = 0; i < count; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "%04d", i);
    json payload = {{"agentId", prefix + name}, {"type", "worker"}, {"capabilities", {"work"}}};
    if (!metadata.is_null()) payload["metadata"] = metadata;
    auto r = client.request("agent_register", payload);
    INFO(r.dump());
    REQUIRE(r["type"] == "ack");
  }
}

/// Pages through `agents` with `limit`; returns the agent ids in order and the number of pages.
std::pair<std::vector<std::string>, int> page_agents(gateway_fixture& gw, std::optional<int> limit) {
  std::vector<std::string> ids;
  json request = {{"cmd", "agents"}};
  if (limit) request["limit"] = *limit;
  int pages = 0;
  for (; pages < 1000; ++pages) {
    auto r = gw.admin(request);
    INFO(r.dump().substr(0, 500));
    REQUIRE(is_ok(r));
    const auto& page = r["result"];
    if (limit) CHECK(page["agents"].size() <= static_cast<std::size_t>(*limit));
    for (const auto& a : page["agents"]) ids.push_back(a["agentId"].get<std::string>());
    if (!page.contains("next")) return {ids, pages + 1};
    CHECK(page["next"] == page["agents"].back()["agentId"]);
    request["cursor"] = page["next"];
  }
  FAIL("paging did not end");
  return {ids, pages};
}

}  // namespace

TEST_CASE("agents pages by limit and cursor with every agent exactly once") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.rate_limit = 0; });
  auto a = gw.ready_client();
  auto b = gw.ready_client();
  register_agents(*a, "a-", 30);
  register_agents(*b, "b-", 25);

  auto [ids, pages] = page_agents(gw, 7);
  CHECK(pages == 8);  // 55 agents, 7 a page
  REQUIRE(ids.size() == 55);
  CHECK(std::is_sorted(ids.begin(), ids.end()));
  CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());
  CHECK(ids.front() == "a-0000");
  CHECK(ids.back() == "b-0024");

  // Without a limit the default page holds them all; the total is always given.
  auto whole = gw.admin({{"cmd", "agents"}});
  REQUIRE(is_ok(whole));
  CHECK(whole["result"]["agents"].size() == 55);
  CHECK(whole["result"]["total"] == 55);
  CHECK_FALSE(whole["result"].contains("next"));

  // A cursor past the end is an empty last page.
  auto past = gw.admin({{"cmd", "agents"}, {"cursor", "zzz"}});
  REQUIRE(is_ok(past));
  CHECK(past["result"]["agents"].empty());
  CHECK_FALSE(past["result"].contains("next"));

  // An agent removed between pages is simply absent; nothing shifts or repeats.
  auto first = gw.admin({{"cmd", "agents"}, {"limit", 10}});
  REQUIRE(first["result"]["next"] == "a-0009");
  REQUIRE(a->request("agent_unregister", {{"agentId", "a-0010"}})["type"] == "ack");
  auto second = gw.admin({{"cmd", "agents"}, {"limit", 10}, {"cursor", "a-0009"}});
  REQUIRE(is_ok(second));
  CHECK(second["result"]["agents"].front()["agentId"] == "a-0011");
}

TEST_CASE("agents refuses a limit outside 1 to 10000 and a cursor that is not a string") {
  gateway_fixture gw;
  for (const json& bad : {json(0), json(10001), json(-1), json(2.5), json("10")})
    CHECK(is_failure(gw.admin({{"cmd", "agents"}, {"limit", bad}})));
  CHECK(is_failure(gw.admin({{"cmd", "agents"}, {"cursor", 5}})));
  CHECK(is_ok(gw.admin({{"cmd", "agents"}, {"limit", 10000}})));
}

TEST_CASE("agents with large metadata are paged by bytes so each answer fits the admin reply") {
  // Eight agents with 900 KB of metadata each: one unpaged answer would be about 7 MiB, past the 4 MiB
  // that admin_call reads.
  gateway_fixture gw;
  auto a = gw.ready_client();
  register_agents(*a, "big-", 8, {{"blob", std::string(900 * 1024, 'x')}});
  auto [ids, pages] = page_agents(gw, std::nullopt);
  CHECK(ids.size() == 8);
  CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());
  CHECK(pages >= 4);
}

TEST_CASE("an agent entry larger than a page is listed without its metadata") {
  gateway_fixture gw([](sb::protocol::gateway_config& c) { c.max_payload = 8 * 1024 * 1024; });
  auto a = gw.ready_client();
  register_agents(*a, "huge-", 1, {{"blob", std::string(3 * 1024 * 1024, 'x')}});
  register_agents(*a, "small-", 1);
  auto r = gw.admin({{"cmd", "agents"}});
  REQUIRE(is_ok(r));
  auto huge = find_by(r["result"]["agents"], "agentId", "huge-0000");
  REQUIRE(huge.is_object());
  CHECK(huge["truncated"] == true);
  CHECK(huge["bytes"].get<std::size_t>() > 3 * 1024 * 1024);
  CHECK_FALSE(huge.contains("metadata"));
  CHECK(huge["status"] == "online");
  CHECK(find_by(r["result"]["agents"], "agentId", "small-0000")["metadata"] == json::object());
}

TEST_CASE("the admin command line passes limit and cursor for agents") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  for (const char* id : {"100", "200", "300"})
    REQUIRE(a->request("agent_register", {{"agentId", id}, {"type", "t"}, {"capabilities", {"c"}}})["type"] ==
            "ack");
  const auto base =
      std::string(SWITCHBOARD_BINARY) + " admin --socket " + quoted(gw.admin_path()) + " agents";
  auto first = run(base + " limit=2");
  REQUIRE(first.exit_code == 0);
  auto page = json::parse(first.out, nullptr, false);
  INFO(first.out);
  REQUIRE(page.is_object());
  CHECK(page["agents"].size() == 2);
  CHECK(page["next"] == "200");
  // A numeric-looking cursor stays the id it names.
  auto second = run(base + " limit=2 cursor=200");
  REQUIRE(second.exit_code == 0);
  page = json::parse(second.out, nullptr, false);
  INFO(second.out);
  REQUIRE(page.is_object());
  REQUIRE(page["agents"].size() == 1);
  CHECK(page["agents"][0]["agentId"] == "300");
  CHECK_FALSE(page.contains("next"));
  CHECK(run(base + " limit=0 2>/dev/null").exit_code != 0);
}

TEST_CASE("clients and sessions page by limit and cursor with every entry exactly once") {
  gateway_fixture gw;
  std::vector<std::unique_ptr<ws_client>> clients;
  std::vector<std::string> client_ids;
  for (int i = 0; i < 12; ++i) {
    clients.push_back(gw.ready_client());
    client_ids.push_back(gateway_fixture::id_of(*clients.back()));
  }
  std::sort(client_ids.begin(), client_ids.end());
  for (int i = 0; i < 11; ++i)
    REQUIRE(clients[0]->request("session_create", {{"sessionId", "s-" + std::to_string(10 + i)}})["type"] ==
            "session_info");
  REQUIRE(eventually([&] { return stats(gw)["clients"] == 12; }));

  // Pages through `cmd`, returning the ids in order and the number of pages.
  auto page_all = [&gw](const std::string& cmd, const std::string& key, const std::string& id_key,
                        int limit) {
    std::vector<std::string> ids;
    json request = {{"cmd", cmd}, {"limit", limit}};
    int pages = 0;
    while (pages < 100) {
      auto r = gw.admin(request);
      INFO(r.dump());
      REQUIRE(is_ok(r));
      ++pages;
      CHECK(r["result"][key].size() <= static_cast<std::size_t>(limit));
      for (const auto& e : r["result"][key]) ids.push_back(e[id_key].get<std::string>());
      if (!r["result"].contains("next")) break;
      request["cursor"] = r["result"]["next"];
    }
    return std::make_pair(ids, pages);
  };
  auto [got_clients, client_pages] = page_all("clients", "clients", "clientId", 5);
  CHECK(client_pages == 3);
  CHECK(got_clients == client_ids);
  auto [got_sessions, session_pages] = page_all("sessions", "sessions", "id", 4);
  CHECK(session_pages == 3);
  REQUIRE(got_sessions.size() == 11);
  CHECK(got_sessions.front() == "s-10");
  CHECK(got_sessions.back() == "s-20");
  CHECK(std::is_sorted(got_sessions.begin(), got_sessions.end()));
  CHECK(std::adjacent_find(got_sessions.begin(), got_sessions.end()) == got_sessions.end());

  CHECK(is_failure(gw.admin({{"cmd", "clients"}, {"limit", 0}})));
  CHECK(is_failure(gw.admin({{"cmd", "sessions"}, {"cursor", 3}})));
  CHECK(gw.admin({{"cmd", "sessions"}})["result"]["total"] == 11);
}

TEST_CASE("kick closes the client with 4000 and an unknown id is ok false") {
  gateway_fixture gw;
  auto victim = gw.ready_client();
  auto bystander = gw.ready_client();
  const auto id = gateway_fixture::id_of(*victim);
  CHECK(eventually([&] { return stats(gw)["clients"] == 2; }));

  auto r = gw.admin({{"cmd", "kick"}, {"id", id}, {"reason", "maintenance"}});
  REQUIRE(is_ok(r));
  CHECK(victim->wait_closed() == std::optional<std::uint16_t>(4000));
  CHECK_FALSE(bystander->closed());
  CHECK(bystander->request("ping")["type"] == "pong");
  CHECK(eventually([&] { return is_failure(gw.admin({{"cmd", "client"}, {"id", id}})); }));

  CHECK(is_failure(gw.admin({{"cmd", "kick"}, {"id", "c-nosuch"}})));
  CHECK(is_failure(gw.admin({{"cmd", "kick"}})));
  CHECK_FALSE(bystander->closed());
}

TEST_CASE("drain closes clients with 1001, makes readyz 503 and refuses new upgrades with 503") {
  gateway_fixture gw;
  auto a = gw.ready_client();
  auto b = gw.connect();
  CHECK(http_get(gw.port(), "/readyz").first == 200);
  CHECK(eventually([&] { return stats(gw)["clients"] == 2; }));

  auto r = gw.admin({{"cmd", "drain"}});
  REQUIRE(is_ok(r));
  CHECK(r["result"]["draining"] == true);
  CHECK(a->wait_closed() == std::optional<std::uint16_t>(1001));
  CHECK(b->wait_closed() == std::optional<std::uint16_t>(1001));

  CHECK(http_get(gw.port(), "/readyz").first == 503);
  CHECK(http_get(gw.port(), "/healthz").first == 200);
  int refused_status = 0;
  try {
    ws_client late(gw.port());
  } catch (const upgrade_refused& e) {
    refused_status = e.status;
  }
  CHECK(refused_status == 503);
  CHECK(stats(gw)["draining"] == true);
}

TEST_CASE("log sets a known level and refuses an unknown one") {
  gateway_fixture gw;
  REQUIRE(spdlog::get_level() == spdlog::level::warn);
  auto r = gw.admin({{"cmd", "log"}, {"level", "debug"}});
  CHECK(is_ok(r));
  CHECK(spdlog::get_level() == spdlog::level::debug);

  CHECK(is_failure(gw.admin({{"cmd", "log"}, {"level", "chatty"}})));
  CHECK(spdlog::get_level() == spdlog::level::debug);
  CHECK(is_failure(gw.admin({{"cmd", "log"}})));

  CHECK(is_ok(gw.admin({{"cmd", "log"}, {"level", "warn"}})));
  CHECK(spdlog::get_level() == spdlog::level::warn);
}

TEST_CASE("cluster lists this node") {
  gateway_fixture gw;
  auto r = gw.admin({{"cmd", "cluster"}});
  REQUIRE(is_ok(r));
  auto members = r["result"]["members"];
  INFO(members.dump());
  REQUIRE(members.is_array());
  auto self = find_by(members, "nodeId", gw.node->node_id());
  REQUIRE(self.is_object());
  CHECK(self["state"].is_string());
}

TEST_CASE("tunnel is ok false on a node without a tunnel") {
  gateway_fixture gw;
  CHECK(is_failure(gw.admin({{"cmd", "tunnel"}})));
}

TEST_CASE("an unknown command is ok false") {
  gateway_fixture gw;
  CHECK(is_failure(gw.admin({{"cmd", "reboot"}})));
  CHECK(is_failure(gw.admin({{"cmd", ""}})));
  CHECK(is_failure(gw.admin({{"command", "stats"}})));
}

TEST_CASE("a line that is not JSON is answered ok false and the connection keeps working") {
  gateway_fixture gw;
  raw_admin socket(gw.admin_path());
  auto bad = socket.call("this is not json");
  INFO(bad.dump());
  CHECK(is_failure(bad));
  auto not_object = socket.call("[1,2,3]");
  CHECK(is_failure(not_object));
  auto good = socket.call(R"({"cmd":"stats"})");
  REQUIRE(is_ok(good));
  CHECK(good["result"]["nodeId"] == gw.node->node_id());
}

TEST_CASE("the admin command line prints stats as JSON and fails for an unknown kick target") {
  gateway_fixture gw;
  auto stats_run =
      run(std::string(SWITCHBOARD_BINARY) + " admin --socket " + quoted(gw.admin_path()) + " stats");
  CHECK(stats_run.exit_code == 0);
  INFO(stats_run.out);
  auto printed = json::parse(stats_run.out, nullptr, false);
  REQUIRE_FALSE(printed.is_discarded());
  CHECK(printed["nodeId"] == gw.node->node_id());

  auto kick_run = run(std::string(SWITCHBOARD_BINARY) + " admin --socket " + quoted(gw.admin_path()) +
                      " kick nosuch 2>/dev/null");
  CHECK(kick_run.exit_code != 0);

  // And a real kick through the front end closes the client with 4000.
  auto victim = gw.ready_client();
  const auto id = gateway_fixture::id_of(*victim);
  CHECK(eventually([&] { return is_ok(gw.admin({{"cmd", "client"}, {"id", id}})); }));
  auto real_kick =
      run(std::string(SWITCHBOARD_BINARY) + " admin --socket " + quoted(gw.admin_path()) + " kick " + id);
  CHECK(real_kick.exit_code == 0);
  CHECK(victim->wait_closed() == std::optional<std::uint16_t>(4000));
}

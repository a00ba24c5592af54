// The real `switchboard relay` with its data directory on a 64 KiB tmpfs that the test fills: a change the
// disk cannot hold is answered 507 with the reason, tunnels.json keeps everything acknowledged before, and a
// restarted relay serves exactly that. Needs root for mount(8); without it the test fails, naming why.
#include <sys/mount.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "support/process.hpp"
#include "support/tunnel_fixture.hpp"
#include "tunnel/io/http_client.hpp"

using namespace sb::test;
using json = nlohmann::json;

namespace {

const std::string binary = SWITCHBOARD_BINARY;

/// A tmpfs of `size` mounted at `dir` for the life of the object.
struct tiny_tmpfs {
  std::filesystem::path dir;
  bool mounted = false;
  tiny_tmpfs(std::filesystem::path d, const std::string& size) : dir(std::move(d)) {
    std::filesystem::create_directories(dir);
    const auto options = "size=" + size + ",mode=0700";
    mounted = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) == 0;
    INFO("mount -t tmpfs -o " << options << " tmpfs " << dir << ": " << std::strerror(errno)
                              << " (this test needs root)");
    REQUIRE(mounted);
  }
  ~tiny_tmpfs() {
    if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
  }
};

/// Writes zeros to `path` until the file system is full.
void fill(const std::filesystem::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f);
  std::setvbuf(f, nullptr, _IONBF, 0);
  const std::string block(512, '\0');
  while (std::fwrite(block.data(), 1, block.size(), f) == block.size()) {
  }
  // Byte by byte into the last partial block.
  while (std::fputc(0, f) != EOF) {
  }
  std::fclose(f);
}

struct relay_child {
  std::unique_ptr<child_process> child;
  std::string url, token;

  relay_child(const temp_dir& work, const std::filesystem::path& data) {
    child = std::make_unique<child_process>(
        std::vector<std::string>{binary, "relay", "--port", "0", "--data-dir", data.string()}, work.path());
    REQUIRE(child->wait_for_output("management token", 10s));
    std::smatch m;
    const auto out = child->out();
    REQUIRE(std::regex_search(out, m, std::regex(R"(switchboard relay (http://127\.0\.0\.1:\d+))")));
    url = m[1];
    std::ifstream in(data / "management-token");
    in >> token;
    REQUIRE_FALSE(token.empty());
  }
  ~relay_child() {
    child->signal(SIGTERM);
    child->wait_exit(10s);
  }

  sb::tunnel::io::http_reply call(const std::string& method, const std::string& path,
                                 const std::string& body = "") {
    sb::tunnel::io::http_call c;
    c.method = method;
    c.url = url + path;
    c.headers["Authorization"] = "Bearer " + token;
    c.body = body;
    auto r = sb::tunnel::io::http_request(c);
    if (auto* error = std::get_if<std::string>(&r)) FAIL("request failed: " << *error);
    return std::get<sb::tunnel::io::http_reply>(r);
  }
};

}  // namespace

TEST_CASE(
    "on a full disk a change is answered 507, tunnels.json keeps what was acknowledged, a restart serves it",
    "[relay][store]") {
  temp_dir work;
  tiny_tmpfs disk(work.path() / "data", "64k");
  const std::string options = R"({"description":")" + std::string(300, 'd') + R"("})";
  {
    relay_child relay(work, disk.dir);
    REQUIRE(relay.call("PUT", "/tunnels/kept-one", options).status == 201);
    REQUIRE(relay.call("PUT", "/tunnels/kept-two", options).status == 201);
    REQUIRE(relay.call("PUT", "/tunnels/kept-two/ports/8080", "{}").status == 201);
    fill(disk.dir / "filler");

    auto refused = relay.call("PUT", "/tunnels/lost-one", options);
    INFO(refused.body);
    CHECK(refused.status == 507);
    CHECK(refused.header("content-type") == "application/problem+json");
    CHECK(refused.body.find("No space left on device") != std::string::npos);
    auto refused_port = relay.call("PUT", "/tunnels/kept-one/ports/9090", "{}");
    CHECK(refused_port.status == 507);
    // The relay keeps serving what it has.
    CHECK(relay.call("GET", "/tunnels/kept-two").status == 200);
    CHECK(relay.call("GET", "/tunnels/lost-one").status == 404);
    CHECK(relay.child->err().find("No space left on device") != std::string::npos);
    // Counted where an operator looks: both refused changes, and the two tunnels stored.
    const auto metrics = relay.call("GET", "/metrics").body;
    CHECK(metrics.find("\nswitchboard_relay_store_write_failures_total 2\n") != std::string::npos);
    CHECK(metrics.find("\nswitchboard_relay_stored_tunnels 2\n") != std::string::npos);
  }

  // On disk: exactly what was acknowledged, as valid JSON, and no temporary file left behind.
  std::ifstream in(disk.dir / "tunnels.json");
  const auto doc = json::parse(in, nullptr, false);
  REQUIRE(doc.is_object());
  std::set<std::string> ids;
  for (const auto& t : doc["tunnels"]) ids.insert(t["tunnelId"].get<std::string>());
  CHECK(ids == std::set<std::string>{"kept-one", "kept-two"});
  for (const auto& entry : std::filesystem::directory_iterator(disk.dir))
    CHECK(entry.path().filename().string().find(".tmp-") == std::string::npos);

  std::filesystem::remove(disk.dir / "filler");
  relay_child again(work, disk.dir);
  CHECK(again.call("GET", "/tunnels/kept-one").status == 200);
  auto two = again.call("GET", "/tunnels/kept-two?includePorts=true");
  REQUIRE(two.status == 200);
  CHECK(json::parse(two.body)["ports"].size() == 1);
  CHECK(again.call("GET", "/tunnels/lost-one").status == 404);
  CHECK(again.call("PUT", "/tunnels/lost-one", options).status == 201);
}

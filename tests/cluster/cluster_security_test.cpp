// NATS credentials and TLS are config keys like any other: a node with the right token, user and password,
// or CA joins; one with wrong credentials, or one that cannot verify the server's certificate, never gets a
// link and says so.
#include <catch2/catch.hpp>

#include "support/cluster_fixture.hpp"
#include "support/pki.hpp"

using namespace sb::test;
using json = nlohmann::json;

namespace {

std::string link_of(gateway_fixture& node) {
  auto r = node.admin({{"cmd", "cluster"}});
  return r.value("ok", false) ? r["result"]["link"].get<std::string>() : "no answer";
}

/// A node on `nats` with its own settings on top of the test cluster's.
std::unique_ptr<gateway_fixture> node_on(const nats_server& nats, const std::string& id,
                                         const gateway_fixture::tweak& extra) {
  return std::make_unique<gateway_fixture>([&](sb::protocol::gateway_config& c) {
    join_cluster(c, nats, "sec", id);
    extra(c);
  });
}

/// A node that must not get a link: either it refuses to start, naming NATS, or it runs and reports that it
/// has no link (degraded) for as long as it is watched.
void never_links(const nats_server& nats, const std::string& id, const gateway_fixture::tweak& extra) {
  std::unique_ptr<gateway_fixture> node;
  try {
    node = node_on(nats, id, extra);
  } catch (const std::exception& e) {
    INFO(e.what());
    CHECK(std::string(e.what()).find("NATS") != std::string::npos);
    return;
  }
  for (int i = 0; i < 10; ++i) {
    CHECK(link_of(*node) != "connected");
    std::this_thread::sleep_for(100ms);
  }
  auto [status, body] = http_get(node->port(), "/readyz");
  CHECK(json::parse(body)["degraded"] == true);
}

}  // namespace

TEST_CASE("cluster: a node needs NATS's token or user and password", "[cluster][security]") {
  temp_dir dir;
  nats_server nats(dir.path(), "authorization { users = [ { user: gw, password: pw-1 } ] }");
  auto good = node_on(nats, "good", [](auto& c) {
    c.cluster_nats_user = "gw";
    c.cluster_nats_password = "pw-1";
  });
  REQUIRE(eventually([&] { return link_of(*good) == "connected"; }));
  never_links(nats, "wrong", [](auto& c) {
    c.cluster_nats_user = "gw";
    c.cluster_nats_password = "not-it";
  });
  never_links(nats, "none", [](auto&) {});

  temp_dir dir2;
  nats_server by_token(dir2.path(), "authorization { token: t0ken-1 }");
  auto holder = node_on(by_token, "holder", [](auto& c) { c.cluster_nats_token = "t0ken-1"; });
  REQUIRE(eventually([&] { return link_of(*holder) == "connected"; }));
  never_links(by_token, "guess", [](auto& c) { c.cluster_nats_token = "guess"; });
}

TEST_CASE("cluster: over TLS a node verifies NATS against clusterNatsCa", "[cluster][security]") {
  temp_dir dir;
  make_test_pki(dir.path(), "IP:127.0.0.1");
  const auto pki = dir.path().string();
  nats_server nats(dir.path(), "tls { cert_file: \"" + pki + "/leaf.pem\", key_file: \"" + pki + "/leaf.key\" }");
  const auto url = "tls://127.0.0.1:" + std::to_string(nats.port());
  auto trusted = node_on(nats, "trusted", [&](auto& c) {
    c.cluster_nats = {url};
    c.cluster_nats_ca = pki + "/ca.pem";
  });
  REQUIRE(eventually([&] { return link_of(*trusted) == "connected"; }));
  // Without the CA the server's certificate is a stranger's.
  never_links(nats, "stranger", [&](auto& c) { c.cluster_nats = {url}; });
}

#include "support/gateway_fixture.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <map>
#include <mutex>

namespace sb::test {

temp_dir::temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "sb-test-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

namespace {

// Client ids learned from session_info, keyed by client object.
std::mutex ids_mtx;
std::map<const ws_client*, std::string> ids;

}  // namespace

gateway_fixture::gateway_fixture(tweak t, setup s) {
  config.port = 0;
  config.bind = "127.0.0.1";
  config.auth_tokens = {test_token};
  config.admin_socket = (dir_.path() / "admin.sock").string();
  config.log_level = "warn";
  if (t) t(config);
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  node = std::make_unique<actors::gateway_node>(config);
  if (s) s(*node);
  node->start();
}

gateway_fixture::~gateway_fixture() {
  node->stop();
  std::lock_guard<std::mutex> guard(ids_mtx);
  ids.clear();
}

std::unique_ptr<ws_client> gateway_fixture::connect(client_options options) {
  auto client = std::make_unique<ws_client>(port(), options);
  if (!options.read) return client;
  auto info = client->event("session_info");
  if (!info) throw std::runtime_error("no session_info after upgrade");
  std::lock_guard<std::mutex> guard(ids_mtx);
  ids[client.get()] = (*info)["payload"]["clientId"].get<std::string>();
  return client;
}

std::unique_ptr<ws_client> gateway_fixture::ready_client(const std::string& device_id) {
  auto client = connect();
  json connect_payload = json::object();
  if (!device_id.empty()) connect_payload["deviceId"] = device_id;
  auto hello = client->request("connect", connect_payload);
  if (hello["type"] != "hello_ok") throw std::runtime_error("connect failed: " + hello.dump());
  if (config.auth != protocol::auth_mode::none) {
    json auth = config.auth == protocol::auth_mode::token ? json{{"token", test_token}}
                                                          : json{{"password", config.auth_password}};
    auto ok = client->request("auth", auth);
    if (ok["type"] != "auth_success") throw std::runtime_error("auth failed: " + ok.dump());
  }
  return client;
}

std::string gateway_fixture::id_of(ws_client& client) {
  std::lock_guard<std::mutex> guard(ids_mtx);
  return ids.at(&client);
}

json gateway_fixture::admin(const json& request) { return transport::admin_call(admin_path(), request); }

std::string gateway_fixture::admin_path() const { return config.admin_socket; }

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

}  // namespace sb::test

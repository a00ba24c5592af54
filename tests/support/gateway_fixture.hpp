#pragma once
// Starts a real gateway node on 127.0.0.1 with a port the OS picked, plus helpers to reach it.
#include <filesystem>
#include <functional>
#include <memory>

#include "actors/gateway_node.hpp"
#include "support/ws_client.hpp"
#include "transport/admin_socket.hpp"

namespace sb::test {

inline constexpr const char* test_token = "test-token-1";

/// A fresh temporary directory, removed with the object.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class gateway_fixture {
 public:
  using tweak = std::function<void(protocol::gateway_config&)>;
  using setup = std::function<void(actors::gateway_node&)>;

  explicit gateway_fixture(tweak t = {}, setup s = {});
  ~gateway_fixture();

  std::uint16_t port() const { return node->port(); }
  /// A connected client that has read session_info (returned in `info`).
  std::unique_ptr<ws_client> connect(client_options options = {});
  /// A client that has done connect and (when required) auth; its clientId is in `id_of`.
  std::unique_ptr<ws_client> ready_client(const std::string& device_id = {});
  nlohmann::json admin(const nlohmann::json& request);
  std::string admin_path() const;
  static std::string id_of(ws_client& client);

  protocol::gateway_config config;
  std::unique_ptr<actors::gateway_node> node;

 private:
  temp_dir dir_;
};

/// Polls `cond` until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 5s);

}  // namespace sb::test

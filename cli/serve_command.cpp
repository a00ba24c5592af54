// `switchboard serve`: one gateway node. SIGTERM/SIGINT drain it: /readyz 503, clients closed with 1001,
// exit 0 within drainTimeoutMs.
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>

#include "actors/gateway_node.hpp"
#include "cli/commands.hpp"
#include "cli/config_sources.hpp"
#include "cli/signals.hpp"
#include "transport/bind_address.hpp"

extern char** environ;

namespace sb::cli {

namespace {

struct serve_options {
  std::optional<std::string> config_file;
  std::map<std::string, std::string> flags;
};

void print_banner(const actors::gateway_node& node) {
  const auto& cfg = node.config();
  const auto scheme = cfg.tls_enabled() ? "wss" : "ws";
  std::cout << "switchboard " << scheme << "://" << transport::resolve_bind_address(cfg.bind) << ':'
            << node.port() << cfg.path << " node " << node.node_id() << " auth "
            << protocol::to_string(cfg.auth) << std::endl;
  for (const auto& token : node.generated_tokens())
    std::cout << "generated auth token (shown once): " << token << std::endl;
  if (!cfg.admin_socket.empty()) std::cout << "admin socket: " << cfg.admin_socket << std::endl;
}

int run_serve(const serve_options& opts) {
  auto file = opts.config_file;
  if (!file)
    if (const char* env = std::getenv("SWITCHBOARD_CONFIG")) file = std::string(env);
  auto loaded = load_gateway_config(file, opts.flags, environ);
  if (auto* err = std::get_if<std::string>(&loaded)) {
    std::cerr << "switchboard serve: " << *err << std::endl;
    return 2;
  }
  auto cfg = std::get<protocol::gateway_config>(std::move(loaded));
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  const auto signals = block_signals();
  actors::gateway_node node(cfg);
  node.start();
  print_banner(node);
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: draining", sig);
  node.drain();
  if (!node.wait_until_idle(std::chrono::milliseconds(node.config().drain_timeout_ms)))
    spdlog::warn("drain timeout: closing the remaining connections");
  node.stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

std::function<int()> add_serve_command(CLI::App& app) {
  auto opts = std::make_shared<serve_options>();
  auto* cmd = app.add_subcommand("serve", "Run a gateway node");
  cmd->add_option("--config", opts->config_file, "JSON configuration file (also SWITCHBOARD_CONFIG)");
  for (const auto& key : protocol::gateway_config_keys()) {
    const std::string name = key.name;
    cmd->add_option_function<std::string>(
           "--" + protocol::flag_name(key.name),
           [opts, name](const std::string& v) { opts->flags[name] = v; },
           std::string(key.help) + " [key " + key.name + ", env " + protocol::env_name(key.name) + "]")
        ->type_name(key.kind == protocol::key_kind::integer       ? "INT"
                    : key.kind == protocol::key_kind::boolean     ? "BOOL"
                    : key.kind == protocol::key_kind::string_list ? "LIST"
                                                                  : "TEXT");
  }
  cmd->footer(
      "Every option is also a key of the --config file (camelCase) and an environment variable.\n"
      "Precedence: flag, then environment, then file, then default. Lists take JSON arrays or commas.");
  return [opts] { return run_serve(*opts); };
}

}  // namespace sb::cli

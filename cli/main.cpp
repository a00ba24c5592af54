// The `switchboard` entry point: one binary, one subcommand per role.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/commands.hpp"

int main(int argc, char** argv) {
  // Logs go to stderr so stdout carries only what a script may parse (the banner, admin results).
  spdlog::set_default_logger(spdlog::stderr_color_mt("switchboard"));
  CLI::App app{"switchboard: real-time WebSocket gateway"};
  app.require_subcommand(1);
  auto serve = sb::cli::add_serve_command(app);
  auto admin = sb::cli::add_admin_command(app);
  auto relay = sb::cli::add_relay_command(app);
  auto tunnel = sb::cli::add_tunnel_command(app);
  auto host = sb::cli::add_host_command(app);
  auto connect = sb::cli::add_connect_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (app.got_subcommand("serve")) return serve();
    if (app.got_subcommand("admin")) return admin();
    if (app.got_subcommand("relay")) return relay();
    if (app.got_subcommand("tunnel")) return tunnel();
    if (app.got_subcommand("host")) return host();
    if (app.got_subcommand("connect")) return connect();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  return 2;
}

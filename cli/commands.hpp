#pragma once
// The subcommands of the `switchboard` binary, each a thin layer that builds a config and starts a role.
#include <CLI/CLI.hpp>

namespace sb::cli {

/// Registers the subcommand on `app`; the returned function runs it after parsing and gives the exit code.
std::function<int()> add_serve_command(CLI::App& app);
std::function<int()> add_admin_command(CLI::App& app);
std::function<int()> add_relay_command(CLI::App& app);
std::function<int()> add_tunnel_command(CLI::App& app);
std::function<int()> add_host_command(CLI::App& app);
std::function<int()> add_connect_command(CLI::App& app);

}  // namespace sb::cli

// `switchboard admin CMD [ARGS]`: the command-line front end of the admin socket.
#include <iostream>

#include "cli/commands.hpp"
#include "protocol/json_bounds.hpp"
#include "transport/admin_socket.hpp"

namespace sb::cli {

namespace {

using nlohmann::json;

struct admin_options {
  std::string socket;
  std::string command;
  std::vector<std::string> args;
};

/// The argument a bare value stands for, e.g. `admin kick c-1` means {"id":"c-1"}.
const char* primary_key(const std::string& cmd) {
  if (cmd == "client" || cmd == "session" || cmd == "kick") return "id";
  if (cmd == "log") return "level";
  if (cmd == "ports.add" || cmd == "ports.remove") return "port";
  return nullptr;
}

/// Numbers and booleans given as text become JSON values; everything else stays a string.
json value_of(const std::string& text) {
  auto parsed = protocol::parse_untrusted_json(text);
  if (parsed.ok() && (parsed.value.is_number() || parsed.value.is_boolean())) return parsed.value;
  return text;
}

int run_admin(const admin_options& opts) {
  json request = {{"cmd", opts.command}};
  for (const auto& arg : opts.args) {
    auto eq = arg.find('=');
    if (eq != std::string::npos) {
      auto key = arg.substr(0, eq);
      // A paging cursor is an id: `cursor=123` must stay the string "123".
      request[key] = key == "cursor" ? json(arg.substr(eq + 1)) : value_of(arg.substr(eq + 1));
    } else if (const char* key = primary_key(opts.command); key && !request.contains(key)) {
      request[key] = value_of(arg);
    } else {
      std::cerr << "switchboard admin: unexpected argument '" << arg << "' (use key=value)" << std::endl;
      return 2;
    }
  }
  json answer;
  try {
    answer = transport::admin_call(opts.socket, request);
  } catch (const std::exception& e) {
    std::cerr << "switchboard admin: " << e.what() << std::endl;
    return 1;
  }
  if (answer.value("ok", false)) {
    std::cout << answer["result"].dump(2) << std::endl;
    return 0;
  }
  std::cerr << "switchboard admin: " << answer.value("error", std::string("request failed")) << std::endl;
  return 1;
}

}  // namespace

std::function<int()> add_admin_command(CLI::App& app) {
  auto opts = std::make_shared<admin_options>();
  const char* env = std::getenv("SWITCHBOARD_ADMIN_SOCKET");
  opts->socket = env ? env : "switchboard.sock";
  auto* cmd = app.add_subcommand("admin", "Ask a running node over its admin socket");
  cmd->add_option("--socket", opts->socket, "admin socket path (also SWITCHBOARD_ADMIN_SOCKET)")
      ->capture_default_str();
  cmd->add_option("command", opts->command,
                  "stats, actors, clients, client ID, sessions, session ID, agents [limit=N] [cursor=NEXT], "
                  "kick ID [reason=..], drain, "
                  "log LEVEL, tunnel, ports.add PORT, ports.remove PORT, cluster")
      ->required();
  cmd->add_option("args", opts->args, "a bare value or key=value pairs");
  return [opts] { return run_admin(*opts); };
}

}  // namespace sb::cli

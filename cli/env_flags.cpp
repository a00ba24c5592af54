#include "cli/env_flags.hpp"

#include "protocol/text.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace sb::cli {

namespace {

std::optional<sourced> from_env(std::string_view flag) {
  const auto name = env_name(flag);
  const char* value = std::getenv(name.c_str());
  if (value == nullptr || *value == '\0') return std::nullopt;
  return sourced{value, name};
}

std::optional<sourced> from_flag(const std::optional<std::string>& value, std::string_view flag) {
  if (!value) return std::nullopt;
  return sourced{*value, "--" + std::string(flag)};
}

}  // namespace

std::string env_name(std::string_view flag) {
  std::string out = "SWITCHBOARD_";
  for (char c : flag)
    out.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return out;
}

std::optional<sourced> flag_or_env(const std::optional<std::string>& flag_value, std::string_view flag) {
  if (auto v = from_flag(flag_value, flag)) return v;
  return from_env(flag);
}

std::optional<sourced> secret_option(const std::optional<std::string>& direct, std::string_view direct_flag,
                                     const std::optional<std::string>& file, std::string_view file_flag) {
  auto pick = [&](std::optional<sourced> d, std::optional<sourced> f) -> std::optional<sourced> {
    if (d && f) throw usage_error("give either " + d->source + " or " + f->source + ", not both");
    if (d) {
      if (d->value.empty()) throw usage_error(d->source + " is empty");
      return d;
    }
    if (f) return sourced{read_secret_file(f->value, f->source), f->source};
    return std::nullopt;
  };
  if (direct || file) return pick(from_flag(direct, direct_flag), from_flag(file, file_flag));
  return pick(from_env(direct_flag), from_env(file_flag));
}

std::string read_secret_file(const std::string& path, const std::string& source) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw usage_error(source + ": cannot read '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  auto value = std::string(protocol::trim(text.str(), protocol::line_blanks));
  if (value.empty()) throw usage_error(source + ": '" + path + "' is empty");
  return value;
}

std::uint16_t parse_port(const sourced& value, bool allow_zero) {
  auto port = protocol::parse_port(value.value, allow_zero);
  if (!port)
    throw usage_error(value.source + ": '" + value.value + "' is not a port number (" + (allow_zero ? "0" : "1") +
                      "-65535)");
  return *port;
}

void reject_extras(const CLI::App& command) {
  const auto extras = command.remaining();
  if (extras.empty()) return;
  const auto& first = extras.front();
  if (!first.empty() && first.front() == '-')
    throw usage_error("unknown option '" + first + "' (see " + command.get_name() + " --help)");
  throw usage_error("unexpected argument '" + first + "' (see " + command.get_name() + " --help)");
}

}  // namespace sb::cli

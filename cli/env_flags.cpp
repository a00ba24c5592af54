#include "cli/env_flags.hpp"

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace sb::cli {

namespace {

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

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
  auto value = trim(text.str());
  if (value.empty()) throw usage_error(source + ": '" + path + "' is empty");
  return value;
}

std::uint16_t parse_port(const sourced& value, bool allow_zero) {
  unsigned n = 0;
  const auto& s = value.value;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || n > 65535 || (n == 0 && !allow_zero))
    throw usage_error(value.source + ": '" + s + "' is not a port number (" + (allow_zero ? "0" : "1") +
                      "-65535)");
  return static_cast<std::uint16_t>(n);
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

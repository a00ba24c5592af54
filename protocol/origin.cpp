#include "protocol/origin.hpp"

#include <algorithm>
#include <cctype>

namespace sb::protocol {

namespace {

struct origin_parts {
  std::string scheme;
  std::string host;
  std::string port;  // explicit port, empty when absent
};

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// Splits "scheme://host[:port]" (an Origin carries no path); nullopt when malformed.
std::optional<origin_parts> split_origin(std::string_view text) {
  auto sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) return std::nullopt;
  origin_parts out;
  out.scheme = lower(text.substr(0, sep));
  auto rest = text.substr(sep + 3);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty() || rest.find('/') != std::string_view::npos) return std::nullopt;
  if (rest.front() == '[') {  // IPv6 literal
    auto close = rest.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    out.host = lower(rest.substr(0, close + 1));
    rest = rest.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      out.port = std::string(rest.substr(1));
    }
  } else {
    auto colon = rest.rfind(':');
    if (colon != std::string_view::npos) {
      out.port = std::string(rest.substr(colon + 1));
      rest = rest.substr(0, colon);
    }
    out.host = lower(rest);
  }
  if (out.host.empty()) return std::nullopt;
  if (!std::all_of(out.port.begin(), out.port.end(), [](unsigned char c) { return std::isdigit(c); }))
    return std::nullopt;
  return out;
}

bool host_matches(const std::string& pattern_host, const std::string& host) {
  if (pattern_host.rfind("*.", 0) != 0) return pattern_host == host;
  // "*" covers one or more whole labels: host must end in ".suffix" with a non-empty label part before it.
  const std::string suffix = pattern_host.substr(1);  // ".example.com"
  if (host.size() <= suffix.size()) return false;
  if (host.compare(host.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  const std::string labels = host.substr(0, host.size() - suffix.size());
  return !labels.empty() && labels.front() != '.' && labels.back() != '.' &&
         labels.find("..") == std::string::npos;
}

bool pattern_matches(std::string_view pattern, std::string_view origin) {
  if (pattern == "*") return true;
  if (lower(origin) == "null") return false;  // "null" only matches "*"
  auto p = split_origin(pattern);
  auto o = split_origin(origin);
  if (!p || !o) return false;
  return p->scheme == o->scheme && p->port == o->port && host_matches(p->host, o->host);
}

}  // namespace

bool origin_allowed(const std::optional<std::string_view>& origin, const std::vector<std::string>& patterns) {
  if (!origin) return true;
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return pattern_matches(p, *origin); });
}

bool valid_origin_pattern(std::string_view pattern) {
  if (pattern == "*") return true;
  auto parts = split_origin(pattern);
  if (!parts) return false;
  const auto& h = parts->host;
  // A wildcard may only stand as the whole first label.
  auto star = h.find('*');
  if (star == std::string::npos) return true;
  return star == 0 && h.size() > 2 && h[1] == '.' && h.find('*', 1) == std::string::npos;
}

}  // namespace sb::protocol

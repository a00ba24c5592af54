#include "tunnel/io/url.hpp"

#include "protocol/text.hpp"

#include <algorithm>
#include <cctype>

namespace sb::tunnel::io {

std::string url_parts::host_header() const {
  const bool default_port = (port == 80 && (scheme == "ws" || scheme == "http")) ||
                            (port == 443 && (scheme == "wss" || scheme == "https"));
  const auto h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return default_port ? h : h + ":" + std::to_string(port);
}

std::optional<url_parts> parse_url(const std::string& url) {
  auto sep = url.find("://");
  if (sep == std::string::npos) return std::nullopt;
  url_parts out;
  out.scheme = url.substr(0, sep);
  std::transform(out.scheme.begin(), out.scheme.end(), out.scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (out.scheme != "ws" && out.scheme != "wss" && out.scheme != "http" && out.scheme != "https")
    return std::nullopt;
  auto rest = url.substr(sep + 3);
  auto slash = rest.find_first_of("/?");
  auto authority = rest.substr(0, slash);
  if (slash != std::string::npos) out.target = rest.substr(slash);
  if (!out.target.empty() && out.target.front() == '?') out.target = "/" + out.target;
  std::string port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string::npos) return std::nullopt;
    out.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return std::nullopt;
      port_text = authority.substr(close + 2);
    }
  } else {
    auto colon = authority.rfind(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) return std::nullopt;
  if (port_text.empty()) {
    out.port = out.tls() ? 443 : 80;
  } else {
    auto port = protocol::parse_port(port_text);
    if (!port) return std::nullopt;
    out.port = *port;
  }
  return out;
}

}  // namespace sb::tunnel::io

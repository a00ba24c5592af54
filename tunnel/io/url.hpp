#pragma once
// Splits ws://, wss://, http:// and https:// URLs into what a connection needs.
#include <cstdint>
#include <optional>
#include <string>

namespace sb::tunnel::io {

struct url_parts {
  std::string scheme;  // lower case
  std::string host;    // without brackets for IPv6
  std::uint16_t port = 0;
  std::string target = "/";  // path and query
  bool tls() const { return scheme == "wss" || scheme == "https"; }
  std::string host_header() const;
};

std::optional<url_parts> parse_url(const std::string& url);

}  // namespace sb::tunnel::io

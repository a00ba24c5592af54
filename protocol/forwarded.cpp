#include "protocol/forwarded.hpp"

#include "protocol/text.hpp"

#include <arpa/inet.h>

#include <algorithm>

namespace sb::protocol {

namespace {

/// "[2001:db8::1]:443" -> "2001:db8::1", "192.0.2.1:80" -> "192.0.2.1"; anything else is returned as is.
std::string_view strip_port(std::string_view entry) {
  if (!entry.empty() && entry.front() == '[') {
    const auto close = entry.find(']');
    if (close == std::string_view::npos) return entry;
    return entry.substr(1, close - 1);
  }
  const auto colon = entry.find(':');
  if (colon != std::string_view::npos && entry.find(':', colon + 1) == std::string_view::npos)
    return entry.substr(0, colon);  // exactly one colon: IPv4 with a port
  return entry;
}

}  // namespace

bool is_ip_address(std::string_view text) {
  if (text.empty() || text.size() > 45) return false;  // INET6_ADDRSTRLEN - 1
  const std::string copy(text);
  unsigned char buf[16];
  return inet_pton(AF_INET, copy.c_str(), buf) == 1 || inet_pton(AF_INET6, copy.c_str(), buf) == 1;
}

std::optional<std::string> forwarded_client_address(std::string_view x_forwarded_for,
                                                    const std::vector<cidr>& trusted_proxies) {
  std::size_t hops = 0;
  std::string_view rest = x_forwarded_for;
  std::optional<std::string> last_trusted;
  while (!rest.empty()) {
    if (++hops > max_forwarded_hops) return std::nullopt;
    const auto comma = rest.rfind(',');
    const auto raw = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
    const auto entry = strip_port(trim(raw));
    if (entry.empty()) continue;  // "a, , b": an empty element carries no hop
    if (!is_ip_address(entry)) return std::nullopt;
    std::string address(entry);
    if (!any_contains(trusted_proxies, address)) return address;
    last_trusted = std::move(address);
  }
  // Every hop is a trusted proxy: the leftmost one is as close to the client as we can know.
  return last_trusted;
}

}  // namespace sb::protocol

#include "transport/bind_address.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <stdexcept>

namespace sb::transport {

namespace {

bool is_private_v4(std::uint32_t host_order) {
  return (host_order >> 24) == 10 || (host_order >> 20) == ((172u << 4) | 1) ||
         (host_order >> 16) == ((192u << 8) | 168);
}

std::string first_private_v4() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) throw std::runtime_error("bind lan: cannot list network interfaces");
  std::string found;
  for (auto* it = list; it && found.empty(); it = it->ifa_next) {
    if (!it->ifa_addr || it->ifa_addr->sa_family != AF_INET) continue;
    auto* in = reinterpret_cast<sockaddr_in*>(it->ifa_addr);
    if (!is_private_v4(ntohl(in->sin_addr.s_addr))) continue;
    char text[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof text)) found = text;
  }
  freeifaddrs(list);
  if (found.empty()) throw std::runtime_error("bind lan: no private-range IPv4 address on this host");
  return found;
}

}  // namespace

std::string resolve_bind_address(const std::string& bind) {
  if (bind == "loopback") return "127.0.0.1";
  if (bind == "all") return "0.0.0.0";
  if (bind == "lan") return first_private_v4();
  return bind;
}

}  // namespace sb::transport

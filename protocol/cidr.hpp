#pragma once
// CIDR ranges for trustedProxies: IPv4 and IPv6, with IPv4-mapped IPv6 peers matched against IPv4 ranges.
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sb::protocol {

struct cidr {
  std::array<unsigned char, 16> address{};  // IPv4 stored as IPv4-mapped IPv6
  unsigned prefix = 0;                      // in IPv6 bits (IPv4 /24 is stored as /120)
};

/// Parses "10.0.0.0/8", "::1/128" or a bare address (a full-length prefix); nullopt when malformed.
std::optional<cidr> parse_cidr(std::string_view text);
bool cidr_contains(const cidr& range, std::string_view address);
bool any_contains(const std::vector<cidr>& ranges, std::string_view address);

}  // namespace sb::protocol

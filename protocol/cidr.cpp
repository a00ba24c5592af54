#include "protocol/cidr.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace sb::protocol {

namespace {

// Both families in one 16-byte form so a mapped IPv6 peer (::ffff:1.2.3.4) matches an IPv4 range.
std::optional<std::array<unsigned char, 16>> parse_address(std::string_view text, bool& is_v4) {
  std::string s(text);
  std::array<unsigned char, 16> out{};
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    out[10] = 0xff;
    out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    is_v4 = true;
    return out;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(out.data(), &v6, 16);
    is_v4 = false;
    return out;
  }
  return std::nullopt;
}

}  // namespace

std::optional<cidr> parse_cidr(std::string_view text) {
  auto slash = text.find('/');
  bool is_v4 = false;
  auto addr = parse_address(text.substr(0, slash), is_v4);
  if (!addr) return std::nullopt;
  const unsigned max_bits = is_v4 ? 32 : 128;
  unsigned bits = max_bits;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    if (digits.empty()) return std::nullopt;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
    if (ec != std::errc{} || ptr != digits.data() + digits.size() || bits > max_bits) return std::nullopt;
  }
  return cidr{*addr, is_v4 ? bits + 96 : bits};
}

bool cidr_contains(const cidr& range, std::string_view address) {
  bool is_v4 = false;
  auto addr = parse_address(address, is_v4);
  if (!addr) return false;
  unsigned bits = range.prefix;
  for (std::size_t i = 0; i < 16 && bits > 0; ++i) {
    const unsigned take = bits >= 8 ? 8 : bits;
    const unsigned char mask = static_cast<unsigned char>(0xff << (8 - take));
    if (((*addr)[i] & mask) != (range.address[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

bool any_contains(const std::vector<cidr>& ranges, std::string_view address) {
  for (const auto& r : ranges)
    if (cidr_contains(r, address)) return true;
  return false;
}

}  // namespace sb::protocol

// Fuzz target: the HTTP upgrade headers the gateway reads before any WebSocket frame. Input lines:
//   line 1      the header value (Origin, and X-Forwarded-For)
//   lines 2..n  allow-list entries: each is tried as an origin pattern and as a trustedProxies CIDR
// Covers protocol::origin_allowed / valid_origin_pattern, protocol::forwarded_client_address /
// is_ip_address, and protocol::parse_cidr / cidr_contains. Properties: nothing throws; a forwarded address
// returned is an IP literal; a bare address parsed as a CIDR contains itself.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "protocol/cidr.hpp"
#include "protocol/forwarded.hpp"
#include "protocol/origin.hpp"

using namespace sb::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto lines = sb_fuzz::split(sb_fuzz::as_view(data, size), '\n');
  const auto header = lines.front();

  std::vector<std::string> patterns;
  std::vector<cidr> proxies;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::string entry(lines[i]);
    if (valid_origin_pattern(entry)) patterns.push_back(entry);
    if (auto range = parse_cidr(entry)) {
      proxies.push_back(*range);
      if (entry.find('/') == std::string::npos && is_ip_address(entry))
        sb_fuzz::require(cidr_contains(*range, entry), "a bare address is inside its own range");
    }
  }

  (void)origin_allowed(std::nullopt, patterns);
  (void)origin_allowed(header, patterns);
  // Unvalidated patterns too: a configuration check may be skipped by an embedder.
  std::vector<std::string> raw_patterns;
  for (std::size_t i = 1; i < lines.size(); ++i) raw_patterns.emplace_back(lines[i]);
  (void)origin_allowed(header, raw_patterns);

  if (auto client = forwarded_client_address(header, proxies))
    sb_fuzz::require(is_ip_address(*client), "the forwarded client address is an IP literal");
  (void)is_ip_address(header);
  (void)any_contains(proxies, header);
  return 0;
}

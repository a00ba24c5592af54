#pragma once
// Which address a request really came from, when it passed through proxies we trust (PROTOCOL.md
// "Transport": trustedProxies). Every proxy appends the address it received the request from to
// X-Forwarded-For, so only the rightmost entries were written by proxies we trust; anything left of the first
// untrusted hop was written by the client and may be forged.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/cidr.hpp"

namespace sb::protocol {

/// Longest X-Forwarded-For value we look at, and most hops we walk: a client cannot make us scan a
/// megabyte-long header entry by entry.
inline constexpr std::size_t max_forwarded_hops = 32;

/// Walks `x_forwarded_for` (one or more comma-separated header values joined) from the right, skipping hops
/// that are trusted proxies themselves; the first untrusted hop is the client. nullopt when an entry on the
/// way is not an IP address, or the chain is longer than max_forwarded_hops: the caller then keeps the
/// socket's own address. An address of the form "[::1]" or "1.2.3.4:5678" is reduced to its address.
std::optional<std::string> forwarded_client_address(std::string_view x_forwarded_for,
                                                    const std::vector<cidr>& trusted_proxies);

/// True when `text` is an IPv4 or IPv6 address literal (no port, no brackets).
bool is_ip_address(std::string_view text);

}  // namespace sb::protocol

#pragma once
// Origin allow-list (PROTOCOL.md "Transport"): exact origins, "*", and wildcard hosts like
// "https://*.example.com" where "*" stands for one or more whole labels.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sb::protocol {

/// Whether a browser's `Origin` header value is allowed. `origin` is nullopt when the header is absent
/// (non-browser clients), which is always allowed.
bool origin_allowed(const std::optional<std::string_view>& origin, const std::vector<std::string>& patterns);

/// Whether `pattern` is a well-formed allow-list entry; used to reject bad configuration at start.
bool valid_origin_pattern(std::string_view pattern);

}  // namespace sb::protocol

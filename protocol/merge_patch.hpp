#pragma once
// JSON Merge Patch, RFC 7386 section 2.
#include <nlohmann/json.hpp>

namespace sb::protocol {

/// Applies `patch` to `target` in place.
void apply_merge_patch(nlohmann::json& target, const nlohmann::json& patch);

}  // namespace sb::protocol

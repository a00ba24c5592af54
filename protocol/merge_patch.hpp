#pragma once
// JSON Merge Patch, RFC 7386 section 2.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace sb::protocol {

/// Applies `patch` to `target` in place.
void apply_merge_patch(nlohmann::json& target, const nlohmann::json& patch);

/// Session metadata is capped by its serialized size (maxSessionMetadataBytes): without a cap, patches grow
/// it until every session_info frame to every member exceeds maxPayload. Returns the error text when
/// `metadata` is over `max_bytes`.
std::optional<std::string> metadata_over_limit(const nlohmann::json& metadata, std::size_t max_bytes);

}  // namespace sb::protocol

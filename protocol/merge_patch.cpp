#include "protocol/merge_patch.hpp"

namespace sb::protocol {

void apply_merge_patch(nlohmann::json& target, const nlohmann::json& patch) {
  if (!patch.is_object()) {
    target = patch;
    return;
  }
  if (!target.is_object()) target = nlohmann::json::object();
  for (const auto& [key, value] : patch.items()) {
    if (value.is_null())
      target.erase(key);
    else
      apply_merge_patch(target[key], value);
  }
}

std::optional<std::string> metadata_over_limit(const nlohmann::json& metadata, std::size_t max_bytes) {
  const auto size = metadata.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size();
  if (size <= max_bytes) return std::nullopt;
  return "session metadata would be " + std::to_string(size) + " bytes, over maxSessionMetadataBytes (" +
         std::to_string(max_bytes) + ")";
}

}  // namespace sb::protocol

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

}  // namespace sb::protocol

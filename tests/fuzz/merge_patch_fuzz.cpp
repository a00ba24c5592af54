// Fuzz target: JSON Merge Patch (protocol/merge_patch.hpp) as session.patch applies it: a client's patch,
// parsed with parse_untrusted_json, applied to session metadata that earlier patches built. Input: the target
// document, a newline, the patch. Properties: nothing throws; the result dumps; the result nests no deeper
// than the deeper of target and patch (RFC 7386 only copies patch values in), so a bounded patch cannot
// build unbounded metadata; applying the same patch twice changes nothing more (merge patch is idempotent).
#include <algorithm>
#include <cstdint>

#include "fuzz_input.hpp"
#include "protocol/json_bounds.hpp"
#include "protocol/merge_patch.hpp"

using namespace sb::protocol;
using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = sb_fuzz::as_view(data, size);
  const auto nl = text.find('\n');
  if (nl == std::string_view::npos) return 0;
  auto target = parse_untrusted_json(text.substr(0, nl));
  auto patch = parse_untrusted_json(text.substr(nl + 1));
  if (!target.ok() || !patch.ok()) return 0;

  const auto depth_of = [](const json& j) {
    return json_nesting_depth(j.dump(-1, ' ', false, json::error_handler_t::replace), 1 << 20);
  };
  const auto limit = std::max(depth_of(target.value), depth_of(patch.value));

  json result = target.value;
  apply_merge_patch(result, patch.value);
  const auto dumped = result.dump(-1, ' ', false, json::error_handler_t::replace);
  sb_fuzz::require(json_nesting_depth(dumped, 1 << 20) <= std::max<std::size_t>(limit, 1),
                   "a merge result nests no deeper than its inputs");

  json twice = result;
  apply_merge_patch(twice, patch.value);
  sb_fuzz::require(twice == result, "applying a merge patch twice equals applying it once");
  return 0;
}

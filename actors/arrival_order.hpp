#pragma once
// The order in which this node first saw each present client, local or on another node: `hello_ok` shows the
// earliest ones and `presence_list` pages through the rest, each in O(log N + page) however many are present.
// An arrival number never changes while the client stays, so it is a cursor that survives others leaving.
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace sb::actors {

class arrival_order {
 public:
  /// Numbers `id` if it is new; a client already here keeps its place.
  void add(const std::string& id) {
    if (number_.count(id)) return;
    number_.emplace(id, ++last_);
    ids_.emplace(last_, id);
  }

  void remove(const std::string& id) {
    auto it = number_.find(id);
    if (it == number_.end()) return;
    ids_.erase(it->second);
    number_.erase(it);
  }

  std::size_t size() const { return ids_.size(); }

  struct page {
    std::vector<const std::string*> ids;
    std::uint64_t next = 0;  // 0: nothing follows; else the arrival number of the last one on this page
  };

  /// Up to `limit` clients that arrived after number `after` (0: from the first).
  page after(std::uint64_t after, std::size_t limit) const {
    page out;
    auto it = ids_.upper_bound(after);
    std::uint64_t last_shown = 0;
    for (; it != ids_.end() && out.ids.size() < limit; ++it) {
      out.ids.push_back(&it->second);
      last_shown = it->first;
    }
    if (it != ids_.end()) out.next = last_shown;
    return out;
  }

 private:

  std::uint64_t last_ = 0;
  std::unordered_map<std::string, std::uint64_t> number_;
  std::map<std::uint64_t, std::string> ids_;
};

}  // namespace sb::actors

#pragma once
// A watch that restarts (after a reconnect, or a NATS server that lost its store) delivers every live value
// again and then its caught-up marker, but never the deletions it missed while away. watch_sweep remembers
// the keys heard between two markers; at a marker, every key of the watcher's copy not heard since the
// previous one is gone. Sound because each marker follows a full delivery of the live values.
#include <set>
#include <string>
#include <vector>

namespace sb::cluster {

class watch_sweep {
 public:
  /// A live value for `key` arrived.
  void heard(const std::string& key) { heard_.insert(key); }

  /// At a caught-up marker: the keys of `copy` (a map keyed like heard()) to drop. Starts the next round.
  template <class Map>
  std::vector<std::string> stale(const Map& copy) {
    std::vector<std::string> out;
    for (const auto& [key, _] : copy)
      if (!heard_.count(key)) out.push_back(key);
    heard_.clear();
    return out;
  }

 private:
  std::set<std::string> heard_;
};

}  // namespace sb::cluster

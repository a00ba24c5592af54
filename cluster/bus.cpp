#include "cluster/bus.hpp"

namespace sb::cluster {

std::string_view to_string(bus_error e) {
  switch (e) {
    case bus_error::timeout:
      return "timeout";
    case bus_error::no_responders:
      return "no responders";
    case bus_error::unavailable:
      return "unavailable";
    case bus_error::conflict:
      return "conflict";
    case bus_error::not_found:
      return "not found";
    case bus_error::invalid:
      return "invalid";
  }
  return "unknown";
}

std::string_view to_string(link_state s) {
  switch (s) {
    case link_state::connected:
      return "connected";
    case link_state::reconnecting:
      return "reconnecting";
    case link_state::closed:
      return "closed";
  }
  return "unknown";
}

}  // namespace sb::cluster

#include "protocol/auth.hpp"

#include "protocol/ids.hpp"

namespace sb::protocol {

std::optional<std::string> static_token_validator::validate(const std::string& token) const {
  bool match = false;
  // Check every entry so timing does not reveal which one matched.
  for (const auto& t : tokens_) match |= constant_time_equal(t, token);
  if (match) return std::string{};
  return std::nullopt;
}

}  // namespace sb::protocol

#pragma once
// Token validation (the seed's `validateToken`): replaceable by embedding code, e.g. with JWT checks.
#include <optional>
#include <string>
#include <vector>

namespace sb::protocol {

class token_validator {
 public:
  virtual ~token_validator() = default;
  /// nullopt rejects the token; a value accepts it and is the user id (empty: fall back to deviceId, then
  /// clientId). Called from actor threads concurrently: implementations must be thread-safe and not block
  /// long.
  virtual std::optional<std::string> validate(const std::string& token) const = 0;
};

/// Accepts any token of a fixed list, compared in constant time.
class static_token_validator : public token_validator {
 public:
  explicit static_token_validator(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {}
  std::optional<std::string> validate(const std::string& token) const override;

 private:
  std::vector<std::string> tokens_;
};

}  // namespace sb::protocol

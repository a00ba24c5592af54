#pragma once
// Identifier generation: random ids for clients, nodes, sessions and server messages.
#include <string>

namespace sb::protocol {

/// `prefix` followed by 16 random hex digits from a CSPRNG.
std::string random_id(const std::string& prefix);
/// A secret of `bytes` random bytes, as URL-safe text (for generated auth tokens).
std::string random_token(std::size_t bytes = 32);
/// Compares secrets in time independent of where they differ.
bool constant_time_equal(const std::string& a, const std::string& b);

}  // namespace sb::protocol

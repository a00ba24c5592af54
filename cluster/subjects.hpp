#pragma once
// Names on the bus, sans-I/O: subject matching (the in-process bus needs it; NATS does it itself), and the
// encoding that turns any client-chosen id into one subject token or KV key.
#include <string>
#include <string_view>

namespace sb::cluster {

/// True when `subject` (no wildcards) matches `pattern` (NATS rules: '*' one token, '>' one or more at the end).
bool subject_matches(std::string_view pattern, std::string_view subject);

/// A subject or pattern NATS accepts: non-empty tokens of printable characters without spaces, '>' last only.
bool valid_subject(std::string_view subject, bool allow_wildcards);

/// A KV key NATS accepts: letters, digits and `-_=./`, not starting or ending with '.'.
bool valid_key(std::string_view key);

/// One token for any id: letters, digits, '-' and '_' stay, every other byte becomes "=XX" (hex). The result
/// is a valid subject token and KV key, and distinct ids never share one.
std::string encode_token(std::string_view id);
/// The id back; empty when `token` is not an encoding.
std::string decode_token(std::string_view token);

}  // namespace sb::cluster

#include "cluster/subjects.hpp"

#include <cctype>

namespace sb::cluster {

namespace {

/// Splits off the token before the next '.', advancing `rest` past it.
std::string_view next_token(std::string_view& rest) {
  const auto dot = rest.find('.');
  auto token = rest.substr(0, dot);
  rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
  return token;
}

bool plain_token_char(unsigned char c) { return std::isalnum(c) || c == '-' || c == '_'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool subject_matches(std::string_view pattern, std::string_view subject) {
  if (pattern.empty() || subject.empty()) return false;
  while (true) {
    const bool pattern_done = pattern.empty(), subject_done = subject.empty();
    if (pattern_done || subject_done) return pattern_done && subject_done;
    const auto p = next_token(pattern);
    const auto s = next_token(subject);
    if (p == ">") return true;
    if (p != "*" && p != s) return false;
    // "a.b" against "a.b." must not match: a trailing dot leaves an empty last token.
    if (pattern.empty() != subject.empty()) return false;
  }
}

bool valid_subject(std::string_view subject, bool allow_wildcards) {
  if (subject.empty() || subject.size() > 4096) return false;
  std::string_view rest = subject;
  while (true) {
    const bool last = rest.find('.') == std::string_view::npos;
    const auto token = next_token(rest);
    if (token.empty()) return false;
    for (unsigned char c : token)
      if (c <= ' ' || c == 0x7f) return false;
    const bool wildcard = token == "*" || token == ">";
    if (!wildcard && (token.find('*') != std::string_view::npos || token.find('>') != std::string_view::npos))
      return false;
    if (wildcard && !allow_wildcards) return false;
    if (token == ">" && !last) return false;
    if (last) return true;
  }
}

bool valid_key(std::string_view key) {
  if (key.empty() || key.size() > 1024 || key.front() == '.' || key.back() == '.') return false;
  for (unsigned char c : key)
    if (!(std::isalnum(c) || c == '-' || c == '_' || c == '=' || c == '.' || c == '/')) return false;
  return true;
}

std::string encode_token(std::string_view id) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(id.size());
  for (unsigned char c : id) {
    if (plain_token_char(c)) {
      out += static_cast<char>(c);
    } else {
      out += '=';
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

std::string decode_token(std::string_view token) {
  std::string out;
  for (std::size_t i = 0; i < token.size(); ++i) {
    const auto c = static_cast<unsigned char>(token[i]);
    if (plain_token_char(c)) {
      out += static_cast<char>(c);
      continue;
    }
    if (c != '=' || i + 2 >= token.size()) return {};
    const int hi = hex_value(token[i + 1]), lo = hex_value(token[i + 2]);
    if (hi < 0 || lo < 0) return {};
    const auto decoded = static_cast<unsigned char>(hi * 16 + lo);
    if (plain_token_char(decoded)) return {};  // not what encode_token makes: one id, one token
    out += static_cast<char>(decoded);
    i += 2;
  }
  return out;
}

}  // namespace sb::cluster

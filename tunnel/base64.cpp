#include "tunnel/base64.hpp"

#include <array>
#include <cstdint>

namespace sb::tunnel {

namespace {

constexpr char std_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string encode(std::string_view bytes, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = static_cast<std::uint8_t>(bytes[i]) << 16 |
                            static_cast<std::uint8_t>(bytes[i + 1]) << 8 |
                            static_cast<std::uint8_t>(bytes[i + 2]);
    out.push_back(alphabet[v >> 18 & 63]);
    out.push_back(alphabet[v >> 12 & 63]);
    out.push_back(alphabet[v >> 6 & 63]);
    out.push_back(alphabet[v & 63]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t v = static_cast<std::uint8_t>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<std::uint8_t>(bytes[i + 1]) << 8;
    out.push_back(alphabet[v >> 18 & 63]);
    out.push_back(alphabet[v >> 12 & 63]);
    if (rest == 2) out.push_back(alphabet[v >> 6 & 63]);
    if (pad) out.append(rest == 1 ? "==" : "=");
  }
  return out;
}

std::array<std::int8_t, 256> reverse_table(const char* alphabet) {
  std::array<std::int8_t, 256> table{};
  table.fill(-1);
  for (int i = 0; i < 64; ++i) table[static_cast<std::uint8_t>(alphabet[i])] = static_cast<std::int8_t>(i);
  return table;
}

// `text` carries no padding here; callers strip or reject it first.
std::optional<std::string> decode(std::string_view text, const std::array<std::int8_t, 256>& table) {
  // A lone sixth-bit group cannot encode a whole byte.
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int v = table[static_cast<std::uint8_t>(c)];
    if (v < 0) return std::nullopt;
    acc = acc << 6 | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>(acc >> bits & 0xff));
    }
  }
  // Leftover bits must be zero, or two texts would decode to the same bytes (a malleable signature).
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

}  // namespace

std::string base64_encode(std::string_view bytes) { return encode(bytes, std_alphabet, true); }

std::optional<std::string> base64_decode(std::string_view text) {
  static const auto table = reverse_table(std_alphabet);
  if (!text.empty() && text.size() % 4 == 0) {
    if (text.back() == '=') text.remove_suffix(1);
    if (!text.empty() && text.back() == '=') text.remove_suffix(1);
  }
  return decode(text, table);
}

std::string base64url_encode(std::string_view bytes) { return encode(bytes, url_alphabet, false); }

std::optional<std::string> base64url_decode(std::string_view text) {
  static const auto table = reverse_table(url_alphabet);
  return decode(text, table);
}

}  // namespace sb::tunnel

#pragma once
// SSH wire encoding (RFC 4251 §5): byte, boolean, uint32, uint64, string, mpint, name-list.
// The reader never throws: a short or malformed input sets a failure flag the caller checks once at the end.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sb::tunnel::ssh {

using bytes = std::vector<std::uint8_t>;

inline std::string_view as_text(const bytes& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline bytes to_bytes(std::string_view s) { return bytes(s.begin(), s.end()); }

class writer {
 public:
  writer& u8(std::uint8_t v);
  writer& boolean(bool v) { return u8(v ? 1 : 0); }
  writer& u32(std::uint32_t v);
  writer& u64(std::uint64_t v);
  writer& string(std::string_view s);
  writer& string(const bytes& b);
  /// A non-negative big-endian integer given as its magnitude bytes (leading zeros are trimmed, a sign byte
  /// added).
  writer& mpint(const bytes& magnitude);
  writer& name_list(const std::vector<std::string>& names);
  writer& raw(const bytes& b);
  writer& raw(const std::uint8_t* p, std::size_t n);

  const bytes& data() const { return buf_; }
  bytes take() { return std::move(buf_); }

 private:
  bytes buf_;
};

class reader {
 public:
  reader(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
  explicit reader(const bytes& b) : p_(b.data()), n_(b.size()) {}

  std::uint8_t u8();
  bool boolean() { return u8() != 0; }
  std::uint32_t u32();
  std::uint64_t u64();
  bytes string_bytes();
  std::string string();
  /// Magnitude bytes of a non-negative mpint; negative values fail the reader.
  bytes mpint();
  std::vector<std::string> name_list();
  bytes rest();

  bool ok() const { return ok_; }
  bool at_end() const { return n_ == 0; }
  std::size_t remaining() const { return n_; }

 private:
  bool take(std::size_t n, const std::uint8_t*& out);
  const std::uint8_t* p_;
  std::size_t n_;
  bool ok_ = true;
};

std::vector<std::string> split_names(std::string_view list);
std::string join_names(const std::vector<std::string>& names);

}  // namespace sb::tunnel::ssh

#include "tunnel/ssh/wire.hpp"

#include <limits>

namespace sb::tunnel::ssh {

// An SSH packet is at most 256 KiB here (see transport.cpp); no field can be longer.
constexpr std::uint32_t max_field = 1u << 20;

writer& writer::u8(std::uint8_t v) {
  buf_.push_back(v);
  return *this;
}

writer& writer::u32(std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) buf_.push_back(static_cast<std::uint8_t>(v >> s));
  return *this;
}

writer& writer::u64(std::uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) buf_.push_back(static_cast<std::uint8_t>(v >> s));
  return *this;
}

writer& writer::string(std::string_view s) {
  u32(static_cast<std::uint32_t>(s.size()));
  buf_.insert(buf_.end(), s.begin(), s.end());
  return *this;
}

writer& writer::string(const bytes& b) { return string(as_text(b)); }

writer& writer::mpint(const bytes& magnitude) {
  std::size_t start = 0;
  while (start < magnitude.size() && magnitude[start] == 0) ++start;
  const bool sign_pad = start < magnitude.size() && (magnitude[start] & 0x80);
  u32(static_cast<std::uint32_t>(magnitude.size() - start + (sign_pad ? 1 : 0)));
  if (sign_pad) buf_.push_back(0);
  buf_.insert(buf_.end(), magnitude.begin() + static_cast<long>(start), magnitude.end());
  return *this;
}

writer& writer::name_list(const std::vector<std::string>& names) { return string(join_names(names)); }

writer& writer::raw(const bytes& b) { return raw(b.data(), b.size()); }

writer& writer::raw(const std::uint8_t* p, std::size_t n) {
  buf_.insert(buf_.end(), p, p + n);
  return *this;
}

bool reader::take(std::size_t n, const std::uint8_t*& out) {
  if (!ok_ || n > n_) {
    ok_ = false;
    return false;
  }
  out = p_;
  p_ += n;
  n_ -= n;
  return true;
}

std::uint8_t reader::u8() {
  const std::uint8_t* p;
  return take(1, p) ? p[0] : 0;
}

std::uint32_t reader::u32() {
  const std::uint8_t* p;
  if (!take(4, p)) return 0;
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}

std::uint64_t reader::u64() {
  const std::uint64_t hi = u32();
  return (hi << 32) | u32();
}

bytes reader::string_bytes() {
  const auto n = u32();
  const std::uint8_t* p;
  if (n > max_field || !take(n, p)) {
    ok_ = false;
    return {};
  }
  return bytes(p, p + n);
}

std::string reader::string() {
  auto b = string_bytes();
  return std::string(b.begin(), b.end());
}

bytes reader::mpint() {
  auto b = string_bytes();
  if (!b.empty() && (b[0] & 0x80)) {
    ok_ = false;
    return {};
  }
  std::size_t start = 0;
  while (start < b.size() && b[start] == 0) ++start;
  return bytes(b.begin() + static_cast<long>(start), b.end());
}

std::vector<std::string> reader::name_list() { return split_names(string()); }

bytes reader::rest() {
  bytes out(p_, p_ + n_);
  p_ += n_;
  n_ = 0;
  return out;
}

std::vector<std::string> split_names(std::string_view list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < list.size()) {
    auto comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    if (comma > start) out.emplace_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out.push_back(',');
    out += n;
  }
  return out;
}

}  // namespace sb::tunnel::ssh

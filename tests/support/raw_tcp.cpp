#include "support/raw_tcp.hpp"

#include <random>
#include <vector>

namespace sb::test {

namespace net = boost::asio;
using tcp = net::ip::tcp;

raw_tcp::raw_tcp(std::uint16_t port) : socket_(ioc_) {
  socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
}

void raw_tcp::write(const std::string& bytes) { net::write(socket_, net::buffer(bytes)); }

bool raw_tcp::read_some(std::chrono::milliseconds timeout) {
  if (eof_) return false;
  char chunk[16384];
  bool got = false;
  socket_.async_read_some(net::buffer(chunk), [&](boost::system::error_code ec, std::size_t n) {
    if (ec) {
      eof_ = true;
      return;
    }
    received_.append(chunk, n);
    got = true;
  });
  ioc_.restart();
  ioc_.run_for(timeout);
  if (!ioc_.stopped()) {  // timed out: cancel and let the handler run before `chunk` goes out of scope
    socket_.cancel();
    ioc_.restart();
    ioc_.run();
  }
  return got;
}

bool raw_tcp::read_until(const std::string& text, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (received_.find(text) == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !read_some(left)) return received_.find(text) != std::string::npos;
  }
  return true;
}

bool raw_tcp::read_frames(std::size_t count, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (parse_server_frames(after_header()).size() < count) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !read_some(left)) return false;
  }
  return true;
}

bool raw_tcp::read_to_eof(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!eof_) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    read_some(left);
  }
  return true;
}

int raw_tcp::http_status() const {
  if (received_.rfind("HTTP/1.1 ", 0) != 0 || received_.size() < 12) return 0;
  return std::stoi(received_.substr(9, 3));
}

std::string raw_tcp::after_header() const {
  const auto end = received_.find("\r\n\r\n");
  return end == std::string::npos ? std::string() : received_.substr(end + 4);
}

std::string upgrade_request(const std::string& path, const std::string& key, const std::string& extra) {
  return "GET " + path +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " +
         key + "\r\n" + extra + "\r\n";
}

std::string client_frame(std::uint8_t opcode, const std::string& payload, bool rsv1) {
  std::string out;
  out.push_back(static_cast<char>(0x80 | (rsv1 ? 0x40 : 0) | opcode));
  const auto n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n < 65536) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i)
      out.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xff));
  }
  static std::mt19937 rng{12345};
  unsigned char mask[4];
  for (auto& m : mask) m = static_cast<unsigned char>(rng());
  out.append(reinterpret_cast<const char*>(mask), 4);
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  return out;
}

std::string client_close(std::uint16_t code) {
  std::string body;
  body.push_back(static_cast<char>(code >> 8));
  body.push_back(static_cast<char>(code & 0xff));
  return client_frame(0x8, body);
}

std::vector<server_frame> parse_server_frames(const std::string& bytes) {
  std::vector<server_frame> frames;
  std::size_t i = 0;
  while (i + 2 <= bytes.size()) {
    const auto b0 = static_cast<unsigned char>(bytes[i]);
    const auto b1 = static_cast<unsigned char>(bytes[i + 1]);
    std::size_t len = b1 & 0x7f;
    std::size_t head = 2;
    if (len == 126) {
      if (i + 4 > bytes.size()) break;
      len = (static_cast<unsigned char>(bytes[i + 2]) << 8) | static_cast<unsigned char>(bytes[i + 3]);
      head = 4;
    } else if (len == 127) {
      if (i + 10 > bytes.size()) break;
      len = 0;
      for (int k = 0; k < 8; ++k) len = (len << 8) | static_cast<unsigned char>(bytes[i + 2 + k]);
      head = 10;
    }
    if (i + head + len > bytes.size()) break;
    frames.push_back({static_cast<std::uint8_t>(b0 & 0x0f), bytes.substr(i + head, len)});
    i += head + len;
  }
  return frames;
}

std::optional<std::uint16_t> close_code_in(const std::vector<server_frame>& frames) {
  for (const auto& f : frames)
    if (f.opcode == 0x8 && f.payload.size() >= 2)
      return static_cast<std::uint16_t>((static_cast<unsigned char>(f.payload[0]) << 8) |
                                        static_cast<unsigned char>(f.payload[1]));
  return std::nullopt;
}

}  // namespace sb::test

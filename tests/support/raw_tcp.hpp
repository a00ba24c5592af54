#pragma once
// A bare TCP client for tests that must send what no well-behaved WebSocket library would: malformed
// handshakes, frames glued to the upgrade request, invalid close codes, corrupt compressed data.
#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace sb::test {

class raw_tcp {
 public:
  explicit raw_tcp(std::uint16_t port);
  void write(const std::string& bytes);
  /// Reads until `bytes()` contains `text` or the timeout passes; false on timeout or EOF without it.
  bool read_until(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// Reads until the peer closes the connection (true) or the timeout passes (false).
  bool read_to_eof(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// Reads until at least `count` whole server frames follow the HTTP response header.
  bool read_frames(std::size_t count, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  const std::string& bytes() const { return received_; }
  /// The HTTP status of the response at the start of what was received, 0 if none.
  int http_status() const;
  /// Everything after the end of the HTTP response header.
  std::string after_header() const;

 private:
  bool read_some(std::chrono::milliseconds timeout);

  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  std::string received_;
  bool eof_ = false;
};

/// An HTTP/1.1 WebSocket upgrade request for 127.0.0.1; `key` and `extra` headers as given.
std::string upgrade_request(const std::string& path = "/ws",
                            const std::string& key = "dGhlIHNhbXBsZSBub25jZQ==",
                            const std::string& extra = "");
/// One masked client frame (RFC 6455 5.2). `rsv1` marks a permessage-deflate compressed message.
std::string client_frame(std::uint8_t opcode, const std::string& payload, bool rsv1 = false);
/// A client close frame with `code` and no reason.
std::string client_close(std::uint16_t code);

struct server_frame {
  std::uint8_t opcode = 0;
  std::string payload;
};
/// The server frames (unmasked, unfragmented) at the start of `bytes`, as far as they are complete.
std::vector<server_frame> parse_server_frames(const std::string& bytes);
/// The code of the first close frame in `frames`, if any.
std::optional<std::uint16_t> close_code_in(const std::vector<server_frame>& frames);

}  // namespace sb::test

#pragma once
// A sans-I/O SSH session: bytes in, bytes out, events up. It covers what Dev Tunnels needs and stock
// libraries lack: the `none` key exchange (V1's zero-cookie form and V2's negotiated form), the server role,
// and channel opens and confirmations with extra fields. Real key exchange: ecdh-sha2-nistp384/256 with an
// ecdsa-sha2-nistp384 host key; aes256-gcm@openssh.com or aes256-ctr with hmac-sha2-256/512 (-etm). User
// auth: `none`, and `publickey` (ECDSA P-384) for a client facing OpenSSH. Peer-initiated re-keying works.
//
//   version --> kexinit --(none)--------------------------------> ready
//                   \--(ecdh)--> newkeys --> userauth (client/server) --> ready --> closed
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "tunnel/ssh/crypto.hpp"
#include "tunnel/ssh/packet.hpp"
#include "tunnel/ssh/wire.hpp"

namespace sb::tunnel::ssh {

enum class role { client, server };

namespace msg {
enum : std::uint8_t {
  disconnect = 1,
  ignore = 2,
  unimplemented = 3,
  debug = 4,
  service_request = 5,
  service_accept = 6,
  ext_info = 7,
  kexinit = 20,
  newkeys = 21,
  kex_ecdh_init = 30,
  kex_ecdh_reply = 31,
  userauth_request = 50,
  userauth_failure = 51,
  userauth_success = 52,
  userauth_banner = 53,
  userauth_pk_ok = 60,
  global_request = 80,
  request_success = 81,
  request_failure = 82,
  channel_open = 90,
  channel_open_confirmation = 91,
  channel_open_failure = 92,
  channel_window_adjust = 93,
  channel_data = 94,
  channel_extended_data = 95,
  channel_eof = 96,
  channel_close = 97,
  channel_request = 98,
  channel_success = 99,
  channel_failure = 100,
};
}  // namespace msg

/// SSH_MSG_DISCONNECT reason codes (RFC 4253 §11.1).
namespace disconnect_reason {
inline constexpr std::uint32_t protocol_error = 2;
inline constexpr std::uint32_t key_exchange_failed = 3;
inline constexpr std::uint32_t mac_error = 5;
inline constexpr std::uint32_t service_not_available = 7;
inline constexpr std::uint32_t host_key_not_verifiable = 9;
inline constexpr std::uint32_t connection_lost = 10;
inline constexpr std::uint32_t by_application = 11;
inline constexpr std::uint32_t too_many_connections = 12;
inline constexpr std::uint32_t auth_cancelled_by_user = 13;
inline constexpr std::uint32_t no_more_auth_methods = 14;
}  // namespace disconnect_reason

/// SSH_MSG_CHANNEL_OPEN_FAILURE reason codes (RFC 4254 §5.1).
namespace open_failure {
inline constexpr std::uint32_t administratively_prohibited = 1;
inline constexpr std::uint32_t connect_failed = 2;
inline constexpr std::uint32_t unknown_channel_type = 3;
inline constexpr std::uint32_t resource_shortage = 4;
}  // namespace open_failure

struct session_config {
  ssh::role role = role::client;
  /// Offered key exchanges, in preference order; "none" first lets a Dev Tunnels V2 peer skip encryption.
  std::vector<std::string> kex = {"ecdh-sha2-nistp384", "ecdh-sha2-nistp256"};
  /// V1's no-security session: a zero-cookie KEXINIT of "none" everywhere, then straight to channels.
  bool static_none = false;
  std::vector<std::string> ciphers = {"aes256-gcm@openssh.com", "aes256-ctr"};
  std::vector<std::string> macs = {"hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com",
                                   "hmac-sha2-512", "hmac-sha2-256"};
  std::shared_ptr<const ecdsa_key> host_key;                        // server role
  std::function<bool(const bytes& host_key_blob)> accept_host_key;  // client role; unset accepts any
  std::string user = "tunnel";                                      // client role
  std::shared_ptr<const ecdsa_key> client_key;  // client role: publickey when "none" is refused
  /// Server role: whether `user` may log in with `method` ("none" or "publickey" after its signature
  /// checked).
  std::function<bool(const std::string& user, const std::string& method, const bytes& key_blob)> accept_auth;
  std::string version = "SSH-2.0-switchboard_0.1";
  std::uint32_t window = 1024 * 1024;  // per channel, what we grant the peer
  std::uint32_t max_packet = 32 * 1024;
};

namespace ev {
struct ready {};
struct global_request {
  std::string name;
  bool want_reply;
  bytes data;
};
struct global_reply {
  bool success;
  bytes data;
};
/// A peer wants a channel: answer with accept_channel or reject_channel. `data` is what follows the four
/// standard fields (for forwarded-tcpip: host, port, originator; then Dev Tunnels extensions).
struct channel_open {
  std::uint32_t id;
  std::string type;
  bytes data;
};
struct channel_confirmed {
  std::uint32_t id;
  bytes data;
};
struct channel_failed {
  std::uint32_t id;
  std::uint32_t reason;
  std::string message;
};
struct channel_data {
  std::uint32_t id;
  bytes data;
};
struct channel_eof {
  std::uint32_t id;
};
struct channel_closed {
  std::uint32_t id;
};
struct channel_request {
  std::uint32_t id;
  std::string name;
  bool want_reply;
  bytes data;
};
struct channel_writable {
  std::uint32_t id;
};
struct disconnected {
  std::uint32_t reason;
  std::string message;
  bool by_peer;
};
}  // namespace ev

using event = std::variant<ev::ready, ev::global_request, ev::global_reply, ev::channel_open,
                           ev::channel_confirmed, ev::channel_failed, ev::channel_data, ev::channel_eof,
                           ev::channel_closed, ev::channel_request, ev::channel_writable, ev::disconnected>;

class session {
 public:
  explicit session(session_config config);
  ~session();

  /// Queues the version line and the first KEXINIT.
  void start();
  void receive(const std::uint8_t* data, std::size_t n);
  void receive(const bytes& data) { receive(data.data(), data.size()); }
  /// Bytes to write to the peer, in order.
  bytes take_output();
  bool has_output() const { return !out_.empty(); }
  std::optional<event> poll();

  bool ready() const { return state_ == state::ready; }
  bool closed() const { return state_ == state::closed; }
  const bytes& session_id() const { return session_id_; }
  const std::string& negotiated_kex() const { return kex_alg_; }
  const std::string& peer_version() const { return peer_version_; }

  // -- connection protocol (RFC 4254); valid once ready ---------------------------------------------------
  void global_request(const std::string& name, bool want_reply, const bytes& data = {});
  void global_reply(bool success, const bytes& data = {});
  /// Opens a channel; `data` follows the four standard fields. Returns our channel id.
  std::uint32_t open_channel(const std::string& type, const bytes& data = {});
  void accept_channel(std::uint32_t id, const bytes& data = {});
  void reject_channel(std::uint32_t id, std::uint32_t reason, const std::string& message);
  /// Queues channel data; what the peer's window does not take yet waits here. Returns bytes still waiting.
  std::size_t send(std::uint32_t id, const std::uint8_t* data, std::size_t n);
  std::size_t send(std::uint32_t id, const bytes& data) { return send(id, data.data(), data.size()); }
  std::size_t pending(std::uint32_t id) const;
  /// The application has taken `n` received bytes: the peer may send that much more.
  void consumed(std::uint32_t id, std::size_t n);
  void send_eof(std::uint32_t id);
  void close_channel(std::uint32_t id);
  void channel_request(std::uint32_t id, const std::string& name, bool want_reply, const bytes& data = {});
  void channel_reply(std::uint32_t id, bool success);
  bool channel_open(std::uint32_t id) const;
  void disconnect(std::uint32_t reason, const std::string& message);
  /// Starts a new key exchange on an encrypted session (no-op for a `none` session).
  void rekey();

 private:
  enum class state { version, kex, auth, ready, closed };
  struct channel;
  struct kex_state;

  void on_packet(bytes payload);
  void on_transport_packet(std::uint8_t type, reader& r, const bytes& payload);
  void on_kexinit(const bytes& payload);
  void on_ecdh_init(reader& r);
  void on_ecdh_reply(reader& r);
  void on_newkeys();
  void on_service_request(reader& r);
  void on_service_accept();
  void on_userauth_request(reader& r);
  void on_userauth_result(std::uint8_t type, reader& r);
  void on_connection_packet(std::uint8_t type, reader& r);
  void send_kexinit();
  void derive_keys(const bytes& shared, const bytes& exchange_hash);
  void finish_kex();
  void become_ready();
  void send_userauth_none();
  void send_userauth_publickey();
  void send_packet(const bytes& payload);
  void send_transport(const bytes& payload);
  void flush_channel(channel& ch);
  void fail(std::uint32_t reason, const std::string& message);
  channel* find(std::uint32_t id);
  const channel* find(std::uint32_t id) const;

  session_config cfg_;
  state state_ = state::version;
  bytes out_;
  std::deque<event> events_;
  std::string version_line_buffer_;
  std::string peer_version_;
  packet_sealer sealer_;
  packet_opener opener_;
  bytes session_id_;
  std::string kex_alg_;
  std::unique_ptr<kex_state> kex_;
  std::deque<bytes> held_;  // connection packets held back while a (re-)key exchange runs
  bool authenticated_ = false;
  bool publickey_tried_ = false;
  std::map<std::uint32_t, std::unique_ptr<channel>> channels_;
  std::uint32_t next_channel_ = 0;
};

}  // namespace sb::tunnel::ssh

#include "tunnel/ssh/session.hpp"

#include <openssl/obj_mac.h>

#include <algorithm>

namespace sb::tunnel::ssh {

namespace {

constexpr std::size_t max_version_buffer =
    8 * 1024;  // RFC 4253 §4.2 lets a server send lines before its version
constexpr std::size_t channel_chunk = 32 * 1024;

std::optional<std::string> choose(const std::vector<std::string>& client,
                                  const std::vector<std::string>& server) {
  for (const auto& c : client)
    if (std::find(server.begin(), server.end(), c) != server.end()) return c;
  return std::nullopt;
}

struct kex_params {
  int nid;
  hash_kind hash;
};

std::optional<kex_params> kex_params_for(const std::string& name) {
  if (name == "ecdh-sha2-nistp384") return kex_params{NID_secp384r1, hash_kind::sha384};
  if (name == "ecdh-sha2-nistp256") return kex_params{NID_X9_62_prime256v1, hash_kind::sha256};
  return std::nullopt;
}

}  // namespace

struct session::channel {
  std::uint32_t id = 0;
  std::uint32_t remote_id = 0;
  bool confirmed = false;
  std::uint32_t remote_window = 0;
  std::uint32_t remote_max_packet = 0;
  std::uint32_t local_window = 0;
  std::size_t unacknowledged = 0;  // received and consumed, not yet granted back
  bytes pending;
  bool eof_queued = false, eof_sent = false, eof_received = false;
  bool close_queued = false, close_sent = false, close_received = false;
  bool blocked = false;   // pending data waited for window: tell the app when it drains
  bool incoming = false;  // opened by the peer: closing it before accepting means refusing it
};

struct session::kex_state {
  bytes ours, theirs;  // KEXINIT payloads, for the exchange hash
  bool sent = false, received = false;
  std::string enc_cs, enc_sc, mac_cs, mac_sc;
  std::optional<ecdh_key> ecdh;
  kex_params params{};
  cipher_keys out_keys, in_keys;
  bool keys_ready = false;
  bool newkeys_sent = false, newkeys_received = false;
  bool skip_guess = false;
};

session::session(session_config config) : cfg_(std::move(config)) {}
session::~session() = default;

void session::start() {
  const auto line = cfg_.version + "\r\n";
  out_.insert(out_.end(), line.begin(), line.end());
  kex_ = std::make_unique<kex_state>();
  send_kexinit();
}

bytes session::take_output() { return std::move(out_); }

std::optional<event> session::poll() {
  if (events_.empty()) return std::nullopt;
  auto e = std::move(events_.front());
  events_.pop_front();
  return e;
}

// -- input --------------------------------------------------------------------------------------------------

void session::receive(const std::uint8_t* data, std::size_t n) {
  if (state_ == state::closed) return;
  if (state_ == state::version) {
    version_line_buffer_.append(reinterpret_cast<const char*>(data), n);
    for (;;) {
      auto eol = version_line_buffer_.find('\n');
      if (eol == std::string::npos) {
        if (version_line_buffer_.size() > max_version_buffer)
          return fail(disconnect_reason::protocol_error, "no version line");
        return;
      }
      auto line = version_line_buffer_.substr(0, eol);
      version_line_buffer_.erase(0, eol + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.rfind("SSH-", 0) != 0) continue;
      if (line.rfind("SSH-2.0-", 0) != 0 && line.rfind("SSH-1.99-", 0) != 0)
        return fail(disconnect_reason::protocol_error, "unsupported SSH version: " + line);
      peer_version_ = line;
      state_ = state::kex;
      const bytes rest(version_line_buffer_.begin(), version_line_buffer_.end());
      version_line_buffer_.clear();
      data = nullptr;
      opener_.feed(rest.data(), rest.size());
      break;
    }
  } else {
    opener_.feed(data, n);
  }
  bytes payload;
  while (state_ != state::closed) {
    const auto st = opener_.next(payload);
    if (st == packet_opener::status::need_more) break;
    if (st == packet_opener::status::error)
      return fail(disconnect_reason::mac_error, "corrupt packet or bad MAC");
    on_packet(std::move(payload));
  }
}

void session::on_packet(bytes payload) {
  if (payload.empty()) return fail(disconnect_reason::protocol_error, "empty packet");
  reader r(payload.data() + 1, payload.size() - 1);
  const auto type = payload[0];
  if (kex_ && kex_->skip_guess && type >= 30 && type <= 49) {
    kex_->skip_guess = false;  // the peer's wrong first-kex guess (RFC 4253 §7)
    return;
  }
  if (type < 50) return on_transport_packet(type, r, payload);
  if (type < 80) {
    // RFC 4252 §5.1: authentication requests after success are ignored.
    if (state_ == state::ready) return;
    if (state_ != state::auth)
      return fail(disconnect_reason::protocol_error, "authentication message out of place");
    if (cfg_.role == role::server && type == msg::userauth_request) return on_userauth_request(r);
    if (cfg_.role == role::client) return on_userauth_result(type, r);
    return;
  }
  if (state_ != state::ready)
    return fail(disconnect_reason::protocol_error, "connection message before authentication");
  on_connection_packet(type, r);
}

void session::on_transport_packet(std::uint8_t type, reader& r, const bytes& payload) {
  switch (type) {
    case msg::disconnect: {
      const auto reason = r.u32();
      const auto text = r.string();
      state_ = state::closed;
      events_.push_back(ev::disconnected{reason, text, true});
      return;
    }
    case msg::ignore:
    case msg::debug:
    case msg::unimplemented:
    case msg::ext_info:
      return;
    case msg::kexinit:
      return on_kexinit(payload);
    case msg::kex_ecdh_init:
      return on_ecdh_init(r);
    case msg::kex_ecdh_reply:
      return on_ecdh_reply(r);
    case msg::newkeys:
      return on_newkeys();
    case msg::service_request:
      return on_service_request(r);
    case msg::service_accept:
      return on_service_accept();
    default:
      send_transport(writer().u8(msg::unimplemented).u32(opener_.sequence() - 1).take());
  }
}

// -- key exchange -------------------------------------------------------------------------------------------

void session::send_kexinit() {
  writer w;
  w.u8(msg::kexinit);
  const std::vector<std::string> none = {"none"};
  if (cfg_.static_none) {
    // Dev Tunnels V1: a fixed KEXINIT with a zero cookie and "none" everywhere (devtunnels-protocol.md §2).
    for (int i = 0; i < 16; ++i) w.u8(0);
    for (int i = 0; i < 8; ++i) w.name_list(none);
  } else {
    w.raw(random_bytes(16));
    w.name_list(cfg_.kex);
    w.name_list(cfg_.role == role::server ? std::vector<std::string>{ecdsa_p384_name}
                                          : std::vector<std::string>{ecdsa_p384_name, "ecdsa-sha2-nistp256"});
    w.name_list(cfg_.ciphers).name_list(cfg_.ciphers).name_list(cfg_.macs).name_list(cfg_.macs);
    w.name_list(none).name_list(none);
  }
  w.name_list({}).name_list({}).boolean(false).u32(0);
  kex_->ours = w.take();
  kex_->sent = true;
  send_transport(kex_->ours);
}

void session::on_kexinit(const bytes& payload) {
  if (!kex_) kex_ = std::make_unique<kex_state>();  // the peer starts a re-key
  if (kex_->received) return fail(disconnect_reason::protocol_error, "second KEXINIT during key exchange");
  kex_->theirs = payload;
  kex_->received = true;
  if (!kex_->sent) send_kexinit();

  reader r(payload.data() + 17, payload.size() > 17 ? payload.size() - 17 : 0);
  std::vector<std::vector<std::string>> lists;
  for (int i = 0; i < 10; ++i) lists.push_back(r.name_list());
  const bool guess_follows = r.boolean();
  if (!r.ok() || payload.size() < 17) return fail(disconnect_reason::protocol_error, "malformed KEXINIT");

  reader mine(kex_->ours.data() + 17, kex_->ours.size() - 17);
  std::vector<std::vector<std::string>> own;
  for (int i = 0; i < 10; ++i) own.push_back(mine.name_list());
  const bool client = cfg_.role == role::client;
  auto pick = [&](int i) { return client ? choose(own[i], lists[i]) : choose(lists[i], own[i]); };

  auto kex = pick(0);
  if (!kex) return fail(disconnect_reason::key_exchange_failed, "no common key exchange algorithm");
  if (guess_follows && (lists[0].empty() || lists[0].front() != *kex)) kex_->skip_guess = true;
  const bool first = session_id_.empty();
  if (*kex == "none") {
    if (!first) return fail(disconnect_reason::key_exchange_failed, "re-key to none refused");
    kex_alg_ = "none";
    kex_.reset();
    // No NEWKEYS, no user auth: the connection protocol starts in clear (devtunnels-protocol.md §2).
    return become_ready();
  }
  auto params = kex_params_for(*kex);
  auto hostkey = pick(1);
  auto enc_cs = pick(2), enc_sc = pick(3), mac_cs = pick(4), mac_sc = pick(5);
  if (!params || !hostkey || !enc_cs || !enc_sc)
    return fail(disconnect_reason::key_exchange_failed, "no common algorithms");
  // AEAD ciphers carry their own integrity; any other cipher needs a common MAC.
  if ((!cipher_is_aead(*enc_cs) && !mac_cs) || (!cipher_is_aead(*enc_sc) && !mac_sc))
    return fail(disconnect_reason::key_exchange_failed, "no common MAC algorithm");
  if (cfg_.role == role::server && !cfg_.host_key)
    return fail(disconnect_reason::key_exchange_failed, "server has no host key");
  kex_alg_ = *kex;
  kex_->params = *params;
  kex_->enc_cs = *enc_cs;
  kex_->enc_sc = *enc_sc;
  kex_->mac_cs = cipher_is_aead(*enc_cs) ? "none" : *mac_cs;
  kex_->mac_sc = cipher_is_aead(*enc_sc) ? "none" : *mac_sc;
  kex_->ecdh = ecdh_key::generate(params->nid);
  if (!kex_->ecdh) return fail(disconnect_reason::key_exchange_failed, "cannot generate an ECDH key");
  if (client) send_transport(writer().u8(msg::kex_ecdh_init).string(kex_->ecdh->public_point()).take());
}

namespace {

bytes exchange_hash(hash_kind h, const std::string& v_c, const std::string& v_s, const bytes& i_c,
                    const bytes& i_s, const bytes& k_s, const bytes& q_c, const bytes& q_s, const bytes& k) {
  writer w;
  w.string(v_c).string(v_s).string(i_c).string(i_s).string(k_s).string(q_c).string(q_s).mpint(k);
  return digest(h, w.data());
}

}  // namespace

void session::on_ecdh_init(reader& r) {
  if (cfg_.role != role::server || !kex_ || !kex_->ecdh)
    return fail(disconnect_reason::protocol_error, "unexpected ECDH init");
  const auto q_c = r.string_bytes();
  if (!r.ok()) return fail(disconnect_reason::protocol_error, "malformed ECDH init");
  auto shared = kex_->ecdh->shared_secret(q_c);
  if (!shared) return fail(disconnect_reason::key_exchange_failed, "invalid ECDH public key");
  const auto& k_s = cfg_.host_key->public_blob();
  const auto h = exchange_hash(kex_->params.hash, peer_version_, cfg_.version, kex_->theirs, kex_->ours, k_s,
                               q_c, kex_->ecdh->public_point(), *shared);
  const auto sig = cfg_.host_key->sign(h);
  send_transport(
      writer().u8(msg::kex_ecdh_reply).string(k_s).string(kex_->ecdh->public_point()).string(sig).take());
  derive_keys(*shared, h);
  send_transport(bytes{msg::newkeys});
  kex_->newkeys_sent = true;
  sealer_.set_keys(kex_->out_keys);
  if (kex_->newkeys_received) finish_kex();
}

void session::on_ecdh_reply(reader& r) {
  if (cfg_.role != role::client || !kex_ || !kex_->ecdh)
    return fail(disconnect_reason::protocol_error, "unexpected ECDH reply");
  const auto k_s = r.string_bytes();
  const auto q_s = r.string_bytes();
  const auto sig = r.string_bytes();
  if (!r.ok()) return fail(disconnect_reason::protocol_error, "malformed ECDH reply");
  auto shared = kex_->ecdh->shared_secret(q_s);
  if (!shared) return fail(disconnect_reason::key_exchange_failed, "invalid ECDH public key");
  const auto h = exchange_hash(kex_->params.hash, cfg_.version, peer_version_, kex_->ours, kex_->theirs, k_s,
                               kex_->ecdh->public_point(), q_s, *shared);
  if (!verify_signature(k_s, h, sig))
    return fail(disconnect_reason::key_exchange_failed, "bad host key signature");
  if (cfg_.accept_host_key && !cfg_.accept_host_key(k_s))
    return fail(disconnect_reason::host_key_not_verifiable, "host key not accepted");
  derive_keys(*shared, h);
  send_transport(bytes{msg::newkeys});
  kex_->newkeys_sent = true;
  sealer_.set_keys(kex_->out_keys);
  if (kex_->newkeys_received) finish_kex();
}

void session::derive_keys(const bytes& shared, const bytes& h) {
  if (session_id_.empty()) session_id_ = h;
  const auto hash = kex_->params.hash;
  writer kw;
  kw.mpint(shared);
  const bytes k = kw.take();
  // RFC 4253 §7.2: HASH(K || H || letter || session_id), extended by HASH(K || H || K1 ...) as needed.
  auto derive = [&](char letter, std::size_t size) {
    bytes seed = k;
    seed.insert(seed.end(), h.begin(), h.end());
    bytes first = seed;
    first.push_back(static_cast<std::uint8_t>(letter));
    first.insert(first.end(), session_id_.begin(), session_id_.end());
    bytes out = digest(hash, first);
    while (out.size() < size) {
      bytes more = seed;
      more.insert(more.end(), out.begin(), out.end());
      auto next = digest(hash, more);
      out.insert(out.end(), next.begin(), next.end());
    }
    out.resize(size);
    return out;
  };
  const bool client = cfg_.role == role::client;
  cipher_keys cs{kex_->enc_cs, kex_->mac_cs, derive('A', cipher_iv_size(kex_->enc_cs)),
                 derive('C', cipher_key_size(kex_->enc_cs)), derive('E', mac_key_size(kex_->mac_cs))};
  cipher_keys sc{kex_->enc_sc, kex_->mac_sc, derive('B', cipher_iv_size(kex_->enc_sc)),
                 derive('D', cipher_key_size(kex_->enc_sc)), derive('F', mac_key_size(kex_->mac_sc))};
  kex_->out_keys = client ? cs : sc;
  kex_->in_keys = client ? sc : cs;
  kex_->keys_ready = true;
}

void session::on_newkeys() {
  if (!kex_ || !kex_->keys_ready)
    return fail(disconnect_reason::protocol_error, "NEWKEYS before key exchange");
  opener_.set_keys(kex_->in_keys);
  kex_->newkeys_received = true;
  if (kex_->newkeys_sent) finish_kex();
}

void session::finish_kex() {
  const bool first = !authenticated_ && state_ == state::kex;
  kex_.reset();
  if (first) {
    state_ = state::auth;
    if (cfg_.role == role::client)
      send_transport(writer().u8(msg::service_request).string(std::string_view("ssh-userauth")).take());
    return;
  }
  // A re-key finished: what the application sent meanwhile may go now.
  auto held = std::move(held_);
  for (auto& p : held) send_packet(p);
}

// -- user authentication ------------------------------------------------------------------------------------

void session::on_service_request(reader& r) {
  if (cfg_.role != role::server || state_ != state::auth)
    return fail(disconnect_reason::protocol_error, "unexpected service request");
  const auto name = r.string();
  if (name != "ssh-userauth") return fail(disconnect_reason::service_not_available, "no service " + name);
  send_transport(writer().u8(msg::service_accept).string(name).take());
}

void session::on_service_accept() {
  if (cfg_.role != role::client || state_ != state::auth)
    return fail(disconnect_reason::protocol_error, "unexpected service accept");
  send_userauth_none();
}

void session::send_userauth_none() {
  send_transport(writer()
                     .u8(msg::userauth_request)
                     .string(cfg_.user)
                     .string(std::string_view("ssh-connection"))
                     .string(std::string_view("none"))
                     .take());
}

namespace {

bytes publickey_signed_data(const bytes& session_id, const std::string& user, const std::string& alg,
                            const bytes& blob) {
  writer w;
  w.string(session_id).u8(msg::userauth_request).string(user).string(std::string_view("ssh-connection"));
  w.string(std::string_view("publickey")).boolean(true).string(alg).string(blob);
  return w.take();
}

}  // namespace

void session::send_userauth_publickey() {
  publickey_tried_ = true;
  const auto& blob = cfg_.client_key->public_blob();
  const auto sig =
      cfg_.client_key->sign(publickey_signed_data(session_id_, cfg_.user, ecdsa_p384_name, blob));
  send_transport(writer()
                     .u8(msg::userauth_request)
                     .string(cfg_.user)
                     .string(std::string_view("ssh-connection"))
                     .string(std::string_view("publickey"))
                     .boolean(true)
                     .string(std::string_view(ecdsa_p384_name))
                     .string(blob)
                     .string(sig)
                     .take());
}

void session::on_userauth_request(reader& r) {
  const auto user = r.string();
  const auto service = r.string();
  const auto method = r.string();
  if (!r.ok()) return fail(disconnect_reason::protocol_error, "malformed userauth request");
  auto refuse = [&] {
    send_transport(writer().u8(msg::userauth_failure).name_list({"none", "publickey"}).boolean(false).take());
  };
  auto allow = [&](const bytes& key) {
    return cfg_.accept_auth ? cfg_.accept_auth(user, method, key) : method == "none";
  };
  if (service != "ssh-connection") return refuse();
  if (method == "none") {
    if (!allow({})) return refuse();
  } else if (method == "publickey") {
    const bool has_sig = r.boolean();
    const auto alg = r.string();
    const auto blob = r.string_bytes();
    if (!r.ok() || !allow(blob)) return refuse();
    if (!has_sig) {
      send_transport(writer().u8(msg::userauth_pk_ok).string(alg).string(blob).take());
      return;
    }
    const auto sig = r.string_bytes();
    if (!r.ok() || !verify_signature(blob, publickey_signed_data(session_id_, user, alg, blob), sig))
      return refuse();
  } else {
    return refuse();
  }
  send_transport(bytes{msg::userauth_success});
  authenticated_ = true;
  become_ready();
}

void session::on_userauth_result(std::uint8_t type, reader& r) {
  if (type == msg::userauth_banner) return;
  if (type == msg::userauth_success) {
    authenticated_ = true;
    return become_ready();
  }
  if (type == msg::userauth_failure) {
    const auto methods = r.name_list();
    const bool publickey = std::find(methods.begin(), methods.end(), "publickey") != methods.end();
    if (cfg_.client_key && publickey && !publickey_tried_) return send_userauth_publickey();
    return fail(disconnect_reason::no_more_auth_methods, "authentication refused");
  }
  fail(disconnect_reason::protocol_error, "unexpected authentication message");
}

void session::become_ready() {
  state_ = state::ready;
  events_.push_back(ev::ready{});
  auto held = std::move(held_);
  for (auto& p : held) send_packet(p);
}

// -- output -------------------------------------------------------------------------------------------------

void session::send_transport(const bytes& payload) {
  auto wire = sealer_.seal(payload);
  out_.insert(out_.end(), wire.begin(), wire.end());
}

void session::send_packet(const bytes& payload) {
  if (state_ == state::closed) return;
  // Between KEXINIT and NEWKEYS only transport messages may pass (RFC 4253 §7.1); before auth nothing else.
  if (state_ != state::ready || (kex_ && !kex_->newkeys_sent)) {
    held_.push_back(payload);
    return;
  }
  send_transport(payload);
}

void session::fail(std::uint32_t reason, const std::string& message) {
  if (state_ == state::closed) return;
  if (state_ != state::version)
    send_transport(
        writer().u8(msg::disconnect).u32(reason).string(message).string(std::string_view("")).take());
  state_ = state::closed;
  events_.push_back(ev::disconnected{reason, message, false});
}

void session::disconnect(std::uint32_t reason, const std::string& message) { fail(reason, message); }

void session::rekey() {
  if (state_ != state::ready || kex_ || kex_alg_ == "none") return;
  kex_ = std::make_unique<kex_state>();
  send_kexinit();
}

// -- connection protocol ------------------------------------------------------------------------------------

session::channel* session::find(std::uint32_t id) {
  auto it = channels_.find(id);
  return it == channels_.end() ? nullptr : it->second.get();
}

const session::channel* session::find(std::uint32_t id) const {
  auto it = channels_.find(id);
  return it == channels_.end() ? nullptr : it->second.get();
}

bool session::channel_open(std::uint32_t id) const {
  const auto* ch = find(id);
  return ch && ch->confirmed && !ch->close_sent;
}

void session::on_connection_packet(std::uint8_t type, reader& r) {
  if (type == msg::global_request) {
    const auto name = r.string();
    const bool want = r.boolean();
    auto data = r.rest();
    if (!r.ok()) return fail(disconnect_reason::protocol_error, "malformed global request");
    events_.push_back(ev::global_request{name, want, std::move(data)});
    return;
  }
  if (type == msg::request_success || type == msg::request_failure) {
    events_.push_back(ev::global_reply{type == msg::request_success, r.rest()});
    return;
  }
  if (type == msg::channel_open) {
    const auto kind = r.string();
    const auto sender = r.u32();
    const auto window = r.u32();
    const auto max_packet = r.u32();
    auto data = r.rest();
    if (!r.ok()) return fail(disconnect_reason::protocol_error, "malformed channel open");
    auto ch = std::make_unique<channel>();
    ch->id = next_channel_++;
    ch->remote_id = sender;
    ch->remote_window = window;
    ch->remote_max_packet = std::max<std::uint32_t>(max_packet, 1);
    ch->local_window = cfg_.window;
    ch->incoming = true;
    const auto id = ch->id;
    channels_[id] = std::move(ch);
    events_.push_back(ev::channel_open{id, kind, std::move(data)});
    return;
  }
  const auto id = r.u32();
  auto* ch = find(id);
  if (!r.ok() || !ch) return fail(disconnect_reason::protocol_error, "message for an unknown channel");
  switch (type) {
    case msg::channel_open_confirmation: {
      ch->remote_id = r.u32();
      ch->remote_window = r.u32();
      ch->remote_max_packet = std::max<std::uint32_t>(r.u32(), 1);
      auto data = r.rest();
      if (!r.ok()) return fail(disconnect_reason::protocol_error, "malformed open confirmation");
      ch->confirmed = true;
      events_.push_back(ev::channel_confirmed{id, std::move(data)});
      flush_channel(*ch);
      return;
    }
    case msg::channel_open_failure: {
      const auto reason = r.u32();
      const auto text = r.string();
      channels_.erase(id);
      events_.push_back(ev::channel_failed{id, reason, text});
      return;
    }
    case msg::channel_window_adjust: {
      const auto add = r.u32();
      if (!r.ok()) return fail(disconnect_reason::protocol_error, "malformed window adjust");
      ch->remote_window = static_cast<std::uint32_t>(
          std::min<std::uint64_t>(0xffffffffu, std::uint64_t(ch->remote_window) + add));
      flush_channel(*ch);
      return;
    }
    case msg::channel_data:
    case msg::channel_extended_data: {
      if (type == msg::channel_extended_data) r.u32();
      auto data = r.string_bytes();
      if (!r.ok()) return fail(disconnect_reason::protocol_error, "malformed channel data");
      if (data.size() > ch->local_window)
        return fail(disconnect_reason::protocol_error, "peer exceeded the channel window");
      ch->local_window -= static_cast<std::uint32_t>(data.size());
      if (!data.empty()) events_.push_back(ev::channel_data{id, std::move(data)});
      return;
    }
    case msg::channel_eof:
      ch->eof_received = true;
      events_.push_back(ev::channel_eof{id});
      return;
    case msg::channel_close:
      ch->close_received = true;
      if (!ch->close_sent) {
        send_packet(writer().u8(msg::channel_close).u32(ch->remote_id).take());
        ch->close_sent = true;
      }
      channels_.erase(id);
      events_.push_back(ev::channel_closed{id});
      return;
    case msg::channel_request: {
      const auto name = r.string();
      const bool want = r.boolean();
      auto data = r.rest();
      events_.push_back(ev::channel_request{id, name, want, std::move(data)});
      return;
    }
    case msg::channel_success:
    case msg::channel_failure:
      return;
    default:
      send_transport(writer().u8(msg::unimplemented).u32(opener_.sequence() - 1).take());
  }
}

void session::global_request(const std::string& name, bool want_reply, const bytes& data) {
  send_packet(writer().u8(msg::global_request).string(name).boolean(want_reply).raw(data).take());
}

void session::global_reply(bool success, const bytes& data) {
  send_packet(writer().u8(success ? msg::request_success : msg::request_failure).raw(data).take());
}

std::uint32_t session::open_channel(const std::string& type, const bytes& data) {
  auto ch = std::make_unique<channel>();
  ch->id = next_channel_++;
  ch->local_window = cfg_.window;
  const auto id = ch->id;
  channels_[id] = std::move(ch);
  send_packet(writer()
                  .u8(msg::channel_open)
                  .string(type)
                  .u32(id)
                  .u32(cfg_.window)
                  .u32(cfg_.max_packet)
                  .raw(data)
                  .take());
  return id;
}

void session::accept_channel(std::uint32_t id, const bytes& data) {
  auto* ch = find(id);
  if (!ch || ch->confirmed) return;
  ch->confirmed = true;
  send_packet(writer()
                  .u8(msg::channel_open_confirmation)
                  .u32(ch->remote_id)
                  .u32(id)
                  .u32(cfg_.window)
                  .u32(cfg_.max_packet)
                  .raw(data)
                  .take());
  flush_channel(*ch);
}

void session::reject_channel(std::uint32_t id, std::uint32_t reason, const std::string& message) {
  auto* ch = find(id);
  if (!ch || ch->confirmed) return;
  send_packet(writer()
                  .u8(msg::channel_open_failure)
                  .u32(ch->remote_id)
                  .u32(reason)
                  .string(message)
                  .string(std::string_view(""))
                  .take());
  channels_.erase(id);
}

std::size_t session::send(std::uint32_t id, const std::uint8_t* data, std::size_t n) {
  auto* ch = find(id);
  if (!ch || ch->eof_queued || ch->close_queued) return 0;
  ch->pending.insert(ch->pending.end(), data, data + n);
  flush_channel(*ch);
  return ch->pending.size();
}

std::size_t session::pending(std::uint32_t id) const {
  const auto* ch = find(id);
  return ch ? ch->pending.size() : 0;
}

void session::flush_channel(channel& ch) {
  if (!ch.confirmed || ch.close_sent) return;
  std::size_t offset = 0;
  while (offset < ch.pending.size() && ch.remote_window > 0) {
    const std::size_t n = std::min<std::size_t>(
        {ch.pending.size() - offset, ch.remote_window, ch.remote_max_packet, channel_chunk});
    writer w;
    w.u8(msg::channel_data)
        .u32(ch.remote_id)
        .u32(static_cast<std::uint32_t>(n))
        .raw(ch.pending.data() + offset, n);
    send_packet(w.take());
    ch.remote_window -= static_cast<std::uint32_t>(n);
    offset += n;
  }
  ch.pending.erase(ch.pending.begin(), ch.pending.begin() + static_cast<long>(offset));
  if (!ch.pending.empty()) {
    ch.blocked = true;
    return;
  }
  if (ch.blocked) {
    ch.blocked = false;
    events_.push_back(ev::channel_writable{ch.id});
  }
  if (ch.eof_queued && !ch.eof_sent) {
    send_packet(writer().u8(msg::channel_eof).u32(ch.remote_id).take());
    ch.eof_sent = true;
  }
  if (ch.close_queued && !ch.close_sent) {
    send_packet(writer().u8(msg::channel_close).u32(ch.remote_id).take());
    ch.close_sent = true;
    if (ch.close_received) channels_.erase(ch.id);
  }
}

void session::consumed(std::uint32_t id, std::size_t n) {
  auto* ch = find(id);
  if (!ch || ch->close_sent) return;
  ch->unacknowledged += n;
  // Grant the window back in large steps: one adjust per half window, not one per packet.
  if (ch->unacknowledged >= cfg_.window / 2) {
    const auto add = static_cast<std::uint32_t>(ch->unacknowledged);
    ch->unacknowledged = 0;
    ch->local_window += add;
    send_packet(writer().u8(msg::channel_window_adjust).u32(ch->remote_id).u32(add).take());
  }
}

void session::send_eof(std::uint32_t id) {
  auto* ch = find(id);
  if (!ch || ch->eof_queued) return;
  ch->eof_queued = true;
  flush_channel(*ch);
}

void session::close_channel(std::uint32_t id) {
  auto* ch = find(id);
  if (!ch || ch->close_queued) return;
  if (!ch->confirmed && ch->incoming)
    return reject_channel(id, open_failure::connect_failed, "target unavailable");
  ch->close_queued = true;
  if (!ch->confirmed) return;  // closed once the peer confirms; a pending open cannot be withdrawn in SSH
  flush_channel(*ch);
}

void session::channel_request(std::uint32_t id, const std::string& name, bool want_reply, const bytes& data) {
  auto* ch = find(id);
  if (!ch) return;
  send_packet(
      writer().u8(msg::channel_request).u32(ch->remote_id).string(name).boolean(want_reply).raw(data).take());
}

void session::channel_reply(std::uint32_t id, bool success) {
  auto* ch = find(id);
  if (!ch) return;
  send_packet(writer().u8(success ? msg::channel_success : msg::channel_failure).u32(ch->remote_id).take());
}

}  // namespace sb::tunnel::ssh

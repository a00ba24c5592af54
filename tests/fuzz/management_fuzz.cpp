// Fuzz target: the relay's management API (tunnel::management_api::handle), the pure request -> response
// function behind its HTTP listener, and the access tokens the relay reads from WebSocket upgrades. Input:
//   line 1             "METHOD /path?query"
//   following lines    "Name: value" headers, up to an empty line ("Authorization: Bearer fuzz-admin" is the
//                      management token, so the fuzzer reaches every authorized route)
//   the rest           the request body (tunnel, port and endpoint JSON)
// Properties: handle() never throws; a status is 200..599; a JSON response body parses as JSON.
// The tunnel store lives in a fresh temporary directory and is emptied now and then so it stays small.
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "fuzz_input.hpp"
#include "protocol/json_bounds.hpp"
#include "tunnel/jwt.hpp"
#include "tunnel/management.hpp"

using namespace sb::tunnel;

namespace {

constexpr const char* management_token = "fuzz-admin";
constexpr std::int64_t fixed_now = 1800000000;

std::filesystem::path& the_dir() {
  static std::filesystem::path dir;
  return dir;
}

struct relay {
  std::unique_ptr<tunnel_store> store;
  std::unique_ptr<management_api> api;

  relay() {
    // /dev/shm when present: every change rewrites and syncs tunnels.json.
    std::string dir =
        access("/dev/shm", W_OK) == 0 ? "/dev/shm/sb-fuzz-mgmt-XXXXXX" : "/tmp/sb-fuzz-mgmt-XXXXXX";
    sb_fuzz::require(mkdtemp(dir.data()) != nullptr, "a temporary directory for the tunnel store");
    the_dir() = dir;
    // libFuzzer leaves through exit(): the store goes with it.
    std::atexit([] { std::filesystem::remove_all(the_dir()); });
    store = std::make_unique<tunnel_store>(dir);
    api = std::make_unique<management_api>(*store, management_token, "http://127.0.0.1:1", store->key(),
                                           [] { return fixed_now; });
  }

  void keep_small() {
    if (store->size() < 32) return;
    for (const auto& t : store->list()) (void)store->erase(t.tunnel_id);
  }
};

relay& the_relay() {
  static relay r;
  return r;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

http_request request_of(std::string_view text) {
  http_request req;
  auto take_line = [&text]() {
    const auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    return line;
  };
  const auto start = take_line();
  const auto sp = start.find(' ');
  req.method = std::string(start.substr(0, sp));
  auto target = sp == std::string_view::npos ? std::string_view{} : trim(start.substr(sp + 1));
  const auto q = target.find('?');
  req.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) req.query = parse_query(target.substr(q + 1));
  while (!text.empty()) {
    const auto line = trim(take_line());
    if (line.empty()) break;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    req.headers[lower(trim(line.substr(0, colon)))] = std::string(trim(line.substr(colon + 1)));
  }
  req.body = std::string(text);
  return req;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& r = the_relay();
  const auto text = sb_fuzz::as_view(data, size);
  const auto req = request_of(text);

  const auto res = r.api->handle(req);
  sb_fuzz::require(res.status >= 200 && res.status <= 599, "an HTTP status");
  auto type = res.headers.find("Content-Type");
  if (type != res.headers.end() && type->second.find("json") != std::string::npos)
    sb_fuzz::require(sb::protocol::parse_untrusted_json(res.body, 1024).ok(), "a JSON response parses");
  r.keep_small();

  // The same body as a relay WebSocket credential, and as a token a host or client was handed.
  const auto segments = sb_fuzz::split(req.path, '/');
  const std::string tunnel_id = segments.size() > 2 ? std::string(segments[2]) : "t1";
  (void)r.api->authorize_relay(tunnel_id, req.body, scope::host);
  (void)verify_token(req.body, r.store->key(), fixed_now);
  (void)parse_token_unverified(req.body);
  return 0;
}

#include "tunnel/management.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <stdexcept>
#include <variant>

#include "protocol/ids.hpp"
#include "protocol/json_bounds.hpp"
#include "protocol/text.hpp"

namespace sb::tunnel {

namespace {

using json = nlohmann::json;

// Limits from the service's `TunnelConstraints` (contracts tunnelConstraints.ts), so what we store is what
// the SDK and the real service would accept.
constexpr std::size_t max_description_length = 400;
constexpr std::size_t max_name_length = 49;
constexpr std::size_t max_labels = 100;
constexpr std::size_t max_label_length = 50;
constexpr std::size_t max_ports = 1000;
constexpr std::size_t max_ssh_user_length = 60;
// Our own bounds for host-supplied endpoint fields: a host key blob in base64 is a few hundred bytes.
constexpr std::size_t max_endpoint_id_length = 200;
constexpr std::size_t max_host_id_length = 200;
constexpr std::size_t max_host_public_keys = 16;
constexpr std::size_t max_host_public_key_length = 4096;
// Events are only logged; these bound what one request can put into the log.
constexpr std::size_t max_events_logged = 100;
constexpr std::size_t max_event_text_logged = 200;
constexpr int store_format_version = 1;

constexpr const char* json_content_type = "application/json";
constexpr const char* problem_content_type = "application/problem+json";

// The only connection mode a relay serves; `LocalNetwork` endpoints would need a host reachable directly.
constexpr const char* tunnel_relay_mode = "TunnelRelay";

// Scopes per kind of access (TUNNEL.md "Auth" and contracts tunnelAccessScopes.ts: `host` "includes access
// to update tunnel endpoints and ports"; the SDK itself picks a host token for port changes).
using scope_list = std::vector<const char*>;
const scope_list read_scopes = {scope::manage, scope::manage_ports, scope::host, scope::connect};
const scope_list manage_scopes = {scope::manage};
const scope_list port_write_scopes = {scope::manage, scope::manage_ports, scope::host};
const scope_list endpoint_scopes = {scope::manage, scope::host};
const scope_list event_scopes = read_scopes;

const std::set<std::string> grantable_scopes = {scope::manage, scope::manage_ports, scope::host,
                                                scope::inspect, scope::connect};
// Valid in the SDK's scope list but meaningless for an existing tunnel, so never granted.
constexpr const char* create_scope = "create";

const std::set<std::string> port_protocols = {"auto", "tcp", "udp", "ssh", "rdp", "http", "https"};

// ---------------------------------------------------------------------------------------------------------
// Responses

std::string dump(const json& value) {
  // Replace rather than throw on invalid UTF-8: echoed request text must never turn into an exception.
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

http_response json_response(int status, const json& body) {
  http_response r;
  r.status = status;
  r.headers["Content-Type"] = json_content_type;
  r.body = dump(body);
  return r;
}

// DELETE and event uploads return a boolean in every SDK (the C# one deserializes the body as bool, so an
// empty 200 body would fail there).
http_response true_response() { return json_response(200, true); }

// RFC 7807 ProblemDetails; the SDK shows "Tunnel service error: <title> <detail>".
http_response problem(int status, const std::string& detail) {
  http_response r;
  r.status = status;
  r.headers["Content-Type"] = problem_content_type;
  r.body = dump(json{{"title", reason_phrase(status)}, {"detail", detail}, {"status", status}});
  if (status == 401) r.headers["WWW-Authenticate"] = "tunnel, Bearer";
  return r;
}

http_response tunnel_not_found(const std::string& id) {
  return problem(404, "tunnel '" + id + "' not found");
}

// ---------------------------------------------------------------------------------------------------------
// Text helpers

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const auto end = s.find(sep, start);
    out.emplace_back(s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi << 4 | lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string iso8601(std::int64_t seconds) {
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  if (::gmtime_r(&t, &tm) == nullptr) return "1970-01-01T00:00:00Z";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool query_flag(const http_request& request, const char* name) {
  auto it = request.query.find(name);
  if (it == request.query.end()) return false;
  // `?includePorts` with no value reads as true, like the service.
  return it->second.empty() || iequals(it->second, "true") || it->second == "1";
}

std::string header(const http_request& request, const char* lower_name) {
  auto it = request.headers.find(lower_name);
  return it == request.headers.end() ? std::string{} : it->second;
}

// ---------------------------------------------------------------------------------------------------------
// Validation (contracts tunnelConstraints.ts)

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// newTunnelIdPattern / tunnelNamePattern: [a-z0-9][a-z0-9-]{1,47}[a-z0-9]. The SDK's generated ids
// ("happy-lake-x7k2q9b") and the old 8-character ids both fit.
bool valid_tunnel_id(std::string_view id) {
  if (id.size() < 3 || id.size() > max_name_length) return false;
  if (!is_lower_alnum(id.front()) || !is_lower_alnum(id.back())) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return is_lower_alnum(c) || c == '-'; });
}

// labelPattern: [\w-=]{1,50}
bool valid_label(std::string_view label) {
  if (label.empty() || label.size() > max_label_length) return false;
  return std::all_of(label.begin(), label.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '=';
  });
}

// The SDK's endpoint ids are "<uuid>-relay"; allow URL-safe text so other hosts fit too.
bool valid_endpoint_id(std::string_view id) {
  if (id.empty() || id.size() > max_endpoint_id_length) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '~';
  });
}

std::optional<std::uint16_t> parse_port_number(std::string_view text) { return protocol::parse_port(text); }

// ---------------------------------------------------------------------------------------------------------
// Request bodies. Each reader returns an error message naming the field, or nullopt when the value fits;
// absent and null fields are left alone.

using field_error = std::optional<std::string>;

const json* field(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

field_error read_string(const json& object, const char* name, std::size_t max_length, std::string& out) {
  const json* v = field(object, name);
  if (!v) return std::nullopt;
  if (!v->is_string()) return std::string("'") + name + "' must be a string";
  const auto& s = v->get_ref<const std::string&>();
  if (s.size() > max_length)
    return std::string("'") + name + "' is longer than " + std::to_string(max_length);
  out = s;
  return std::nullopt;
}

field_error read_labels(const json& object, std::vector<std::string>& out) {
  const json* v = field(object, "labels");
  if (!v) return std::nullopt;
  if (!v->is_array()) return "'labels' must be an array of strings";
  if (v->size() > max_labels) return "'labels' has more than " + std::to_string(max_labels) + " entries";
  std::vector<std::string> labels;
  for (const auto& item : *v) {
    if (!item.is_string() || !valid_label(item.get_ref<const std::string&>()))
      return "each label is 1 to 50 letters, digits, '_', '-' or '='";
    labels.push_back(item.get<std::string>());
  }
  out = std::move(labels);
  return std::nullopt;
}

field_error read_options(const json& object, json& out) {
  const json* v = field(object, "options");
  if (!v) return std::nullopt;
  if (!v->is_object()) return "'options' must be an object";
  out = *v;
  return std::nullopt;
}

// A TunnelPort body. `path_port` is the number from the URL, when there is one; the body may omit it.
field_error read_port(const json& body, std::optional<std::uint16_t> path_port, tunnel_port& out) {
  if (!body.is_object()) return "a tunnel port must be a JSON object";
  tunnel_port port;
  if (const json* n = field(body, "portNumber")) {
    if (!n->is_number_integer() || n->get<std::int64_t>() < 1 || n->get<std::int64_t>() > 65535)
      return "'portNumber' must be an integer from 1 to 65535";
    port.port_number = static_cast<std::uint16_t>(n->get<std::int64_t>());
    if (path_port && *path_port != port.port_number) return "'portNumber' differs from the port in the URL";
  } else if (path_port) {
    port.port_number = *path_port;
  } else {
    return "'portNumber' is required";
  }
  if (auto e = read_string(body, "protocol", 16, port.protocol)) return e;
  if (port.protocol.empty()) port.protocol = "auto";
  if (!port_protocols.count(port.protocol))
    return "'protocol' '" + port.protocol + "' is not a tunnel protocol";
  if (auto e = read_string(body, "name", max_name_length, port.name)) return e;
  if (auto e = read_string(body, "description", max_description_length, port.description)) return e;
  if (auto e = read_labels(body, port.labels)) return e;
  if (const json* d = field(body, "isDefault")) {
    if (!d->is_boolean()) return "'isDefault' must be a boolean";
    port.is_default = d->get<bool>();
  }
  if (auto e = read_string(body, "sshUser", max_ssh_user_length, port.ssh_user)) return e;
  if (auto e = read_options(body, port.options)) return e;
  out = std::move(port);
  return std::nullopt;
}

field_error read_ports(const json& array, std::vector<tunnel_port>& out) {
  if (!array.is_array()) return "'ports' must be an array";
  if (array.size() > max_ports) return "a tunnel has at most " + std::to_string(max_ports) + " ports";
  std::vector<tunnel_port> ports;
  std::set<std::uint16_t> seen;
  for (const auto& item : array) {
    tunnel_port port;
    if (auto e = read_port(item, std::nullopt, port)) return e;
    if (!seen.insert(port.port_number).second)
      return "port " + std::to_string(port.port_number) + " is listed twice";
    ports.push_back(std::move(port));
  }
  std::sort(ports.begin(), ports.end(),
            [](const tunnel_port& a, const tunnel_port& b) { return a.port_number < b.port_number; });
  out = std::move(ports);
  return std::nullopt;
}

// A Tunnel body (the SDK's convertTunnelForRequest): fields present replace stored ones, absent ones stay.
// `endpoints`, `accessControl`, `accessTokens`, `status` and dates are the service's to set and are ignored.
field_error apply_tunnel_body(const json& body, const std::string& path_id, tunnel_record& t) {
  if (!body.is_object()) return "a tunnel must be a JSON object";
  std::string id;
  if (auto e = read_string(body, "tunnelId", max_name_length, id)) return e;
  if (!id.empty() && id != path_id) return "'tunnelId' differs from the tunnel id in the URL";
  tunnel_record next = t;
  if (auto e = read_string(body, "name", max_name_length, next.name)) return e;
  if (!next.name.empty() && !valid_tunnel_id(next.name))
    return "'name' is 3 to 49 lowercase letters, digits or inner '-'";
  if (auto e = read_string(body, "description", max_description_length, next.description)) return e;
  if (auto e = read_labels(body, next.labels)) return e;
  if (auto e = read_options(body, next.options)) return e;
  if (const json* ports = field(body, "ports")) {
    if (auto e = read_ports(*ports, next.ports)) return e;
  }
  t = std::move(next);
  return std::nullopt;
}

field_error read_endpoint(const json& body, const std::string& path_id, std::string_view query_mode,
                          tunnel_endpoint& out) {
  if (!body.is_object()) return "a tunnel endpoint must be a JSON object";
  tunnel_endpoint e;
  e.id = path_id;
  std::string id;
  if (auto err = read_string(body, "id", max_endpoint_id_length, id)) return err;
  if (!id.empty() && id != path_id) return "'id' differs from the endpoint id in the URL";
  if (auto err = read_string(body, "hostId", max_host_id_length, e.host_id)) return err;
  if (e.host_id.empty()) return "'hostId' is required";
  std::string mode;
  if (auto err = read_string(body, "connectionMode", 32, mode)) return err;
  if (mode.empty()) mode = std::string(query_mode);
  if (!mode.empty() && mode != tunnel_relay_mode) return "this relay serves only TunnelRelay endpoints";
  if (!query_mode.empty() && query_mode != tunnel_relay_mode)
    return "this relay serves only TunnelRelay endpoints";
  if (const json* keys = field(body, "hostPublicKeys")) {
    if (!keys->is_array() || keys->size() > max_host_public_keys) return "'hostPublicKeys' must be an array";
    for (const auto& k : *keys) {
      if (!k.is_string() || k.get_ref<const std::string&>().size() > max_host_public_key_length)
        return "each host public key must be a base64 string";
      e.host_public_keys.push_back(k.get<std::string>());
    }
  }
  out = std::move(e);
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------------------
// Store format: the contract shapes without what is derived at response time, `created` in seconds.

json port_fields(const tunnel_port& p) {
  json j = {{"portNumber", p.port_number}, {"protocol", p.protocol}, {"labels", p.labels}};
  if (!p.name.empty()) j["name"] = p.name;
  if (!p.description.empty()) j["description"] = p.description;
  if (p.is_default) j["isDefault"] = *p.is_default;
  if (!p.ssh_user.empty()) j["sshUser"] = p.ssh_user;
  if (!p.options.is_null()) j["options"] = p.options;
  return j;
}

json endpoint_fields(const tunnel_endpoint& e) {
  return {{"id", e.id},
          {"connectionMode", e.connection_mode},
          {"hostId", e.host_id},
          {"hostPublicKeys", e.host_public_keys}};
}

json store_json(const tunnel_record& t) {
  json j = {{"tunnelId", t.tunnel_id},      {"clusterId", t.cluster_id}, {"name", t.name},
            {"description", t.description}, {"labels", t.labels},        {"created", t.created},
            {"ports", json::array()},       {"endpoints", json::array()}};
  if (!t.options.is_null()) j["options"] = t.options;
  for (const auto& p : t.ports) j["ports"].push_back(port_fields(p));
  for (const auto& e : t.endpoints) j["endpoints"].push_back(endpoint_fields(e));
  return j;
}

field_error tunnel_from_store(const json& j, tunnel_record& t) {
  if (!j.is_object()) return "a tunnel entry is not an object";
  if (auto e = read_string(j, "tunnelId", max_name_length, t.tunnel_id)) return e;
  if (!valid_tunnel_id(t.tunnel_id)) return "invalid tunnel id '" + t.tunnel_id + "'";
  if (auto e = read_string(j, "clusterId", 64, t.cluster_id)) return e;
  if (auto e = apply_tunnel_body(j, t.tunnel_id, t)) return e;
  const json* created = field(j, "created");
  if (!created || !created->is_number_integer()) return "'created' missing";
  t.created = created->get<std::int64_t>();
  if (const json* endpoints = field(j, "endpoints")) {
    if (!endpoints->is_array()) return "'endpoints' must be an array";
    for (const auto& item : *endpoints) {
      tunnel_endpoint e;
      std::string id;
      if (item.is_object()) read_string(item, "id", max_endpoint_id_length, id);
      if (auto err = read_endpoint(item, id, "", e)) return err;
      if (!valid_endpoint_id(e.id)) return "invalid endpoint id '" + e.id + "'";
      t.endpoints.push_back(std::move(e));
    }
  }
  return std::nullopt;
}

std::string errno_message(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

void make_directories(const std::string& path) {
  // mkdir -p with 0700: the directory holds the signing key.
  std::string partial;
  for (const auto& part : split(path, '/')) {
    partial += part;
    if (!partial.empty() && ::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST)
      throw std::runtime_error(errno_message("cannot create directory", partial));
    partial += '/';
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw std::runtime_error("data directory " + path + " is not a directory");
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(errno_message("cannot read", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

signing_key load_or_create_key(const std::string& path) {
  if (file_exists(path)) {
    auto loaded = load_signing_key(path);
    if (auto* error = std::get_if<std::string>(&loaded)) throw std::runtime_error(*error);
    return std::get<signing_key>(std::move(loaded));
  }
  auto key = generate_signing_key();
  if (auto error = save_signing_key(path, key)) throw std::runtime_error(*error);
  spdlog::info("generated a new token signing key in {}", path);
  return key;
}

}  // namespace

// -------------------------------------------------------------------------------------------------------------

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  for (const auto& item : split(query, '&')) {
    if (item.empty()) continue;
    const auto eq = item.find('=');
    auto name = percent_decode(std::string_view(item).substr(0, eq), true);
    auto value = eq == std::string::npos ? std::optional<std::string>("")
                                         : percent_decode(std::string_view(item).substr(eq + 1), true);
    // A malformed escape drops only that parameter; the route then behaves as if it was not sent.
    if (!name || !value || name->empty()) continue;
    auto [it, inserted] = out.emplace(*name, *value);
    if (!inserted) it->second += "," + *value;
  }
  return out;
}

std::int64_t system_clock_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// -------------------------------------------------------------------------------------------------------------
// tunnel_store

void write_ticket::on_settled(std::function<void(const outcome&)> done) {
  std::unique_lock lock(mutex_);
  if (!settled_) {
    done_ = std::move(done);
    return;
  }
  const auto result = result_;
  lock.unlock();
  done(result);
}

write_ticket::outcome write_ticket::wait() {
  std::unique_lock lock(mutex_);
  settled_cv_.wait(lock, [this] { return settled_; });
  return result_;
}

void write_ticket::settle(outcome result) {
  std::function<void(const outcome&)> done;
  {
    std::lock_guard lock(mutex_);
    if (settled_) return;
    settled_ = true;
    result_ = result;
    done = std::move(done_);
  }
  settled_cv_.notify_all();
  if (done) done(result);
}

tunnel_store::tunnel_store(std::string data_dir, std::string key_file, store_write_fn write)
    : data_dir_(std::move(data_dir)), write_(std::move(write)) {
  if (data_dir_.empty()) throw std::runtime_error("a data directory is required");
  while (data_dir_.size() > 1 && data_dir_.back() == '/') data_dir_.pop_back();
  if (!write_)
    write_ = [](const std::string& path, std::string_view content) {
      return write_private_file(path, content);
    };
  make_directories(data_dir_);
  key_ = load_or_create_key(key_file.empty() ? data_dir_ + "/" + key_file_name : key_file);

  path_ = data_dir_ + "/" + tunnels_file_name;
  auto loaded = std::make_shared<tunnel_map>();
  if (file_exists(path_)) {
    const auto& path = path_;
    // The file is the operator's, but still input: bounded like a request body, with room for the store's own
    // wrapping (document, tunnel list, tunnel, port list, port) around options of the deepest accepted body.
    const auto parsed = protocol::parse_untrusted_json(read_whole_file(path), store_max_json_depth);
    if (parsed.error == protocol::json_parse_error::too_deep)
      throw std::runtime_error(path + " is not a switchboard tunnel store: " +
                               protocol::describe(parsed.error, store_max_json_depth));
    const auto& doc = parsed.value;
    if (!parsed.ok() || !doc.is_object() || !doc.contains("tunnels") || !doc["tunnels"].is_array())
      throw std::runtime_error(path + " is not a switchboard tunnel store");
    if (doc.value("version", 0) != store_format_version)
      throw std::runtime_error(path + " has an unknown format version");
    for (const auto& item : doc["tunnels"]) {
      tunnel_record t;
      if (auto error = tunnel_from_store(item, t)) throw std::runtime_error(path + ": " + *error);
      (*loaded)[t.tunnel_id] = std::move(t);
    }
  }
  durable_ = loaded;
  latest_ = loaded;
  writer_ = std::thread([this] { writer_loop(); });
}

tunnel_store::~tunnel_store() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  writer_.join();
}

std::shared_ptr<const tunnel_store::tunnel_map> tunnel_store::snapshot() const {
  std::lock_guard lock(snapshot_mutex_);
  return durable_;
}

std::optional<tunnel_record> tunnel_store::find(const std::string& tunnel_id) const {
  const auto tunnels = snapshot();
  auto it = tunnels->find(tunnel_id);
  if (it == tunnels->end()) return std::nullopt;
  return it->second;
}

std::vector<tunnel_record> tunnel_store::list() const {
  const auto tunnels = snapshot();
  std::vector<tunnel_record> out;
  out.reserve(tunnels->size());
  for (const auto& [id, t] : *tunnels) out.push_back(t);
  return out;
}

std::size_t tunnel_store::size() const { return snapshot()->size(); }

std::optional<tunnel_record> tunnel_store::find_latest(const std::string& tunnel_id) const {
  std::shared_ptr<const tunnel_map> tunnels;
  {
    std::lock_guard lock(queue_mutex_);
    tunnels = latest_;
  }
  auto it = tunnels->find(tunnel_id);
  if (it == tunnels->end()) return std::nullopt;
  return it->second;
}

std::shared_ptr<write_ticket> tunnel_store::submit_put(tunnel_record record) {
  std::unique_lock lock(queue_mutex_);
  // Copy-on-write: readers and the write in flight keep the state they hold.
  auto next = std::make_shared<tunnel_map>(*latest_);
  (*next)[record.tunnel_id] = std::move(record);
  latest_ = std::move(next);
  auto ticket = std::make_shared<write_ticket>();
  queued_.push_back(ticket);
  lock.unlock();
  queue_cv_.notify_one();
  return ticket;
}

std::shared_ptr<write_ticket> tunnel_store::submit_erase(const std::string& tunnel_id) {
  auto ticket = std::make_shared<write_ticket>();
  std::unique_lock lock(queue_mutex_);
  if (!latest_->count(tunnel_id)) {
    lock.unlock();
    ticket->settle(std::nullopt);  // nothing to change, nothing to write
    return ticket;
  }
  auto next = std::make_shared<tunnel_map>(*latest_);
  next->erase(tunnel_id);
  latest_ = std::move(next);
  queued_.push_back(ticket);
  lock.unlock();
  queue_cv_.notify_one();
  return ticket;
}

std::optional<std::string> tunnel_store::put(tunnel_record record) {
  return submit_put(std::move(record))->wait();
}

std::optional<std::string> tunnel_store::erase(const std::string& tunnel_id) {
  return submit_erase(tunnel_id)->wait();
}

void tunnel_store::writer_loop() {
  std::unique_lock lock(queue_mutex_);
  for (;;) {
    queue_cv_.wait(lock, [this] { return stopping_ || !queued_.empty(); });
    if (queued_.empty()) return;  // stopping, and every submitted change is settled
    // Everything submitted so far goes into this one write.
    const auto state = latest_;
    auto batch = std::move(queued_);
    queued_.clear();
    lock.unlock();
    const auto error = write_(path_, serialize(*state));
    lock.lock();
    if (!error) {
      {
        std::lock_guard swap(snapshot_mutex_);
        durable_ = state;
      }
      lock.unlock();
      for (auto& t : batch) t->settle(std::nullopt);
    } else {
      ++write_failures_;
      spdlog::error("tunnel store: {}; {} change(s) refused, the file keeps the last saved state", *error,
                    batch.size() + queued_.size());
      // Changes submitted during the write were built on the failed state: they go with it.
      for (auto& t : queued_) batch.push_back(std::move(t));
      queued_.clear();
      {
        std::lock_guard swap(snapshot_mutex_);
        latest_ = durable_;
      }
      lock.unlock();
      for (auto& t : batch) t->settle(*error);
    }
    lock.lock();
  }
}

std::string tunnel_store::serialize(const tunnel_map& tunnels) const {
  json doc = {{"version", store_format_version}, {"tunnels", json::array()}};
  for (const auto& [id, t] : tunnels) doc["tunnels"].push_back(store_json(t));
  return dump(doc) + "\n";
}

// -------------------------------------------------------------------------------------------------------------
// management_api

struct management_api::caller {
  bool admin = false;  // the management bearer token
  token_claims claims;

  bool holds(std::string_view s) const {
    return admin || claims.has_scope(scope::manage) || claims.has_scope(s);
  }
};

namespace {

// 403 for a tunnel token of another tunnel, or one without any of `scopes`. Checked before looking the
// tunnel up, so a token for tunnel A cannot learn whether tunnel B exists.
template <typename Caller>
std::optional<http_response> deny(const Caller& who, const std::string& tunnel_id, const scope_list& scopes) {
  if (who.admin) return std::nullopt;
  if (who.claims.tunnel_id != tunnel_id) return problem(403, "the access token is for another tunnel");
  for (const char* s : scopes)
    if (who.holds(s)) return std::nullopt;
  std::string names;
  for (const char* s : scopes) names += (names.empty() ? "" : ", ") + std::string(s);
  return problem(403, "the access token has none of the scopes this request needs (" + names + ")");
}

// A body, or the 400 that refuses it. Parsed through the one bounded door: a deeply nested body would
// otherwise overflow the stack when the value is later copied or dumped (a connect token is enough to post
// one to /events).
std::variant<json, http_response> parse_body(const http_request& request, std::size_t max_depth,
                                             std::atomic<std::uint64_t>& too_deep) {
  auto body = protocol::parse_untrusted_json(request.body, max_depth);
  if (body.error == protocol::json_parse_error::too_deep) {
    ++too_deep;
    return problem(400, "the request body is refused: " + protocol::describe(body.error, max_depth));
  }
  if (!body.ok()) return problem(400, "the request body is not valid JSON");
  return std::move(body.value);
}

std::string normalize_public_url(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  const bool http = url.rfind("http://", 0) == 0, https = url.rfind("https://", 0) == 0;
  if (!http && !https) throw std::invalid_argument("public URL must start with http:// or https://: " + url);
  const auto host_start = url.find("://") + 3;
  if (host_start >= url.size()) throw std::invalid_argument("public URL has no host: " + url);
  // The SDK rejects a service URI whose path is not "/" (TUNNEL.md "Management API").
  if (url.find_first_of("/?#", host_start) != std::string::npos)
    throw std::invalid_argument("public URL must not have a path: " + url);
  return url;
}

}  // namespace

management_api::management_api(tunnel_store& store, std::string management_token, std::string public_url,
                               signing_key key, clock_fn clock, std::chrono::seconds token_lifetime)
    : store_(store),
      management_token_(std::move(management_token)),
      public_url_(normalize_public_url(std::move(public_url))),
      key_(std::move(key)),
      clock_(clock ? std::move(clock) : clock_fn(system_clock_seconds)),
      token_lifetime_(token_lifetime) {
  const bool https = public_url_.rfind("https://", 0) == 0;
  ws_base_ = (https ? "wss://" : "ws://") + public_url_.substr(public_url_.find("://") + 3);
}

namespace {

/// The answer to a change that could not be made durable: what failed, without the server's paths.
http_response not_durable(const char* what, const std::string& error) {
  const auto colon = error.rfind(": ");
  const auto reason = colon == std::string::npos ? error : error.substr(colon + 2);
  const bool full = reason == std::strerror(ENOSPC) || reason == std::strerror(EDQUOT);
  auto r = problem(full ? 507 : 503, std::string(what) + ": the relay cannot make changes durable (" +
                                         reason + "); nothing was changed");
  r.headers["Retry-After"] = "10";
  return r;
}

}  // namespace

void management_api::handle(const http_request& request, std::function<void(http_response)> done) {
  http_response response;
  std::shared_ptr<write_ticket> pending;
  const char* what = "";
  try {
    if (request.body.size() > max_request_body) {
      response = problem(413, "request bodies are limited to " + std::to_string(max_request_body) + " bytes");
    } else if (request.method == "GET") {
      // Reads only look at the durable snapshot: no lock, whatever the writers do.
      response = dispatch(request);
    } else {
      std::lock_guard lock(write_mutex_);
      pending_.reset();
      response = dispatch(request);
      pending = std::move(pending_);
      what = pending_what_;
    }
  } catch (const std::exception& e) {
    // Only our own failures (allocation, RNG) get here; input errors are answered as values above.
    spdlog::error("management API {} {}: {}", request.method, request.path, e.what());
    response = problem(500, "internal error");
  }
  response.headers[served_by_header] = served_by_value;
  if (!pending) return done(std::move(response));
  pending->on_settled([counters = counters_, what, response = std::move(response),
                       done = std::move(done)](const write_ticket::outcome& error) mutable {
    if (!error) return done(std::move(response));
    ++counters->store_write_failures;
    auto refused = not_durable(what, *error);
    refused.headers[served_by_header] = served_by_value;
    done(std::move(refused));
  });
}

http_response management_api::handle(const http_request& request) {
  std::promise<http_response> answer;
  auto f = answer.get_future();
  handle(request, [&answer](http_response r) { answer.set_value(std::move(r)); });
  return f.get();
}

void management_api::await_durable(std::shared_ptr<write_ticket> ticket, const char* what) {
  pending_ = std::move(ticket);
  pending_what_ = what;
}

http_response management_api::dispatch(const http_request& request) {
  // Split "/tunnels/{id}/ports/{port}" into decoded segments; one trailing '/' is tolerated.
  std::string_view path = request.path;
  if (path.empty() || path.front() != '/') return problem(404, "no such route");
  path.remove_prefix(1);
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  std::vector<std::string> seg;
  for (const auto& raw : split(path, '/')) {
    auto decoded = percent_decode(raw, false);
    if (!decoded || decoded->empty()) return problem(404, "no such route");
    seg.push_back(std::move(*decoded));
  }

  const std::string& method = request.method;
  auto allow = [&](const std::vector<std::string>& methods) -> std::optional<http_response> {
    if (std::find(methods.begin(), methods.end(), method) != methods.end()) return std::nullopt;
    std::string list;
    for (const auto& m : methods) list += (list.empty() ? "" : ", ") + m;
    auto r = problem(405, method + " is not supported here; use " + list);
    r.headers["Allow"] = list;
    return r;
  };

  // Cluster discovery is anonymous, as in the service: the SDK asks before it has any tunnel token.
  if (seg.size() == 1 && seg[0] == "clusters") {
    if (auto r = allow({"GET"})) return *r;
    return get_clusters();
  }
  if (seg.size() == 2 && seg[0] == "clusters" && seg[1] == "recommendations") {
    if (auto r = allow({"GET"})) return *r;
    return get_cluster_recommendations();
  }
  if (seg.empty() || seg[0] != "tunnels" || seg.size() > 4) return problem(404, "no such route");

  std::vector<std::string> methods;
  if (seg.size() == 1) methods = {"GET"};
  if (seg.size() == 2) methods = {"GET", "PUT", "DELETE"};
  if (seg.size() == 3 && seg[2] == "ports") methods = {"GET"};
  if (seg.size() == 3 && seg[2] == "events") methods = {"POST"};
  if (seg.size() == 4 && seg[2] == "ports") methods = {"GET", "PUT", "DELETE"};
  if (seg.size() == 4 && seg[2] == "endpoints") methods = {"PUT", "DELETE"};
  if (methods.empty()) return problem(404, "no such route");
  if (auto r = allow(methods)) return *r;

  caller who;
  if (auto r = authenticate(request, who)) return *r;

  if (seg.size() == 1) return list_tunnels(request, who);
  const std::string& id = seg[1];
  if (seg.size() == 2) {
    if (method == "GET") return get_tunnel(request, who, id);
    if (method == "PUT") return put_tunnel(request, who, id);
    return delete_tunnel(who, id);
  }
  if (seg.size() == 3) {
    if (seg[2] == "ports") return list_ports(who, id);
    return post_events(request, who, id);
  }
  if (seg[2] == "ports") {
    if (method == "GET") return get_port(who, id, seg[3]);
    if (method == "PUT") return put_port(request, who, id, seg[3]);
    return delete_port(who, id, seg[3]);
  }
  if (method == "PUT") return put_endpoint(request, who, id, seg[3]);
  return delete_endpoint(who, id, seg[3]);
}

std::optional<http_response> management_api::authenticate(const http_request& request, caller& out) const {
  const std::string value = header(request, "authorization");
  if (value.empty())
    return problem(
        401, "send 'Authorization: tunnel <access token>' or 'Authorization: Bearer <management token>'");
  const auto space = value.find(' ');
  const std::string_view scheme = std::string_view(value).substr(0, space);
  const std::string_view credential =
      space == std::string::npos ? std::string_view{} : protocol::trim(std::string_view(value).substr(space + 1));
  if (iequals(scheme, "bearer")) {
    if (management_token_.empty() ||
        !protocol::constant_time_equal(std::string(credential), management_token_))
      return problem(401, "the management token is not valid");
    out.admin = true;
    return std::nullopt;
  }
  if (iequals(scheme, "tunnel")) {
    auto verified = verify_token(credential, key_, clock_());
    if (auto* error = std::get_if<token_error>(&verified))
      return problem(401, "the tunnel access token is not valid: " + std::string(to_string(*error)));
    out.claims = std::get<token_claims>(std::move(verified));
    return std::nullopt;
  }
  return problem(401, "unsupported authorization scheme; use 'tunnel' or 'Bearer'");
}

relay_auth management_api::authorize_relay(const std::string& tunnel_id, std::string_view token,
                                           std::string_view required_scope) const {
  caller who;
  if (!management_token_.empty() && protocol::constant_time_equal(std::string(token), management_token_)) {
    who.admin = true;
  } else {
    auto verified = verify_token(token, key_, clock_());
    // Expired included: the SDK refreshes its token once on 401 and retries (devtunnels-protocol.md §4).
    if (std::holds_alternative<token_error>(verified)) return relay_auth::unauthorized;
    who.claims = std::get<token_claims>(std::move(verified));
    if (who.claims.tunnel_id != tunnel_id || !who.holds(required_scope)) return relay_auth::forbidden;
  }
  return store_.find(tunnel_id) ? relay_auth::ok : relay_auth::not_found;
}

std::size_t management_api::stored_tunnels() const { return store_.size(); }

std::optional<tunnel_record> management_api::find_tunnel(const std::string& tunnel_id) const {
  return store_.find(tunnel_id);
}

std::optional<tunnel_endpoint> management_api::current_endpoint(const std::string& tunnel_id) const {
  auto t = store_.find(tunnel_id);
  if (!t) return std::nullopt;
  for (const auto& e : t->endpoints)
    if (e.connection_mode == tunnel_relay_mode) return e;
  return std::nullopt;
}

void management_api::set_max_json_depth(std::size_t depth) {
  max_json_depth_ = std::clamp<std::size_t>(depth, 1, default_max_json_depth);
}

void management_api::set_relay_host_public_keys(std::vector<std::string> base64_keys) {
  relay_host_keys_ = std::move(base64_keys);
}

std::string management_api::issue_tunnel_token(const std::string& tunnel_id,
                                               const std::vector<std::string>& scopes) const {
  token_claims claims;
  claims.tunnel_id = tunnel_id;
  claims.cluster_id = local_cluster_id;
  claims.scopes = scopes;
  claims.iat = clock_();
  claims.exp = claims.iat + token_lifetime_.count();
  claims.iss = public_url_;
  return issue_token(claims, key_);
}

std::string management_api::relay_uri(const std::string& tunnel_id, const char* role) const {
  return ws_base_ + "/tunnels/" + tunnel_id + "/" + role;
}
std::string management_api::host_relay_uri(const std::string& tunnel_id) const {
  return relay_uri(tunnel_id, "host");
}
std::string management_api::client_relay_uri(const std::string& tunnel_id) const {
  return relay_uri(tunnel_id, "client");
}

// ---------------------------------------------------------------------------------------------------------
// Contract shapes (contracts tunnel.ts, tunnelPort.ts, tunnelRelayTunnelEndpoint.ts)

nlohmann::json management_api::endpoint_json(const tunnel_record& t, const tunnel_endpoint& e) const {
  json j = endpoint_fields(e);
  for (const auto& k : relay_host_keys_) j["hostPublicKeys"].push_back(k);
  j["hostRelayUri"] = host_relay_uri(t.tunnel_id);
  j["clientRelayUri"] = client_relay_uri(t.tunnel_id);
  return j;
}

namespace {

json port_json(const tunnel_record& t, const tunnel_port& p) {
  json j = port_fields(p);
  j["clusterId"] = t.cluster_id;
  j["tunnelId"] = t.tunnel_id;
  return j;
}

}  // namespace

nlohmann::json management_api::tunnel_json(const tunnel_record& t, bool include_ports,
                                           const std::map<std::string, std::string>& tokens) const {
  json j = {{"clusterId", t.cluster_id},
            {"tunnelId", t.tunnel_id},
            {"labels", t.labels},
            {"endpoints", json::array()},
            {"created", iso8601(t.created)}};
  if (!t.name.empty()) j["name"] = t.name;
  if (!t.description.empty()) j["description"] = t.description;
  if (!t.options.is_null()) j["options"] = t.options;
  // Clients refuse a tunnel whose `endpoints` is missing, so it is always an array (TUNNEL.md).
  for (const auto& e : t.endpoints) j["endpoints"].push_back(endpoint_json(t, e));
  if (include_ports) {
    j["ports"] = json::array();
    for (const auto& p : t.ports) j["ports"].push_back(port_json(t, p));
  }
  if (!tokens.empty()) j["accessTokens"] = tokens;
  return j;
}

namespace {

// `tokenScopes=host,connect`: one token per item; an item may itself be several space-separated scopes
// (the SDK's validateScopes allows that), giving one token with all of them under that key. Items the
// caller does not hold are left out, not refused (TUNNEL.md).
template <typename Caller, typename Issue>
std::variant<std::map<std::string, std::string>, http_response> requested_tokens(const http_request& request,
                                                                                 const Caller& who,
                                                                                 const Issue& issue) {
  std::map<std::string, std::string> tokens;
  auto it = request.query.find("tokenScopes");
  if (it == request.query.end()) return tokens;
  for (const auto& item : split(it->second, ',')) {
    std::vector<std::string> scopes;
    for (const auto& s : split(item, ' '))
      if (!s.empty()) scopes.push_back(s);
    if (scopes.empty()) continue;
    bool held = true;
    for (const auto& s : scopes) {
      if (s == create_scope) {
        held = false;
      } else if (!grantable_scopes.count(s)) {
        return problem(400, "unknown token scope '" + s + "'");
      } else if (!who.holds(s)) {
        held = false;
      }
    }
    if (!held) continue;
    std::string key;
    for (const auto& s : scopes) key += (key.empty() ? "" : " ") + s;
    tokens[key] = issue(scopes);
  }
  return tokens;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Routes

http_response management_api::get_clusters() const {
  // ClusterDetails[]
  return json_response(200, json::array({{{"clusterId", local_cluster_id},
                                          {"uri", public_url_ + "/"},
                                          {"azureLocation", local_cluster_id}}}));
}

http_response management_api::get_cluster_recommendations() const {
  // ClusterRecommendationResponse; the SDK's createTunnel reads only recommendedClusterId.
  json recommendation = {{"clusterId", local_cluster_id},
                         {"azureLocation", local_cluster_id},
                         {"azureGeo", local_cluster_id},
                         {"clusterUri", public_url_ + "/"},
                         {"availability", "Available"},
                         {"utilizationPercent", 0},
                         {"reason", "the only cluster of this relay"}};
  return json_response(200, {{"recommendedClusterId", local_cluster_id},
                             {"isFallback", false},
                             {"recommendations", json::array({recommendation})}});
}

http_response management_api::list_tunnels(const http_request& request, const caller& who) {
  if (!who.admin) return problem(403, "listing tunnels needs the management token");
  std::vector<std::string> wanted;
  if (auto it = request.query.find("labels"); it != request.query.end())
    for (const auto& l : split(it->second, ','))
      if (!l.empty()) wanted.push_back(l);
  const bool all_labels = query_flag(request, "allLabels");
  std::size_t limit = SIZE_MAX;
  if (auto it = request.query.find("limit"); it != request.query.end()) {
    auto n = parse_port_number(it->second);  // 1..65535 is plenty for a page size
    if (!n) return problem(400, "'limit' must be a positive integer");
    limit = *n;
  }
  const bool include_ports = query_flag(request, "includePorts");

  json tunnels = json::array();
  for (const auto& t : store_.list()) {
    if (tunnels.size() >= limit) break;
    if (!wanted.empty()) {
      auto has = [&](const std::string& l) { return std::count(t.labels.begin(), t.labels.end(), l) > 0; };
      const bool match = all_labels ? std::all_of(wanted.begin(), wanted.end(), has)
                                    : std::any_of(wanted.begin(), wanted.end(), has);
      if (!match) continue;
    }
    auto tokens = requested_tokens(request, who, [&](const std::vector<std::string>& scopes) {
      return issue_tunnel_token(t.tunnel_id, scopes);
    });
    if (auto* r = std::get_if<http_response>(&tokens)) return *r;
    tunnels.push_back(tunnel_json(t, include_ports, std::get<0>(tokens)));
  }
  // TunnelListByRegionResponse: one region, our cluster.
  return json_response(200,
                       {{"value", json::array({{{"clusterId", local_cluster_id}, {"value", tunnels}}})}});
}

http_response management_api::get_tunnel(const http_request& request, const caller& who,
                                         const std::string& id) {
  if (auto r = deny(who, id, read_scopes)) return *r;
  auto t = store_.find(id);
  if (!t) return tunnel_not_found(id);
  auto tokens = requested_tokens(
      request, who, [&](const std::vector<std::string>& scopes) { return issue_tunnel_token(id, scopes); });
  if (auto* r = std::get_if<http_response>(&tokens)) return *r;
  return json_response(200, tunnel_json(*t, query_flag(request, "includePorts"), std::get<0>(tokens)));
}

http_response management_api::put_tunnel(const http_request& request, const caller& who,
                                         const std::string& id) {
  if (auto r = deny(who, id, manage_scopes)) return *r;
  if (!valid_tunnel_id(id))
    return problem(400, "a tunnel id is 3 to 49 lowercase letters, digits or inner '-'");
  auto parsed = parse_body(request, max_json_depth_, counters_->json_too_deep);
  if (auto* refused = std::get_if<http_response>(&parsed)) return *refused;
  const auto* body = &std::get<json>(parsed);

  auto existing = store_.find_latest(id);
  // The C# SDK sends If-None-Match; the TypeScript, Go and Java SDKs send "If-Not-Match" for the same
  // create-only request.
  const bool create_only = header(request, "if-none-match") == "*" || header(request, "if-not-match") == "*";
  const bool update_only = header(request, "if-match") == "*";
  if (existing && create_only) return problem(409, "tunnel '" + id + "' already exists");
  if (!existing && update_only) return tunnel_not_found(id);
  // A tunnel token speaks for a tunnel that exists; bringing one into being takes the management token.
  if (!existing && !who.admin) return problem(403, "creating a tunnel needs the management token");

  tunnel_record t = existing ? *existing : tunnel_record{};
  if (!existing) {
    t.tunnel_id = id;
    t.created = clock_();
  }
  if (auto error = apply_tunnel_body(*body, id, t)) return problem(400, *error);

  auto tokens = requested_tokens(
      request, who, [&](const std::vector<std::string>& scopes) { return issue_tunnel_token(id, scopes); });
  if (auto* r = std::get_if<http_response>(&tokens)) return *r;
  await_durable(store_.submit_put(t), "the tunnel could not be saved");
  spdlog::info("tunnel {} {}", id, existing ? "updated" : "created");
  return json_response(existing ? 200 : 201, tunnel_json(t, true, std::get<0>(tokens)));
}

http_response management_api::delete_tunnel(const caller& who, const std::string& id) {
  if (auto r = deny(who, id, manage_scopes)) return *r;
  if (!store_.find_latest(id)) return tunnel_not_found(id);
  await_durable(store_.submit_erase(id), "the tunnel could not be deleted");
  spdlog::info("tunnel {} deleted", id);
  return true_response();
}

http_response management_api::list_ports(const caller& who, const std::string& id) {
  if (auto r = deny(who, id, read_scopes)) return *r;
  auto t = store_.find(id);
  if (!t) return tunnel_not_found(id);
  json ports = json::array();
  for (const auto& p : t->ports) ports.push_back(port_json(*t, p));
  return json_response(200, {{"value", ports}});  // TunnelPortListResponse
}

http_response management_api::get_port(const caller& who, const std::string& id, const std::string& port) {
  if (auto r = deny(who, id, read_scopes)) return *r;
  auto t = store_.find(id);
  if (!t) return tunnel_not_found(id);
  const auto number = parse_port_number(port);
  if (number) {
    for (const auto& p : t->ports)
      if (p.port_number == *number) return json_response(200, port_json(*t, p));
  }
  return problem(404, "tunnel '" + id + "' has no port " + port);
}

http_response management_api::put_port(const http_request& request, const caller& who, const std::string& id,
                                       const std::string& port) {
  if (auto r = deny(who, id, port_write_scopes)) return *r;
  auto t = store_.find_latest(id);
  if (!t) return tunnel_not_found(id);
  const auto number = parse_port_number(port);
  if (!number) return problem(400, "a port number is an integer from 1 to 65535");
  auto parsed = parse_body(request, max_json_depth_, counters_->json_too_deep);
  if (auto* refused = std::get_if<http_response>(&parsed)) return *refused;
  const auto* body = &std::get<json>(parsed);
  tunnel_port p;
  if (auto error = read_port(*body, number, p)) return problem(400, *error);

  auto it = std::find_if(t->ports.begin(), t->ports.end(),
                         [&](const tunnel_port& q) { return q.port_number == *number; });
  const bool exists = it != t->ports.end();
  // Same create/update preconditions as tunnels: createTunnelPort sends If-Not-Match, updateTunnelPort
  // If-Match.
  if (exists && (header(request, "if-none-match") == "*" || header(request, "if-not-match") == "*"))
    return problem(409, "tunnel '" + id + "' already has port " + port);
  if (!exists && header(request, "if-match") == "*")
    return problem(404, "tunnel '" + id + "' has no port " + port);
  if (!exists && t->ports.size() >= max_ports)
    return problem(400, "a tunnel has at most " + std::to_string(max_ports) + " ports");

  if (exists) {
    *it = p;
  } else {
    t->ports.insert(std::upper_bound(t->ports.begin(), t->ports.end(), p,
                                     [](const tunnel_port& a, const tunnel_port& b) {
                                       return a.port_number < b.port_number;
                                     }),
                    p);
  }
  await_durable(store_.submit_put(*t), "the port could not be saved");
  spdlog::info("tunnel {} port {} {}", id, port, exists ? "updated" : "added");
  return json_response(exists ? 200 : 201, port_json(*t, p));
}

http_response management_api::delete_port(const caller& who, const std::string& id, const std::string& port) {
  if (auto r = deny(who, id, port_write_scopes)) return *r;
  auto t = store_.find_latest(id);
  if (!t) return tunnel_not_found(id);
  const auto number = parse_port_number(port);
  auto it = std::find_if(t->ports.begin(), t->ports.end(),
                         [&](const tunnel_port& q) { return number && q.port_number == *number; });
  if (it == t->ports.end()) return problem(404, "tunnel '" + id + "' has no port " + port);
  t->ports.erase(it);
  await_durable(store_.submit_put(*t), "the port could not be deleted");
  spdlog::info("tunnel {} port {} removed", id, port);
  return true_response();
}

http_response management_api::put_endpoint(const http_request& request, const caller& who,
                                           const std::string& id, const std::string& endpoint_id) {
  if (auto r = deny(who, id, endpoint_scopes)) return *r;
  auto t = store_.find_latest(id);
  if (!t) return tunnel_not_found(id);
  if (!valid_endpoint_id(endpoint_id)) return problem(400, "an endpoint id is 1 to 200 URL-safe characters");
  auto parsed = parse_body(request, max_json_depth_, counters_->json_too_deep);
  if (auto* refused = std::get_if<http_response>(&parsed)) return *refused;
  const auto* body = &std::get<json>(parsed);
  std::string mode;
  if (auto it = request.query.find("connectionMode"); it != request.query.end()) mode = it->second;
  tunnel_endpoint e;
  if (auto error = read_endpoint(*body, endpoint_id, mode, e)) return problem(400, *error);

  // One host per tunnel (TUNNEL.md): the new endpoint replaces every other relay endpoint — those of another
  // hostId, and an older one of the same host (the SDK's own update drops endpoints with the same hostId and
  // mode). Clients then see exactly one endpoint with the current host keys.
  const auto replaced = std::count_if(
      t->endpoints.begin(), t->endpoints.end(),
      [&](const tunnel_endpoint& x) { return x.connection_mode == e.connection_mode && x.id != e.id; });
  t->endpoints.erase(
      std::remove_if(t->endpoints.begin(), t->endpoints.end(),
                     [&](const tunnel_endpoint& x) { return x.connection_mode == e.connection_mode; }),
      t->endpoints.end());
  t->endpoints.push_back(e);
  await_durable(store_.submit_put(*t), "the endpoint could not be saved");
  spdlog::info("tunnel {} endpoint {} registered by host {}{}", id, endpoint_id, e.host_id,
               replaced > 0 ? fmt::format(", replacing {} other endpoint(s)", replaced) : std::string());
  return json_response(200, endpoint_json(*t, e));
}

http_response management_api::delete_endpoint(const caller& who, const std::string& id,
                                              const std::string& endpoint_id) {
  if (auto r = deny(who, id, endpoint_scopes)) return *r;
  auto t = store_.find_latest(id);
  if (!t) return tunnel_not_found(id);
  auto it = std::find_if(t->endpoints.begin(), t->endpoints.end(),
                         [&](const tunnel_endpoint& x) { return x.id == endpoint_id; });
  // 404 lets the SDK's deleteTunnelEndpoints report false for an endpoint another host already replaced.
  if (it == t->endpoints.end())
    return problem(404, "tunnel '" + id + "' has no endpoint '" + endpoint_id + "'");
  t->endpoints.erase(it);
  await_durable(store_.submit_put(*t), "the endpoint could not be deleted");
  spdlog::info("tunnel {} endpoint {} removed", id, endpoint_id);
  return true_response();
}

http_response management_api::post_events(const http_request& request, const caller& who,
                                          const std::string& id) {
  if (auto r = deny(who, id, event_scopes)) return *r;
  if (!store_.find(id)) return tunnel_not_found(id);
  auto parsed = parse_body(request, max_json_depth_, counters_->json_too_deep);
  if (auto* refused = std::get_if<http_response>(&parsed)) return *refused;
  const auto* body = &std::get<json>(parsed);
  // Current SDKs send an array of TunnelEvent; accept a single object too.
  const json events = body->is_array() ? *body : json::array({*body});
  auto text = [](const json& event, const char* name) {
    const json* v = event.is_object() ? field(event, name) : nullptr;
    if (!v || !v->is_string()) return std::string();
    std::string s = v->get<std::string>().substr(0, max_event_text_logged);
    // Keep one event on one log line whatever the client put in it.
    std::replace_if(
        s.begin(), s.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
    return s;
  };
  std::size_t logged = 0;
  for (const auto& event : events) {
    if (!event.is_object()) return problem(400, "each event must be a JSON object");
    if (logged++ < max_events_logged)
      spdlog::info("tunnel {} event {} [{}] {}", id, text(event, "name"), text(event, "severity"),
                   text(event, "details"));
  }
  return true_response();
}

const char* reason_phrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 507:
      return "Insufficient Storage";
    default:
      return status >= 500 ? "Internal Server Error" : "Error";
  }
}

}  // namespace sb::tunnel

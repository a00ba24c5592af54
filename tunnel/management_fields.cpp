#include "tunnel/management_fields.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <set>

#include "protocol/text.hpp"

namespace sb::tunnel::fields {

namespace {

const std::set<std::string> port_protocols = {"auto", "tcp", "udp", "ssh", "rdp", "http", "https"};

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// labelPattern: [\w-=]{1,50}
bool valid_label(std::string_view label) {
  if (label.empty() || label.size() > max_label_length) return false;
  return std::all_of(label.begin(), label.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '=';
  });
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

}  // namespace

std::string dump(const json& value) {
  // Replace rather than throw on invalid UTF-8: echoed request text must never turn into an exception.
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
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

// ---------------------------------------------------------------------------------------------------------
// Validation (contracts tunnelConstraints.ts)


// newTunnelIdPattern / tunnelNamePattern: [a-z0-9][a-z0-9-]{1,47}[a-z0-9]. The SDK's generated ids
// ("happy-lake-x7k2q9b") and the old 8-character ids both fit.
bool valid_tunnel_id(std::string_view id) {
  if (id.size() < 3 || id.size() > max_name_length) return false;
  if (!is_lower_alnum(id.front()) || !is_lower_alnum(id.back())) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return is_lower_alnum(c) || c == '-'; });
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


const json* field(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
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

}  // namespace sb::tunnel::fields

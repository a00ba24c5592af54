#include "cluster/records.hpp"

#include <algorithm>
#include <cctype>

#include "protocol/json_bounds.hpp"

namespace sb::cluster {

namespace {

using json = nlohmann::json;

constexpr std::size_t max_small_record_bytes = 4096;
constexpr std::size_t max_id_bytes = 512;  // an encoded 128-character id, with room

std::optional<json> parse_object(std::string_view text, std::size_t max_depth) {
  auto parsed = protocol::parse_untrusted_json(text, max_depth);
  if (!parsed.ok() || !parsed.value.is_object()) return std::nullopt;
  return std::move(parsed.value);
}

bool short_string(const json& j) { return j.is_string() && j.get_ref<const std::string&>().size() <= max_id_bytes; }

template <class T>
std::optional<T> number_at(const json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end()) return T{};
  if (!it->is_number_integer()) return std::nullopt;
  if constexpr (std::is_unsigned_v<T>) {
    if (it->is_number_unsigned()) return it->get<T>();
    return std::nullopt;
  } else {
    return it->get<T>();
  }
}

}  // namespace

const session_record::member* session_record::find(std::string_view client_id) const {
  for (const auto& m : members)
    if (m.client_id == client_id) return &m;
  return nullptr;
}

bool session_record::add(std::string client_id, std::string node_id) {
  if (find(client_id)) return false;
  members.push_back({std::move(client_id), std::move(node_id), next_seq++});
  return true;
}

bool session_record::remove(std::string_view client_id) {
  auto it = std::find_if(members.begin(), members.end(), [&](const member& m) { return m.client_id == client_id; });
  if (it == members.end()) return false;
  members.erase(it);
  return true;
}

std::size_t session_record::remove_node(std::string_view node_id) {
  const auto before = members.size();
  members.erase(std::remove_if(members.begin(), members.end(), [&](const member& m) { return m.node_id == node_id; }),
                members.end());
  return before - members.size();
}

std::size_t session_record::members_on_other_nodes(std::string_view node_id) const {
  return static_cast<std::size_t>(
      std::count_if(members.begin(), members.end(), [&](const member& m) { return m.node_id != node_id; }));
}

std::string encode(const session_record& r) {
  json members = json::array();
  for (const auto& m : r.members) members.push_back(json::array({m.client_id, m.node_id, m.seq}));
  return json{{"id", r.id}, {"metadata", r.metadata}, {"createdAt", r.created_at}, {"members", std::move(members)},
              {"nextSeq", r.next_seq}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<session_record> decode_session_record(std::string_view text, std::size_t max_json_depth) {
  auto o = parse_object(text, max_json_depth);
  if (!o) return std::nullopt;
  session_record r;
  auto id = o->find("id");
  if (id == o->end() || !short_string(*id)) return std::nullopt;
  r.id = id->get<std::string>();
  if (auto md = o->find("metadata"); md != o->end()) {
    if (!md->is_object()) return std::nullopt;
    r.metadata = std::move(*md);
  }
  auto created = number_at<std::int64_t>(*o, "createdAt");
  auto next = number_at<std::uint64_t>(*o, "nextSeq");
  if (!created || !next) return std::nullopt;
  r.created_at = *created;
  r.next_seq = *next;
  auto members = o->find("members");
  if (members == o->end() || !members->is_array()) return std::nullopt;
  r.members.reserve(members->size());
  for (const auto& m : *members) {
    if (!m.is_array() || m.size() != 3 || !short_string(m[0]) || !short_string(m[1]) || !m[2].is_number_unsigned())
      return std::nullopt;
    r.members.push_back({m[0].get<std::string>(), m[1].get<std::string>(), m[2].get<std::uint64_t>()});
  }
  return r;
}

// The fanout header is two short lines before the frame: no escaping of the frame, which is most of the bytes.
std::string encode(const fanout& f) {
  std::string out;
  out.reserve(f.origin_node.size() + f.except_client.size() + f.frame.size() + 2);
  out += f.origin_node;
  out += '\n';
  out += f.except_client;
  out += '\n';
  out += f.frame;
  return out;
}

std::optional<fanout> decode_fanout(std::string_view data) {
  const auto first = data.find('\n');
  if (first == std::string_view::npos || first > max_id_bytes) return std::nullopt;
  const auto second = data.find('\n', first + 1);
  if (second == std::string_view::npos || second - first - 1 > max_id_bytes) return std::nullopt;
  fanout f;
  f.origin_node = std::string(data.substr(0, first));
  f.except_client = std::string(data.substr(first + 1, second - first - 1));
  f.frame = std::string(data.substr(second + 1));
  if (f.origin_node.empty() || f.frame.empty()) return std::nullopt;
  return f;
}

std::string encode(const heartbeat& h) {
  return json{{"nodeId", h.node_id}, {"address", h.address}, {"state", h.state}, {"clients", h.clients},
              {"sessions", h.sessions}, {"agents", h.agents}, {"sentAt", h.sent_at}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<heartbeat> decode_heartbeat(std::string_view data) {
  if (data.size() > max_small_record_bytes) return std::nullopt;
  auto o = parse_object(data, 4);
  if (!o) return std::nullopt;
  heartbeat h;
  for (auto [key, field] : {std::pair{"nodeId", &h.node_id}, std::pair{"address", &h.address}, std::pair{"state", &h.state}}) {
    auto it = o->find(key);
    if (it == o->end() || !short_string(*it)) return std::nullopt;
    *field = it->get<std::string>();
  }
  if (!valid_name(h.node_id)) return std::nullopt;
  auto clients = number_at<std::uint64_t>(*o, "clients");
  auto sessions = number_at<std::uint64_t>(*o, "sessions");
  auto agents = number_at<std::uint64_t>(*o, "agents");
  auto sent = number_at<std::int64_t>(*o, "sentAt");
  if (!clients || !sessions || !agents || !sent) return std::nullopt;
  h.clients = *clients;
  h.sessions = *sessions;
  h.agents = *agents;
  h.sent_at = *sent;
  return h;
}

std::string encode(const presence_record& p) {
  json j = {{"clientId", p.client_id}, {"nodeId", p.node_id}, {"status", p.status}};
  if (p.role) j["role"] = *p.role;
  if (p.device_id) j["deviceId"] = *p.device_id;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<presence_record> decode_presence_record(std::string_view text) {
  if (text.size() > max_small_record_bytes) return std::nullopt;
  auto o = parse_object(text, 4);
  if (!o) return std::nullopt;
  presence_record p;
  for (auto [key, field] : {std::pair{"clientId", &p.client_id}, std::pair{"nodeId", &p.node_id},
                            std::pair{"status", &p.status}}) {
    auto it = o->find(key);
    if (it == o->end() || !short_string(*it)) return std::nullopt;
    *field = it->get<std::string>();
  }
  for (auto [key, field] : {std::pair{"role", &p.role}, std::pair{"deviceId", &p.device_id}}) {
    auto it = o->find(key);
    if (it == o->end()) continue;
    if (!short_string(*it)) return std::nullopt;
    *field = it->get<std::string>();
  }
  return p;
}

std::string encode(const agent_entry& a) {
  json j = {{"agentId", a.agent_id}, {"nodeId", a.node_id}, {"type", a.type}, {"status", a.status},
            {"capabilities", a.capabilities}};
  if (a.name) j["name"] = *a.name;
  if (a.client_id) j["clientId"] = *a.client_id;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<agent_entry> decode_agent_entry(std::string_view text) {
  constexpr std::size_t max_capabilities = 1024;
  if (text.size() > 1024 * 1024) return std::nullopt;
  auto o = parse_object(text, 4);
  if (!o) return std::nullopt;
  agent_entry a;
  for (auto [key, field] : {std::pair{"agentId", &a.agent_id}, std::pair{"nodeId", &a.node_id},
                            std::pair{"type", &a.type}, std::pair{"status", &a.status}}) {
    auto it = o->find(key);
    if (it == o->end() || !short_string(*it)) return std::nullopt;
    *field = it->get<std::string>();
  }
  for (auto [key, field] : {std::pair{"name", &a.name}, std::pair{"clientId", &a.client_id}}) {
    auto it = o->find(key);
    if (it == o->end()) continue;
    if (!short_string(*it)) return std::nullopt;
    *field = it->get<std::string>();
  }
  auto caps = o->find("capabilities");
  if (caps == o->end() || !caps->is_array() || caps->size() > max_capabilities) return std::nullopt;
  for (const auto& c : *caps) {
    if (!short_string(c)) return std::nullopt;
    a.capabilities.push_back(c.get<std::string>());
  }
  if (a.status != "online" && a.status != "busy" && a.status != "offline") return std::nullopt;
  return a;
}

std::string encode(const routed_request& r) {
  return json{{"agentId", r.agent_id}, {"from", r.from}, {"request", r.request}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
}

std::optional<routed_request> decode_routed_request(std::string_view text, std::size_t max_json_depth) {
  auto o = parse_object(text, max_json_depth);
  if (!o) return std::nullopt;
  auto agent = o->find("agentId");
  auto from = o->find("from");
  if (agent == o->end() || from == o->end() || !short_string(*agent) || !short_string(*from)) return std::nullopt;
  routed_request r{agent->get<std::string>(), from->get<std::string>(), nullptr};
  if (auto it = o->find("request"); it != o->end()) r.request = std::move(*it);
  return r;
}

std::string encode(const routed_answer& a) {
  json j = {{"response", a.response}};
  if (a.error_code) {
    j["error"] = *a.error_code;
    j["message"] = a.message;
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::optional<routed_answer> decode_routed_answer(std::string_view text, std::size_t max_json_depth) {
  auto o = parse_object(text, max_json_depth);
  if (!o) return std::nullopt;
  routed_answer a;
  if (auto it = o->find("error"); it != o->end()) {
    if (!short_string(*it)) return std::nullopt;
    a.error_code = it->get<std::string>();
    auto msg = o->find("message");
    if (msg == o->end() || !msg->is_string()) return std::nullopt;
    a.message = msg->get<std::string>().substr(0, 1024);
  }
  if (auto it = o->find("response"); it != o->end()) a.response = std::move(*it);
  return a;
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_'; });
}

}  // namespace sb::cluster

#include "tunnel/tunnel_store.hpp"

#include <spdlog/spdlog.h>

#include <stdexcept>
#include <variant>

#include "protocol/json_bounds.hpp"
#include "tunnel/files.hpp"
#include "tunnel/management_fields.hpp"

namespace sb::tunnel {

using namespace fields;

namespace {

constexpr int store_format_version = 1;

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
  make_private_directories(data_dir_);
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

}  // namespace sb::tunnel

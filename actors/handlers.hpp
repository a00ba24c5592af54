#pragma once
// Handlers registered in code for message types the protocol does not define (the seed's `registerHandler`).
#include <functional>
#include <map>
#include <string>

#include "protocol/message.hpp"

namespace sb::actors {

/// What a handler sees and how it answers. The handler runs inside the client's actor; it must not block.
class handler_context {
 public:
  handler_context(const std::string& client_id, const std::string& user_id, const protocol::envelope& message,
                  std::function<void(protocol::envelope)> send)
      : client_id_(client_id), user_id_(user_id), message_(message), send_(std::move(send)) {}

  const std::string& client_id() const { return client_id_; }
  const std::string& user_id() const { return user_id_; }
  const protocol::envelope& message() const { return message_; }

  /// The one reply; later calls are ignored so a client never gets two.
  void reply(std::string type, nlohmann::json payload);
  void fail(protocol::error_code code, std::string message);
  bool replied() const { return replied_; }

 private:
  const std::string& client_id_;
  const std::string& user_id_;
  const protocol::envelope& message_;
  std::function<void(protocol::envelope)> send_;
  bool replied_ = false;
};

using message_handler = std::function<void(handler_context&)>;

class handler_registry {
 public:
  void add(std::string type, message_handler handler) { handlers_[std::move(type)] = std::move(handler); }
  const message_handler* find(const std::string& type) const {
    auto it = handlers_.find(type);
    return it == handlers_.end() ? nullptr : &it->second;
  }

 private:
  std::map<std::string, message_handler> handlers_;
};

}  // namespace sb::actors

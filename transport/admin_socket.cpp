#include "transport/admin_socket.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <optional>
#include <stdexcept>

#include "protocol/admin_request.hpp"
#include "protocol/json_bounds.hpp"
#include "transport/listen.hpp"

namespace sb::transport {

namespace net = boost::asio;
using local = net::local::stream_protocol;
using nlohmann::json;

namespace {

constexpr std::size_t max_line = 64 * 1024;
// Admin requests are flat objects; anything deeper is refused before it is built (see json_bounds.hpp).
constexpr std::size_t max_depth = 16;

json error_reply(const std::string& message) { return {{"ok", false}, {"error", message}}; }

class admin_connection : public std::enable_shared_from_this<admin_connection> {
 public:
  /// Shares the handler: a connection still answering may outlive the server that accepted it.
  admin_connection(local::socket socket, std::shared_ptr<admin_handler> handler)
      : socket_(std::move(socket)), handler_(std::move(handler)), input_(max_line) {}

  void start() { do_read(); }

 private:
  void do_read() {
    net::async_read_until(
        socket_, input_, '\n',
        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) { self->on_line(ec, n); });
  }

  void on_line(boost::system::error_code ec, std::size_t n) {
    if (ec == net::error::not_found) return reply(error_reply("request line longer than 64 KiB"), false);
    if (ec) return;
    std::string line(net::buffers_begin(input_.data()), net::buffers_begin(input_.data()) + n);
    input_.consume(n);
    auto parsed = protocol::parse_admin_request(line, max_depth);
    if (auto* error = std::get_if<std::string>(&parsed)) return reply(error_reply(*error), true);
    json request = std::move(std::get<json>(parsed));
    // The handler may answer from another thread: hop back onto this connection's strand.
    (*handler_)(std::move(request), [self = shared_from_this()](json response) {
      net::post(self->socket_.get_executor(),
                [self, response = std::move(response)]() mutable { self->reply(std::move(response), true); });
    });
  }

  void reply(json response, bool keep_reading) {
    auto text =
        std::make_shared<std::string>(response.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
    net::async_write(
        socket_, net::buffer(*text),
        [self = shared_from_this(), text, keep_reading](boost::system::error_code ec, std::size_t) {
          if (!ec && keep_reading) self->do_read();
        });
  }

  local::socket socket_;
  std::shared_ptr<admin_handler> handler_;
  net::streambuf input_;
};

}  // namespace

struct admin_server::impl : std::enable_shared_from_this<admin_server::impl> {
  net::io_context& ioc;
  std::string path;
  std::shared_ptr<admin_handler> handler;
  local::acceptor acceptor;
  net::steady_timer retry;
  std::atomic<std::uint64_t> accept_failures{0};
  bool bound = false;  // start() made the socket file: stop() removes it, once

  impl(net::io_context& io, std::string p, admin_handler h)
      : ioc(io),
        path(std::move(p)),
        handler(std::make_shared<admin_handler>(std::move(h))),
        acceptor(net::make_strand(io)),
        retry(acceptor.get_executor()) {}

  void do_accept() {
    acceptor.async_accept(net::make_strand(ioc),
                          [self = shared_from_this()](boost::system::error_code ec, local::socket socket) {
                            self->on_accept(ec, std::move(socket));
                          });
  }

  void on_accept(boost::system::error_code ec, local::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      // EMFILE and friends: the pending connection stays queued, so accepting again at once would spin.
      spdlog::warn("admin socket accept failed: {}", ec.message());
      ++accept_failures;
      retry.expires_after(accept_retry_delay);
      retry.async_wait([self = shared_from_this()](boost::system::error_code wait_ec) {
        if (!wait_ec) self->do_accept();
      });
      return;
    }
    std::make_shared<admin_connection>(std::move(socket), handler)->start();
    do_accept();
  }
};

admin_server::admin_server(net::io_context& ioc, std::string path, admin_handler handler)
    : impl_(std::make_shared<impl>(ioc, std::move(path), std::move(handler))) {}

admin_server::~admin_server() { stop(); }

void admin_server::start() {
  const auto& path = impl_->path;
  // A socket file left by a crashed process would block bind; one that still answers belongs to a live node.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      throw std::runtime_error("adminSocket: '" + path + "' exists and is not a socket");
    local::socket probe(impl_->ioc);
    boost::system::error_code ec;
    probe.connect(local::endpoint(path), ec);
    if (!ec) throw std::runtime_error("adminSocket: '" + path + "' is in use by another process");
    ::unlink(path.c_str());
  }
  boost::system::error_code ec;
  auto& acc = impl_->acceptor;
  const mode_t old_mask = ::umask(0177);  // the socket is created 0600: only its owner may drive the node
  acc.open(local(), ec);
  if (!ec) acc.bind(local::endpoint(path), ec);
  ::umask(old_mask);
  if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("adminSocket: cannot listen on '" + path + "': " + ec.message());
  ::chmod(path.c_str(), 0600);
  impl_->bound = true;
  net::dispatch(acc.get_executor(), [self = impl_] { self->do_accept(); });
}

void admin_server::stop_accepting() {
  net::post(impl_->acceptor.get_executor(), [self = impl_] {
    boost::system::error_code ec;
    self->retry.cancel();
    self->acceptor.close(ec);
  });
}

void admin_server::stop() {
  if (impl_->ioc.stopped()) {
    // No io thread runs: closing here races with nothing.
    boost::system::error_code ec;
    impl_->retry.cancel();
    impl_->acceptor.close(ec);
  } else {
    // An io thread may be completing an accept on the acceptor's strand right now: close it there (the
    // handler keeps the impl alive), never from this thread.
    stop_accepting();
  }
  if (impl_->bound) {
    impl_->bound = false;
    ::unlink(impl_->path.c_str());
  }
}

const std::string& admin_server::path() const { return impl_->path; }

std::uint64_t admin_server::accept_failures() const { return impl_->accept_failures.load(); }

json admin_call(const std::string& path, const json& request, std::chrono::milliseconds timeout) {
  net::io_context ioc;
  local::socket socket(ioc);
  boost::system::error_code ec;
  socket.connect(local::endpoint(path), ec);
  if (ec) throw std::runtime_error("cannot connect to admin socket '" + path + "': " + ec.message());
  std::string line = request.dump() + "\n";
  net::write(socket, net::buffer(line), ec);
  if (ec) throw std::runtime_error("admin socket write failed: " + ec.message());
  net::streambuf input(max_line * 64);
  std::optional<json> result;
  std::string failure;
  net::async_read_until(socket, input, '\n', [&](boost::system::error_code rec, std::size_t n) {
    if (rec) {
      failure = "admin socket read failed: " + rec.message();
      return;
    }
    std::string text(net::buffers_begin(input.data()), net::buffers_begin(input.data()) + n);
    // Our own node answers, but the reply is still bytes from a socket: bounded like any other input.
    auto parsed = protocol::parse_untrusted_json(text);
    if (!parsed.ok())
      failure =
          "admin socket answered with " + protocol::describe(parsed.error, protocol::default_max_json_depth);
    else
      result = std::move(parsed.value);
  });
  ioc.run_for(timeout);
  if (result) return *result;
  throw std::runtime_error(failure.empty() ? "admin socket did not answer in time" : failure);
}

}  // namespace sb::transport

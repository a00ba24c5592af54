#pragma once
// TLS server context from PEM files (wss/https).
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

namespace sb::transport {

/// Loads the certificate chain and key; throws std::runtime_error naming the file that failed.
std::shared_ptr<boost::asio::ssl::context> make_server_tls_context(const std::string& cert_file,
                                                                   const std::string& key_file);

}  // namespace sb::transport

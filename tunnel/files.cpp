#include "tunnel/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace sb::tunnel {

namespace {

std::string parent_directory(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

std::string errno_message(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

void make_private_directories(const std::string& path) {
  // mkdir -p with 0700: the directory holds the signing key.
  std::string partial;
  std::size_t from = 0;
  while (from <= path.size()) {
    const auto slash = path.find('/', from);
    const auto end = slash == std::string::npos ? path.size() : slash;
    partial += path.substr(from, end - from);
    if (!partial.empty() && ::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST)
      throw std::runtime_error(errno_message("cannot create directory", partial));
    if (slash == std::string::npos) break;
    partial += '/';
    from = slash + 1;
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

std::optional<std::string> write_private_file(const std::string& path, std::string_view content) {
  const std::string dir = parent_directory(path);
  const auto slash = path.find_last_of('/');
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string temp = dir + "/." + base + ".tmp-XXXXXX";
  // mkstemp creates the file with mode 0600, so the secret is never readable by others, not even briefly.
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) return errno_message("cannot create a temporary file for", path);
  auto fail = [&](const std::string& what) {
    std::string message = errno_message(what, path);
    ::close(fd);
    ::unlink(temp.c_str());
    return message;
  };
  std::size_t written = 0;
  while (written < content.size()) {
    const auto n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write");
    }
    written += static_cast<std::size_t>(n);
  }
  // Without fsync a crash after the rename can leave an empty file under the final name.
  if (::fsync(fd) != 0) return fail("cannot sync");
  if (::close(fd) != 0) {
    std::string message = errno_message("cannot close", path);
    ::unlink(temp.c_str());
    return message;
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    std::string message = errno_message("cannot rename a temporary file to", path);
    ::unlink(temp.c_str());
    return message;
  }
  // Persist the directory entry too; failure here leaves a complete file, so it is not reported.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return std::nullopt;
}

}  // namespace sb::tunnel

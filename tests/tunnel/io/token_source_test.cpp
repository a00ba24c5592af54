// The token command is hostile input: bounded in time and in output, killed with everything it started,
// and every failure named.
#include <signal.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "actors/tunnel_setup.hpp"
#include "support/gateway_fixture.hpp"
#include "tunnel/io/token_source.hpp"

using sb::tunnel::io::run_token_command;
using namespace std::chrono_literals;

namespace {

bool process_gone(pid_t pid) {
  // A killed child reparented to a reaper that is slow may linger as a zombie: that is gone too.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

}  // namespace

TEST_CASE("a token command's stdout, trimmed, is the token") {
  auto r = run_token_command("printf '  tok-123\\n'", 5000ms, 64 * 1024);
  REQUIRE(r.token);
  CHECK(*r.token == "tok-123");
}

TEST_CASE("a token command that never exits is killed at its timeout, with what it started") {
  sb::test::temp_dir dir;
  const auto pidfile = (dir.path() / "pid").string();
  const auto started = std::chrono::steady_clock::now();
  // The background sleep holds stdout open too: only killing the group ends the read.
  auto r = run_token_command("sleep 60 & echo $! > " + pidfile + "; wait", 300ms, 64 * 1024);
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK_FALSE(r.token);
  CHECK(r.error == "the token command did not finish within 300 ms (killed)");
  CHECK(took >= 300ms);
  CHECK(took < 3s);
  pid_t pid = 0;
  std::ifstream(pidfile) >> pid;
  REQUIRE(pid > 0);
  CHECK(sb::test::eventually([&] { return process_gone(pid); }, 5s));
}

TEST_CASE("a token command that closes its stdout but keeps running is killed at its timeout") {
  auto r = run_token_command("echo token; exec >&-; sleep 60", 300ms, 64 * 1024);
  CHECK_FALSE(r.token);
  CHECK(r.error == "the token command did not finish within 300 ms (killed)");
}

TEST_CASE("a token command that prints more than the limit is killed with a clear error") {
  const auto started = std::chrono::steady_clock::now();
  auto r = run_token_command("yes tokentokentoken", 5000ms, 64 * 1024);
  CHECK_FALSE(r.token);
  CHECK(r.error == "the token command printed more than 65536 bytes (killed)");
  CHECK(std::chrono::steady_clock::now() - started < 3s);
  auto exact = run_token_command("head -c 65536 /dev/zero | tr '\\0' a", 5000ms, 64 * 1024);
  REQUIRE(exact.token);
  CHECK(exact.token->size() == 65536);
}

TEST_CASE("a token command that fails or prints nothing says so") {
  CHECK(run_token_command("exit 3", 5000ms, 1024).error == "the token command exited with status 3");
  CHECK(run_token_command("true", 5000ms, 1024).error == "the token command printed nothing");
  CHECK(run_token_command("kill -9 $$", 5000ms, 1024).error == "the token command was killed by signal 9");
}

TEST_CASE("a token file over the size limit is refused, not read whole") {
  sb::test::temp_dir dir;
  sb::actors::tunnel_settings s;
  s.token_file = (dir.path() / "token").string();
  s.token_command_max_bytes = 1024;
  std::ofstream(s.token_file) << std::string(1025, 'a');
  std::string error;
  CHECK_FALSE(sb::actors::initial_token(s, error));
  CHECK(error.find("over 1024 bytes") != std::string::npos);
  std::ofstream(s.token_file) << std::string(1024, 'a');
  CHECK(sb::actors::initial_token(s, error) == std::string(1024, 'a'));
}

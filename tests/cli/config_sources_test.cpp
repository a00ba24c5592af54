// load_gateway_config: flag beats environment beats file beats default, and every source's errors.
#include "cli/config_sources.hpp"

#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

using sb::cli::load_gateway_config;
using sb::protocol::gateway_config;

namespace {

// A temporary directory, removed with its files at the end of the test.
class temp_dir {
 public:
  temp_dir() {
    char tmpl[] = "/tmp/sb-config-test-XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~temp_dir() {
    for (const auto& f : files_) std::remove(f.c_str());
    ::rmdir(path_.c_str());
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  std::string write(const std::string& name, const std::string& content) {
    const std::string file = path_ + "/" + name;
    std::ofstream out(file);
    out << content;
    out.close();
    REQUIRE(out.good());
    files_.push_back(file);
    return file;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

// An environ-style array: "NAME=value" strings followed by nullptr.
class fake_env {
 public:
  fake_env(std::initializer_list<std::string> entries = {}) : storage_(entries) {
    for (auto& s : storage_) pointers_.push_back(s.data());
    pointers_.push_back(nullptr);
  }
  char** get() { return pointers_.data(); }

 private:
  std::vector<std::string> storage_;
  std::vector<char*> pointers_;
};

using flag_map = std::map<std::string, std::string>;

gateway_config loaded(const std::optional<std::string>& file, const flag_map& flags, char** env) {
  auto r = load_gateway_config(file, flags, env);
  const auto* err = std::get_if<std::string>(&r);
  INFO("error: " << (err ? *err : std::string{}));
  REQUIRE(std::holds_alternative<gateway_config>(r));
  return std::get<gateway_config>(r);
}

std::string failure(const std::optional<std::string>& file, const flag_map& flags, char** env) {
  auto r = load_gateway_config(file, flags, env);
  REQUIRE(std::holds_alternative<std::string>(r));
  return std::get<std::string>(r);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("with no file, flags or environment the defaults apply") {
  fake_env env{};
  const auto c = loaded(std::nullopt, {}, env.get());
  CHECK(c.port == 8080);
  CHECK(c.bind == "loopback");
  CHECK(c.max_payload == 1048576);
  CHECK(c.log_level == "info");
}

TEST_CASE("a null environment pointer is treated as an empty environment") {
  CHECK(loaded(std::nullopt, {}, nullptr).port == 8080);
}

TEST_CASE("a file value beats the default") {
  temp_dir dir;
  const auto file = dir.write("c.json", R"({"port": 7000, "logLevel": "warn", "corsOrigins": ["*"]})");
  fake_env env{};
  const auto c = loaded(file, {}, env.get());
  CHECK(c.port == 7000);
  CHECK(c.log_level == "warn");
  CHECK(c.cors_origins == std::vector<std::string>{"*"});
  CHECK(c.path == "/ws");  // untouched keys keep their default
}

TEST_CASE("an environment value beats the file") {
  temp_dir dir;
  const auto file = dir.write("c.json", R"({"port": 7000, "logLevel": "warn"})");
  fake_env env{"SWITCHBOARD_PORT=9001"};
  const auto c = loaded(file, {}, env.get());
  CHECK(c.port == 9001);
  CHECK(c.log_level == "warn");
}

TEST_CASE("a flag beats the environment and the file") {
  temp_dir dir;
  const auto file = dir.write("c.json", R"({"port": 7000, "logLevel": "warn", "maxPayload": 2048})");
  fake_env env{"SWITCHBOARD_PORT=9001", "SWITCHBOARD_LOG_LEVEL=error"};
  const auto c = loaded(file, {{"port", "9100"}}, env.get());
  CHECK(c.port == 9100);
  CHECK(c.log_level == "error");
  CHECK(c.max_payload == 2048);
}

TEST_CASE("each source sets its own keys and the rest keep their defaults") {
  temp_dir dir;
  const auto file = dir.write("c.json", R"({"path": "/from-file"})");
  fake_env env{"SWITCHBOARD_MAX_PAYLOAD=4096", "SWITCHBOARD_PER_MESSAGE_DEFLATE=false"};
  const auto c = loaded(file, {{"heartbeatIntervalMs", "1000"}}, env.get());
  CHECK(c.path == "/from-file");
  CHECK(c.max_payload == 4096);
  CHECK_FALSE(c.per_message_deflate);
  CHECK(c.heartbeat_interval_ms == 1000);
  CHECK(c.port == 8080);
  CHECK(c.client_timeout_ms == 60000);
}

TEST_CASE("list keys are read from environment and flags as comma lists or JSON arrays") {
  fake_env env{"SWITCHBOARD_TRUSTED_PROXIES=10.0.0.0/8, 192.168.0.0/16",
               R"(SWITCHBOARD_CORS_ORIGINS=["https://a.example.com"])"};
  const auto c = loaded(std::nullopt, {{"authTokens", "t1,t2"}}, env.get());
  CHECK(c.trusted_proxies_text == std::vector<std::string>{"10.0.0.0/8", "192.168.0.0/16"});
  CHECK(c.cors_origins == std::vector<std::string>{"https://a.example.com"});
  CHECK(c.auth_tokens == std::vector<std::string>{"t1", "t2"});
}

TEST_CASE("environment variables without the SWITCHBOARD_ prefix are ignored") {
  fake_env env{"PATH=/usr/bin", "HOME=/root", "PORT=1", "switchboard_port=2", "NOEQUALS"};
  CHECK(loaded(std::nullopt, {}, env.get()).port == 8080);
}

TEST_CASE("SWITCHBOARD_CONFIG is not treated as a configuration key") {
  fake_env env{"SWITCHBOARD_CONFIG=/etc/switchboard.json", "SWITCHBOARD_PORT=9001"};
  CHECK(loaded(std::nullopt, {}, env.get()).port == 9001);
}

TEST_CASE("an unknown key in the file is an error naming the key and the file") {
  temp_dir dir;
  const auto file = dir.write("c.json", R"({"port": 7000, "colour": "blue"})");
  fake_env env{};
  const auto err = failure(file, {}, env.get());
  CHECK(contains(err, "'colour'"));
  CHECK(contains(err, file));
}

TEST_CASE("an unknown SWITCHBOARD_ variable is an error naming the variable") {
  fake_env env{"SWITCHBOARD_PORTT=9001"};
  const auto err = failure(std::nullopt, {}, env.get());
  CHECK(contains(err, "SWITCHBOARD_PORTT"));
  CHECK(contains(err, "environment"));
}

TEST_CASE("a bad environment value is an error naming the key and the variable") {
  fake_env env{"SWITCHBOARD_PORT=eighty"};
  const auto err = failure(std::nullopt, {}, env.get());
  CHECK(contains(err, "port"));
  CHECK(contains(err, "SWITCHBOARD_PORT"));
  CHECK(contains(err, "eighty"));
}

TEST_CASE("an out-of-range environment value is an error naming the key") {
  fake_env env{"SWITCHBOARD_PORT=70000"};
  const auto err = failure(std::nullopt, {}, env.get());
  CHECK(err.rfind("port:", 0) == 0);
}

TEST_CASE("a bad boolean in the environment is an error naming the key and the variable") {
  fake_env env{"SWITCHBOARD_PER_MESSAGE_DEFLATE=sometimes"};
  const auto err = failure(std::nullopt, {}, env.get());
  CHECK(contains(err, "perMessageDeflate"));
  CHECK(contains(err, "SWITCHBOARD_PER_MESSAGE_DEFLATE"));
}

TEST_CASE("an unknown flag key is an error naming the key") {
  fake_env env{};
  const auto err = failure(std::nullopt, {{"colour", "blue"}}, env.get());
  CHECK(contains(err, "'colour'"));
  CHECK(contains(err, "flag"));
}

TEST_CASE("a bad flag value is an error naming the key and the flag") {
  fake_env env{};
  const auto err = failure(std::nullopt, {{"maxPayload", "big"}}, env.get());
  CHECK(contains(err, "maxPayload"));
  CHECK(contains(err, "--max-payload"));
}

TEST_CASE("a good flag cannot rescue a bad environment value") {
  // Every source is checked, even one a higher-priority source overrides.
  fake_env env{"SWITCHBOARD_PORT=eighty"};
  const auto err = failure(std::nullopt, {{"port", "9001"}}, env.get());
  CHECK(contains(err, "SWITCHBOARD_PORT"));
}

TEST_CASE("a bad file value is reported naming the key") {
  temp_dir dir;
  const auto file = dir.write("c.json", R"({"port": "eighty"})");
  fake_env env{};
  CHECK(failure(file, {}, env.get()).rfind("port:", 0) == 0);
}

TEST_CASE("a flag value can fix what a file leaves invalid") {
  temp_dir dir;
  const auto file = dir.write("c.json", R"({"authMode": "password"})");
  fake_env env{};
  CHECK(contains(failure(file, {}, env.get()), "authPassword"));
  CHECK(loaded(file, {{"authPassword", "pw"}}, env.get()).auth_password == "pw");
}

TEST_CASE("a missing config file is an error naming the file") {
  temp_dir dir;
  const std::string file = dir.path() + "/does-not-exist.json";
  fake_env env{};
  const auto err = failure(file, {}, env.get());
  CHECK(contains(err, file));
  CHECK(contains(err, "cannot open"));
}

TEST_CASE("a config file that is not valid JSON is an error naming the file") {
  temp_dir dir;
  const auto file = dir.write("bad.json", R"({"port": 7000,)");
  fake_env env{};
  const auto err = failure(file, {}, env.get());
  CHECK(contains(err, file));
  CHECK(contains(err, "JSON"));
}

TEST_CASE("a config file that holds no JSON object is an error naming the file") {
  temp_dir dir;
  const auto file = dir.write("array.json", R"([{"port": 7000}])");
  fake_env env{};
  const auto err = failure(file, {}, env.get());
  CHECK(contains(err, file));
  CHECK(contains(err, "object"));
}

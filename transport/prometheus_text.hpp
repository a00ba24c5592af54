#pragma once
// Prometheus text exposition (format 0.0.4): the one writer both the gateway's and the relay's /metrics
// use, so every family carries its HELP and TYPE lines and every label value is escaped the same way.
#include <cstdint>
#include <map>
#include <sstream>
#include <string>

namespace sb::transport {

class prometheus_text {
 public:
  /// One unlabelled sample: `type` is "counter" or "gauge".
  void scalar(const std::string& name, const char* type, const std::string& help, std::uint64_t value);
  void scalar(const std::string& name, const char* type, const std::string& help, std::int64_t value);
  /// A family with one label, one sample per value (none: only HELP and TYPE, which Prometheus accepts).
  void family(const std::string& name, const char* type, const std::string& label, const std::string& help,
              const std::map<std::string, std::uint64_t>& samples);
  /// Text already rendered by someone else (a histogram).
  void raw(const std::string& text) { out_ << text; }
  std::string str() const { return out_.str(); }

  static std::string escape_label(const std::string& value);

 private:
  void header(const std::string& name, const char* type, const std::string& help);
  std::ostringstream out_;
};

}  // namespace sb::transport

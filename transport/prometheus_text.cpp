#include "transport/prometheus_text.hpp"

namespace sb::transport {

std::string prometheus_text::escape_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '\\' || c == '"') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

void prometheus_text::header(const std::string& name, const char* type, const std::string& help) {
  out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

void prometheus_text::scalar(const std::string& name, const char* type, const std::string& help,
                             std::uint64_t value) {
  header(name, type, help);
  out_ << name << ' ' << value << '\n';
}

void prometheus_text::scalar(const std::string& name, const char* type, const std::string& help,
                             std::int64_t value) {
  header(name, type, help);
  out_ << name << ' ' << value << '\n';
}

void prometheus_text::family(const std::string& name, const char* type, const std::string& label,
                             const std::string& help, const std::map<std::string, std::uint64_t>& samples) {
  header(name, type, help);
  for (const auto& [value, n] : samples)
    out_ << name << '{' << label << "=\"" << escape_label(value) << "\"} " << n << '\n';
}

}  // namespace sb::transport

#include "sim/fabric/spec_parse.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace opensrd::fabric {

namespace {
Status Bad(const std::string& msg) {
  return Status(Code::kInvalidArgument, msg);
}

// Splits "123.5MiB" into its number and suffix; false if no digits lead.
bool NumberAndSuffix(const std::string& v, double& num, std::string& suffix) {
  if (v.empty() || !(std::isdigit(static_cast<unsigned char>(v[0])) || v[0] == '.')) return false;
  errno = 0;
  char* end = nullptr;
  num = std::strtod(v.c_str(), &end);
  if (errno != 0 || end == v.c_str() || !std::isfinite(num)) return false;
  suffix.assign(end);
  return true;
}
}  // namespace

Result<KindAndArgs> SplitSpec(const std::string& text, const std::string& what) {
  KindAndArgs out;
  const size_t colon = text.find(':');
  out.kind = text.substr(0, colon);
  if (out.kind.empty()) return Bad(what + " '" + text + "': missing kind before ':'");
  if (colon == std::string::npos) return out;
  const std::string rest = text.substr(colon + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t comma = rest.find(',', pos);
    if (comma == std::string::npos) comma = rest.size();
    const std::string item = rest.substr(pos, comma - pos);
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
      return Bad(what + " '" + text + "': '" + item + "' is not KEY=VALUE");
    }
    const std::string key = item.substr(0, eq);
    if (!out.args.emplace(key, item.substr(eq + 1)).second) {
      return Bad(what + " '" + text + "': key '" + key + "' given twice");
    }
    pos = comma + 1;
  }
  return out;
}

Result<uint64_t> ParseCount(const std::string& v, const std::string& key, uint64_t lo,
                            uint64_t hi) {
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 19) {
    return Bad(key + "='" + v + "': not a whole number");
  }
  const uint64_t n = std::strtoull(v.c_str(), nullptr, 10);
  if (n < lo || n > hi) {
    return Bad(key + "=" + v + ": out of range [" + std::to_string(lo) + ", " + std::to_string(hi) +
               "]");
  }
  return n;
}

Result<double> ParseReal(const std::string& v, const std::string& key, double lo, double hi) {
  double num;
  std::string suffix;
  if (!NumberAndSuffix(v, num, suffix) || !suffix.empty()) {
    return Bad(key + "='" + v + "': not a number");
  }
  if (num < lo || num > hi) {
    return Bad(key + "=" + v + ": out of range [" + std::to_string(lo) + ", " + std::to_string(hi) +
               "]");
  }
  return num;
}

Result<uint64_t> ParseBytes(const std::string& v, const std::string& key, uint64_t lo,
                            uint64_t hi) {
  double num;
  std::string s;
  if (!NumberAndSuffix(v, num, s)) return Bad(key + "='" + v + "': not a size");
  double mul;
  if (s.empty() || s == "B") {
    mul = 1;
  } else if (s == "K" || s == "KB") {
    mul = 1e3;
  } else if (s == "M" || s == "MB") {
    mul = 1e6;
  } else if (s == "G" || s == "GB") {
    mul = 1e9;
  } else if (s == "KiB") {
    mul = 1024;
  } else if (s == "MiB") {
    mul = 1024.0 * 1024;
  } else if (s == "GiB") {
    mul = 1024.0 * 1024 * 1024;
  } else {
    return Bad(key + "='" + v + "': unknown size unit '" + s + "' (B, KB, MB, GB, KiB, MiB, GiB)");
  }
  const double bytes = num * mul;
  if (bytes != std::floor(bytes)) return Bad(key + "='" + v + "': not a whole number of bytes");
  if (bytes < static_cast<double>(lo) || bytes > static_cast<double>(hi)) {
    return Bad(key + "=" + v + ": out of range [" + std::to_string(lo) + ", " + std::to_string(hi) +
               "] bytes");
  }
  return static_cast<uint64_t>(bytes);
}

Result<uint64_t> ParseTimeNs(const std::string& v, const std::string& key) {
  double num;
  std::string s;
  if (!NumberAndSuffix(v, num, s)) return Bad(key + "='" + v + "': not a time");
  double mul;
  if (s == "ns") {
    mul = 1;
  } else if (s == "us") {
    mul = 1e3;
  } else if (s == "ms") {
    mul = 1e6;
  } else if (s == "s") {
    mul = 1e9;
  } else {
    return Bad(key + "='" + v + "': a time needs a unit (ns, us, ms, s)");
  }
  const double ns = num * mul;
  if (ns > 3600e9) return Bad(key + "=" + v + ": longer than an hour of simulated time");
  return static_cast<uint64_t>(std::llround(ns));
}

}  // namespace opensrd::fabric

#include "transport/fault.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace opensrd {

namespace {
Status Bad(const std::string& why) {
  return Status(Code::kInvalidArgument, "--fault: " + why);
}

// Plain decimal only (a real may carry an exponent): no white space, leading sign or hex
// forms, which strtod/strtoull would otherwise quietly accept.
bool PlainNumber(const std::string& s, bool real) {
  if (s.empty() || !((s[0] >= '0' && s[0] <= '9') || (real && s[0] == '.'))) return false;
  for (char ch : s) {
    const bool digit = ch >= '0' && ch <= '9';
    if (!digit && !(real && (ch == '.' || ch == 'e' || ch == 'E' || ch == '-' || ch == '+'))) {
      return false;
    }
  }
  return true;
}

bool ParseDouble(const std::string& s, double& out) {
  if (!PlainNumber(s, true)) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s.c_str(), &end);
  return errno == 0 && *end == '\0' && std::isfinite(out);
}

bool ParseUint(const std::string& s, uint64_t& out) {
  if (!PlainNumber(s, false)) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtoull(s.c_str(), &end, 10);
  return errno == 0 && *end == '\0';
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos - start));
    if (pos == std::string::npos) return out;
    start = pos + 1;
  }
}
}  // namespace

Result<FaultSpec> ParseFaultSpec(const std::string& spec) {
  FaultSpec out;
  if (spec.empty()) return out;
  for (const std::string& part : Split(spec, ';')) {
    if (part.empty()) continue;  // tolerate a trailing ';'
    const size_t colon = part.find(':');
    if (part.rfind("path=", 0) != 0 || colon == std::string::npos) {
      return Bad("'" + part + "' must look like path=N:key=value,...");
    }
    uint64_t path = 0;
    if (!ParseUint(part.substr(5, colon - 5), path) || path > 255) {
      return Bad("path index in '" + part + "' must be 0..255");
    }
    if (out.paths.count(static_cast<uint32_t>(path))) {
      return Bad("path " + std::to_string(path) + " given twice");
    }
    PathFault f;
    std::vector<std::string> seen;
    for (const std::string& kv : Split(part.substr(colon + 1), ',')) {
      const size_t eq = kv.find('=');
      if (eq == std::string::npos) return Bad("'" + kv + "' is not key=value");
      const std::string key = kv.substr(0, eq), val = kv.substr(eq + 1);
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        return Bad("key '" + key + "' given twice for path " + std::to_string(path));
      }
      seen.push_back(key);
      double prob = 0;
      uint64_t num = 0;
      if (key == "loss" || key == "dup" || key == "corrupt" || key == "reorder") {
        if (!ParseDouble(val, prob) || prob < 0 || prob > 1) {
          return Bad(key + "=" + val + ": a probability 0..1 is required");
        }
        (key == "loss"      ? f.loss
         : key == "dup"     ? f.dup
         : key == "corrupt" ? f.corrupt
                            : f.reorder) = prob;
      } else if (key == "delay_us" || key == "jitter_us" || key == "reorder_us" ||
                 key == "blackhole_after_ms" || key == "blackhole_for_ms") {
        if (!ParseUint(val, num) || num > 3'600'000'000ull) {
          return Bad(key + "=" + val + ": a non-negative integer is required");
        }
        if (key == "delay_us") f.delay_us = num;
        if (key == "jitter_us") f.jitter_us = num;
        if (key == "reorder_us") f.reorder_us = num;
        if (key == "blackhole_after_ms") f.blackhole_after_us = num * 1000;
        if (key == "blackhole_for_ms") f.blackhole_for_us = num * 1000;
      } else {
        return Bad("unknown key '" + key +
                   "' (loss, dup, corrupt, reorder, delay_us, jitter_us, reorder_us, "
                   "blackhole_after_ms, blackhole_for_ms)");
      }
    }
    if (f.blackhole_for_us != kNever && f.blackhole_after_us == kNever) {
      return Bad("blackhole_for_ms needs blackhole_after_ms");
    }
    out.paths[static_cast<uint32_t>(path)] = f;
  }
  return out;
}

FaultInjector::Verdict FaultInjector::Decide(uint32_t path, Micros since_start) {
  Verdict v;
  const PathFault* f = spec_.Find(path);
  if (f == nullptr) return v;
  if (f->blackhole_after_us != kNever && since_start >= f->blackhole_after_us &&
      (f->blackhole_for_us == kNever ||
       since_start < f->blackhole_after_us + f->blackhole_for_us)) {
    v.drop = true;
    return v;
  }
  if (rng_.Chance(f->loss)) {
    v.drop = true;
    return v;
  }
  if (rng_.Chance(f->dup)) v.copies = 2;
  v.corrupt = rng_.Chance(f->corrupt);
  v.delay_us = f->delay_us;
  if (f->jitter_us > 0) v.delay_us += rng_.Below(f->jitter_us + 1);
  if (rng_.Chance(f->reorder)) v.delay_us += f->reorder_us;
  return v;
}

void FaultInjector::CorruptInPlace(std::span<uint8_t> bytes) {
  if (bytes.empty()) return;
  const uint64_t bit = rng_.Below(bytes.size() * 8);
  bytes[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
}

}  // namespace opensrd

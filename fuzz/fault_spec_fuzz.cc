// Feeds arbitrary text to the --fault spec parser. Checks beyond "no crash": whatever parses
// holds only legal values, prints back to a canonical spec that parses to the same faults, and
// drives the injector without overflow or out-of-range verdicts.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "transport/fault.h"

using namespace opensrd;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

void AppendDouble(std::string& s, const char* key, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s=%.17g,", key, v);
  s += buf;
}

void AppendUint(std::string& s, const char* key, uint64_t v) {
  s += key;
  s += '=';
  s += std::to_string(v);
  s += ',';
}

std::string Canonical(const FaultSpec& spec) {
  std::string s;
  for (const auto& [path, f] : spec.paths) {
    s += "path=" + std::to_string(path) + ":";
    AppendDouble(s, "loss", f.loss);
    AppendDouble(s, "dup", f.dup);
    AppendDouble(s, "corrupt", f.corrupt);
    AppendDouble(s, "reorder", f.reorder);
    AppendUint(s, "reorder_us", f.reorder_us);
    AppendUint(s, "delay_us", f.delay_us);
    AppendUint(s, "jitter_us", f.jitter_us);
    if (f.blackhole_after_us != kNever) {
      AppendUint(s, "blackhole_after_ms", f.blackhole_after_us / 1000);
    }
    if (f.blackhole_for_us != kNever) AppendUint(s, "blackhole_for_ms", f.blackhole_for_us / 1000);
    s.back() = ';';
  }
  return s;
}

bool Same(const PathFault& a, const PathFault& b) {
  return a.loss == b.loss && a.dup == b.dup && a.corrupt == b.corrupt && a.reorder == b.reorder &&
         a.reorder_us == b.reorder_us && a.delay_us == b.delay_us && a.jitter_us == b.jitter_us &&
         a.blackhole_after_us == b.blackhole_after_us && a.blackhole_for_us == b.blackhole_for_us;
}

bool Prob(double p) {
  return p >= 0 && p <= 1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  Result<FaultSpec> r = ParseFaultSpec(text);
  if (!r.ok()) {
    Check(!r.status().message().empty());
    return 0;
  }
  const FaultSpec& spec = r.value();
  for (const auto& [path, f] : spec.paths) {
    Check(path <= 255);
    Check(Prob(f.loss) && Prob(f.dup) && Prob(f.corrupt) && Prob(f.reorder));
    Check(f.blackhole_for_us == kNever || f.blackhole_after_us != kNever);
    Check(f.blackhole_after_us == kNever || f.blackhole_after_us % 1000 == 0);
    Check(f.blackhole_for_us == kNever || f.blackhole_for_us % 1000 == 0);
  }

  // Canonical text round trip.
  Result<FaultSpec> again = ParseFaultSpec(Canonical(spec));
  Check(again.ok());
  Check(again.value().paths.size() == spec.paths.size());
  for (const auto& [path, f] : spec.paths) {
    const PathFault* g = again.value().Find(path);
    Check(g != nullptr && Same(f, *g));
  }

  // The injector: verdicts stay within what the spec allows.
  FaultInjector inj(spec, size);
  std::vector<uint8_t> bytes(16, 0);
  for (const auto& [path, f] : spec.paths) {
    for (Micros t : {Micros{0}, Micros{999}, f.blackhole_after_us, f.blackhole_after_us - 1,
                     Micros{1} << 40}) {
      const FaultInjector::Verdict v = inj.Decide(path, t);
      Check(v.copies == 1 || v.copies == 2);
      if (v.drop) continue;
      Check(v.delay_us >= f.delay_us);
      Check(v.delay_us <= f.delay_us + f.jitter_us + f.reorder_us);
      if (v.corrupt) inj.CorruptInPlace(bytes);
    }
  }
  int ones = 0;
  for (uint8_t b : bytes) ones += __builtin_popcount(b);
  Check(ones <= 16 * 8);
  return 0;
}

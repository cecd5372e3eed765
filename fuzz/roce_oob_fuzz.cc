// Feeds arbitrary bytes to the ibv_rc_pingpong and perftest address parsers (the peer's
// untrusted TCP bytes). Beyond "no crash": whatever parses formats back to the same bytes
// (except hex case, which the parsers accept either way).
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "rdma/roce_oob.h"

using namespace opensrd::rdma::roce;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  auto same = [&](const std::string& s) {
    if (s.size() != size) std::abort();
    for (size_t i = 0; i < size; ++i) {
      if (std::tolower(s[i]) != std::tolower(data[i])) std::abort();
    }
  };
  auto p = ParsePingpongDest(in);
  if (p.ok()) same(FormatPingpongDest(*p));
  auto q = ParsePerftestDest(in);
  if (q.ok()) same(FormatPerftestDest(*q));
  return 0;
}

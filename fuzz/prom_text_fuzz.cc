// `opensrd stat` parses Prometheus text from whatever answers at --metrics: no input may crash
// it, and every sample it keeps has a valid name.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tools/opensrd/prom_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const opensrd::cli::PromText t =
      opensrd::cli::ParsePromText({reinterpret_cast<const char*>(data), size});
  for (const auto& s : t.samples) {
    if (s.name.empty() || s.labels.size() > opensrd::cli::PromText::kMaxLabels) std::abort();
  }
  return 0;
}

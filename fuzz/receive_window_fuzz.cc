// Drives ReceiveWindow with arbitrary PSN sequences and checks it against a std::set model:
// every Check/Insert verdict, cum(), HasGap(), and Received()/high() over the whole window.
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <set>
#include <utility>
#include <vector>

#include "transport/receive_window.h"

using namespace opensrd;
using Mark = ReceiveWindow::Mark;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Model {
  explicit Model(uint32_t w) : window(w) {}
  uint32_t window;
  uint32_t cum = 0;
  std::set<uint32_t> above;  // received PSNs >= cum (never wraps: inputs are short)

  Mark Expect(uint32_t psn) const {
    const int32_t d = static_cast<int32_t>(psn - cum);
    if (d < 0) return Mark::kDuplicate;
    if (static_cast<uint32_t>(d) >= window) return Mark::kOutOfWindow;
    return above.count(psn) ? Mark::kDuplicate : Mark::kNew;
  }
  void Insert(uint32_t psn) {
    above.insert(psn);
    while (!above.empty() && *above.begin() == cum) {
      above.erase(above.begin());
      ++cum;
    }
  }
  std::vector<std::pair<uint32_t, uint32_t>> Runs() const {
    std::vector<std::pair<uint32_t, uint32_t>> runs;
    for (uint32_t psn : above) {
      if (!runs.empty() && runs.back().second == psn) {
        ++runs.back().second;
      } else {
        runs.emplace_back(psn, psn + 1);
      }
    }
    return runs;
  }
};

// Every PSN the model holds reads back as received, no other PSN between cum and high does, and
// high() is one past the highest one received.
void CheckReceived(const ReceiveWindow& w, const Model& m) {
  Check(w.high() == (m.above.empty() ? m.cum : *m.above.rbegin() + 1));
  for (uint32_t psn = m.cum; psn != w.high(); ++psn) {
    Check(w.Received(psn) == (m.above.count(psn) == 1));
  }
  Check(w.Received(m.cum - 1));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 8192) return 0;
  const uint32_t window = 64u << (data[0] % 5);  // 64 .. 1024
  ReceiveWindow w(window);
  Model m(window);
  // Each op is 2 bytes. The top bits pick the op, the rest an offset from cum (so most PSNs
  // land in or near the window; some fall behind cum or far ahead).
  for (size_t i = 1; i + 1 < size; i += 2) {
    const uint16_t op = static_cast<uint16_t>(data[i] << 8 | data[i + 1]);
    const uint32_t arg = op & 0x0FFF;
    switch (op >> 12) {
      case 0: {  // reset
        w.Reset();
        m = Model(window);
        break;
      }
      case 1: {  // read the whole window back
        CheckReceived(w, m);
        break;
      }
      case 2: {  // far away in either direction
        const uint32_t psn = m.cum + (static_cast<uint32_t>(arg) << 20);
        const Mark want = m.Expect(psn);
        Check(w.Check(psn) == want);
        Check(w.Insert(psn) == want);
        if (want == Mark::kNew) m.Insert(psn);
        break;
      }
      case 3: {  // behind cum
        const uint32_t psn = m.cum - 1 - arg;
        Check(w.Insert(psn) == Mark::kDuplicate);
        break;
      }
      default: {  // near or in the window
        const uint32_t psn = m.cum + arg % (window + window / 4);
        const Mark want = m.Expect(psn);
        Check(w.Check(psn) == want);
        Check(w.Insert(psn) == want);
        if (want == Mark::kNew) m.Insert(psn);
        break;
      }
    }
    Check(w.cum() == m.cum);
    Check(w.HasGap() == !m.above.empty());
  }
  CheckReceived(w, m);
  return 0;
}

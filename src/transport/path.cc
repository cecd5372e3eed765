#include "transport/path.h"

#include <algorithm>

namespace opensrd {

namespace {
double Weight(const Path& p) {
  const double srtt = static_cast<double>(std::max<Micros>(p.rtt.srtt(), 1));
  const double keep = std::max(0.0, 1.0 - p.loss_ewma);
  // Floor at 5% of an ideal path of the same delay so every active path keeps being sampled.
  return std::max(keep * keep, 0.05) / srtt;
}
}  // namespace

int ChoosePath(std::vector<Path>& paths, int exclude) {
  // Fall back step by step: active paths other than `exclude`, then any active path, then (no
  // path is trusted) any known path, so traffic never stops while probes run.
  auto eligible = [&](size_t i, int pass) {
    const Path& p = paths[i];
    if (!p.known) return false;
    if (pass == 0 && static_cast<int>(i) == exclude) return false;
    return pass == 2 || p.state == PathState::kActive;
  };
  for (int pass = 0; pass < 3; ++pass) {
    double total = 0;
    int best = -1;
    for (size_t i = 0; i < paths.size(); ++i) {
      if (!eligible(i, pass)) continue;
      const double w = Weight(paths[i]);
      paths[i].credit += w;
      total += w;
      if (best < 0 || paths[i].credit > paths[best].credit) best = static_cast<int>(i);
    }
    if (best >= 0) {
      paths[best].credit -= total;
      return best;
    }
  }
  return -1;
}

}  // namespace opensrd

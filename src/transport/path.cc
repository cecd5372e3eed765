#include "transport/path.h"

#include <algorithm>

namespace opensrd {

namespace {
// Bulk packets: weight ~ (1 - loss)^2 / srtt. Mild on purpose: every share moved off a path must
// fit on the others, and paths are often capacity-bound.
// Latency-sensitive packets (single-packet messages, retransmissions): loss above a noise floor
// is punished hard, so a path losing 5% gets 1/13 of a clean path's share. Small messages
// then rarely meet the lossy path, which keeps the latency tail short (a lost lone packet costs a
// probe timeout). Below the floor (2%: spurious losses from reordering look like this) paths are
// not penalized.
// Both floor at 5% of an ideal path of the same delay so every active path keeps being sampled
// and can earn its share back.
constexpr double kLossPenalty = 400.0;
constexpr double kLossNoise = 0.02;
constexpr double kFloor = 0.05;
double Weight(const Path& p, bool avoid_loss, Nanos unsampled_srtt) {
  // A path without an RTT sample yet is taken to be as fast as the best sampled one: with its
  // configured initial RTT (much larger than a real one) it would never be chosen, and so never
  // get the sample that would correct it.
  const Nanos rtt = p.rtt.have_sample() ? p.rtt.srtt() : unsampled_srtt;
  const double srtt = static_cast<double>(std::max<Nanos>(rtt, 1));
  double quality;
  if (avoid_loss) {
    quality = 1.0 / (1.0 + kLossPenalty * std::max(0.0, p.loss_ewma - kLossNoise));
  } else {
    const double keep = std::max(0.0, 1.0 - p.loss_ewma);
    quality = keep * keep;
  }
  // A path that stalled (its packets went unacknowledged for a probe timeout while later ones
  // sent on other paths were acknowledged) and has delivered nothing since gets only the floor,
  // as REPS stops reusing an entropy whose packet went unacknowledged: the loss EWMA moves 1/128
  // per packet, far too slowly for a link that just died, and every packet sent there meanwhile
  // waits for a timeout. The floor keeps it sampled; its next ack restores its share. (Not for
  // any timeout: in request/response traffic a lone packet's tail probe is what finds a dead
  // path out, three in a row mark it suspect and exclude it, and the floor would make that take
  // 5x longer.)
  if (p.stalled) quality = 0.0;
  return std::max(quality, kFloor) / srtt;
}
}  // namespace

int ChoosePath(std::vector<Path>& paths, int exclude, bool avoid_loss) {
  // Fall back step by step: active paths other than `exclude`, then any active path, then (no
  // path is trusted) any known path, so traffic never stops while probes run.
  auto eligible = [&](size_t i, int pass) {
    const Path& p = paths[i];
    if (!p.known || !p.usable) return false;
    if (pass == 0 && static_cast<int>(i) == exclude) return false;
    return pass == 2 || p.state == PathState::kActive;
  };
  Nanos best_sampled = kNever;
  for (const Path& p : paths) {
    if (p.known && p.usable && p.rtt.have_sample())
      best_sampled = std::min(best_sampled, p.rtt.srtt());
  }
  for (int pass = 0; pass < 3; ++pass) {
    double total = 0;
    int best = -1;
    for (size_t i = 0; i < paths.size(); ++i) {
      if (!eligible(i, pass)) continue;
      const double w =
          Weight(paths[i], avoid_loss, best_sampled == kNever ? paths[i].rtt.srtt() : best_sampled);
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

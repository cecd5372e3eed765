// `perf client --timeline FILE.csv`: per-path rate, RTT and retransmissions over time, one CSV
// row per path every --timeline-interval-ms, for scripts/plot_timeline.py (a PNG) or any other
// tool. Columns (TimelineHeader): t_s (seconds since the run began), peer, path, state,
// sent_pps and acked_pps (DATA packets per second first sent / acked on the path in the
// interval), retx_pps (re-sent on it), lost (declared lost on it in the interval), by cause
// rack/rto/tlp (its packets re-sent in the interval, by what declared them lost), srtt_us,
// min_rtt_us, state_changes (cumulative). Written by the I/O thread through a buffered stdio
// stream: one small fwrite per interval, never a wait on the disk per packet.
#pragma once
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "opensrd/transport.h"

namespace opensrd::cli {

std::string TimelineHeader();
// The rows for one sample: `now` against `prev` (same peer; paths matched by id; a path absent
// from `prev` counts from zero) over `dt_s` seconds.
std::string TimelineRows(double t_s, PeerId peer, const std::vector<PathStats>& now,
                         const std::vector<PathStats>& prev, double dt_s);

class TimelineWriter {
 public:
  // Creates FILE (truncating it) and writes the header; errors name the file.
  static Result<std::unique_ptr<TimelineWriter>> Open(const std::string& path, Micros interval_us);
  ~TimelineWriter();
  // I/O thread: appends rows when an interval has passed since the last ones.
  void MaybeSample(const Endpoint& ep, Micros now_us);
  // Flushes and closes; false if any write failed.
  bool Close();
  uint64_t rows() const { return rows_; }

 private:
  TimelineWriter(std::FILE* f, Micros interval_us) : f_(f), interval_(interval_us) {}
  std::FILE* f_;
  Micros interval_;
  bool started_ = false;
  Micros start_ = 0, last_ = 0;
  uint64_t rows_ = 0;
  bool error_ = false;
  std::map<PeerId, std::vector<PathStats>> prev_;
};

}  // namespace opensrd::cli

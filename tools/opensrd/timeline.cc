#include "tools/opensrd/timeline.h"

#include <cerrno>
#include <cstring>

namespace opensrd::cli {

std::string TimelineHeader() {
  return "t_s,peer,path,state,sent_pps,acked_pps,retx_pps,lost,rack,rto,tlp,srtt_us,min_rtt_us,"
         "state_changes\n";
}

std::string TimelineRows(double t_s, PeerId peer, const std::vector<PathStats>& now,
                         const std::vector<PathStats>& prev, double dt_s) {
  std::string out;
  for (const PathStats& p : now) {
    PathStats zero;
    const PathStats* o = &zero;
    for (const PathStats& q : prev) {
      if (q.id == p.id) o = &q;
    }
    // Counters only grow, but a peer that was freed and came back starts over: clamp at 0.
    auto d = [](uint64_t a, uint64_t b) { return a >= b ? a - b : 0; };
    auto rate = [&](uint64_t a, uint64_t b) {
      return dt_s > 0 ? static_cast<double>(d(a, b)) / dt_s : 0.0;
    };
    char line[256];
    std::snprintf(
        line, sizeof line, "%.3f,%u,%u,%s,%.0f,%.0f,%.0f,%llu,%llu,%llu,%llu,%llu,%llu,%llu\n", t_s,
        peer, p.id, PathStateName(p.state), rate(p.sent, o->sent), rate(p.acked, o->acked),
        rate(p.retransmitted, o->retransmitted),
        static_cast<unsigned long long>(d(p.lost, o->lost)),
        static_cast<unsigned long long>(d(p.retrans_rack, o->retrans_rack)),
        static_cast<unsigned long long>(d(p.retrans_rto, o->retrans_rto)),
        static_cast<unsigned long long>(d(p.retrans_tlp, o->retrans_tlp)),
        static_cast<unsigned long long>(p.srtt_us), static_cast<unsigned long long>(p.min_rtt_us),
        static_cast<unsigned long long>(p.state_changes));
    out += line;
  }
  return out;
}

Result<std::unique_ptr<TimelineWriter>> TimelineWriter::Open(const std::string& path,
                                                             Micros interval_us) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    return Status(Code::kInvalidArgument,
                  "--timeline " + path + ": cannot create it: " + std::strerror(errno));
  }
  std::setvbuf(f, nullptr, _IOFBF, 1 << 16);
  const std::string h = TimelineHeader();
  std::fwrite(h.data(), 1, h.size(), f);
  return std::unique_ptr<TimelineWriter>(new TimelineWriter(f, interval_us));
}

TimelineWriter::~TimelineWriter() {
  Close();
}

void TimelineWriter::MaybeSample(const Endpoint& ep, Micros now_us) {
  if (f_ == nullptr) return;
  if (!started_) {
    started_ = true;
    start_ = last_ = now_us;
    return;
  }
  if (now_us < last_ + interval_) return;
  const double dt = static_cast<double>(now_us - last_) / 1e6;
  const double t = static_cast<double>(now_us - start_) / 1e6;
  last_ = now_us;
  for (PeerId peer : ep.peers()) {
    std::vector<PathStats> now = ep.path_stats(peer);
    const std::string rows = TimelineRows(t, peer, now, prev_[peer], dt);
    if (std::fwrite(rows.data(), 1, rows.size(), f_) != rows.size()) error_ = true;
    rows_ += now.size();
    prev_[peer] = std::move(now);
  }
}

bool TimelineWriter::Close() {
  if (f_ == nullptr) return !error_;
  if (std::fclose(f_) != 0) error_ = true;
  f_ = nullptr;
  return !error_;
}

}  // namespace opensrd::cli

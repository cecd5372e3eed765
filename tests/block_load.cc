// block_load: the crash tests' load generator and checker.
//
//   block_load write --bridge HOST:PORT[,HOST:PORT...] --volume V [--token T] --log FILE
//              --seconds S [--unit BYTES] [--units N] [--qd D] [--fua-every K] [--flush-every K]
//              [--peer-timeout-ms MS] [--first-seq N]
//       Attaches like an adapter (RemoteVolume) and writes units (a multiple of 4 KiB) at random
//       free unit slots, qd at a time, until S seconds pass, then waits for everything in
//       flight. Every 4 KiB of a write carries a header (magic, write sequence, unit, part) and
//       a pattern of the sequence, so any byte can be traced to the write that put it there.
//       The log records, per line, one acknowledged write: "W seq unit durable". A write is
//       durable when it was acknowledged with FUA, or before a FLUSH that was acknowledged
//       (flushes run with no write in flight, so "before" is exact); "F" lines mark flushes.
//       Writes in flight when the run is cut short, or that failed, are logged as "P seq unit"
//       (pending: either outcome is allowed). Several bridges: the adapter fails over in that
//       order. The result names the longest time without an acknowledged write (max_gap_ms:
//       what a kill or a failover cost the client).
//   block_load check --file PATH --log FILE --unit BYTES [--durable-only]
//       Reads the volume's file directly. Without --durable-only (a process crash): every unit
//       holds its last acknowledged write. With it (a power cut of a crash-test volume): every
//       unit holds its last durable write (or zeroes), and no non-durable write survives;
//       a unit with a pending write may hold that one instead.
//   block_load torn --file PATH --unit BYTES
//       Every unit is whole: all its 4 KiB parts come from the same write (or it is all zero).
//
// Exit 0 when the check holds, 1 when it does not (the first violations are printed), 2 usage.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "block/remote_volume.h"
#include "common/pattern.h"

using namespace opensrd;
using namespace opensrd::block;

namespace {

constexpr uint64_t kMagic = 0x4C4F41444F53524Full;  // "OSRDOAL" reversed, a marker
constexpr uint32_t kPart = 4096;
constexpr uint32_t kHeader = 32;

struct Args {
  std::map<std::string, std::string> kv;
  std::set<std::string> flags;
  std::string Get(const std::string& k, const std::string& def = "") const {
    auto it = kv.find(k);
    return it == kv.end() ? def : it->second;
  }
  uint64_t Num(const std::string& k, uint64_t def) const {
    auto it = kv.find(k);
    return it == kv.end() ? def : std::stoull(it->second);
  }
};

void FillPart(uint8_t* p, uint64_t seq, uint64_t unit, uint32_t part) {
  std::memcpy(p, &kMagic, 8);
  std::memcpy(p + 8, &seq, 8);
  std::memcpy(p + 16, &unit, 8);
  std::memcpy(p + 24, &part, 4);
  std::memset(p + 28, 0, 4);
  FillPattern(seq * 64 + part, p + kHeader, kPart - kHeader);
}

// The sequence number that wrote this part; 0 for zeroes; UINT64_MAX if damaged.
uint64_t PartSeq(const uint8_t* p, uint64_t unit, uint32_t part) {
  static const std::vector<uint8_t> zero(kPart, 0);
  if (std::memcmp(p, zero.data(), kPart) == 0) return 0;
  uint64_t magic, seq, u;
  uint32_t pt;
  std::memcpy(&magic, p, 8);
  std::memcpy(&seq, p + 8, 8);
  std::memcpy(&u, p + 16, 8);
  std::memcpy(&pt, p + 24, 4);
  if (magic != kMagic || u != unit || pt != part) return UINT64_MAX;
  if (!CheckPattern(seq * 64 + part, p + kHeader, kPart - kHeader)) return UINT64_MAX;
  return seq;
}

std::atomic<bool> g_stop{false};

int Write(const Args& a) {
  RemoteVolumeOptions o;
  std::stringstream list(a.Get("bridge"));
  for (std::string item; std::getline(list, item, ',');) {
    Result<NetAddr> bridge = ParseNetAddr(item);
    if (!bridge.ok()) return 2;
    o.bridges.push_back(*bridge);
  }
  if (o.bridges.empty()) return 2;
  o.volume = a.Get("volume");
  o.token = a.Get("token");
  o.local.v6 = o.bridges[0].v6;
  o.paths = 2;
  o.endpoint.max_payload = 8192;
  o.endpoint.peer_timeout_us = a.Num("peer-timeout-ms", 500) * 1000;
  o.reconnect_timeout_us = 60'000'000;
  auto v = RemoteVolume::Open(o);
  if (!v.ok()) {
    std::fprintf(stderr, "block_load: %s\n", v.status().ToString().c_str());
    return 1;
  }
  RemoteVolume& vol = *v.value();
  const uint32_t unit = static_cast<uint32_t>(a.Num("unit", 16384));
  const uint64_t units = std::min<uint64_t>(a.Num("units", 1024), vol.Info().size_bytes / unit);
  const uint32_t qd = static_cast<uint32_t>(a.Num("qd", 16));
  const uint64_t fua_every = a.Num("fua-every", 0);
  const uint64_t flush_every = a.Num("flush-every", 0);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(a.Num("seconds", 5));
  std::ofstream log(a.Get("log"));
  if (unit % kPart != 0 || units == 0 || !log) return 2;

  std::mutex mu;
  std::condition_variable cv;
  std::set<uint64_t> busy;                                 // units with a write in flight
  std::map<uint64_t, uint64_t> pending;                    // seq -> unit, in flight
  std::vector<std::pair<uint64_t, uint64_t>> since_flush;  // acked, not yet durable
  uint64_t inflight = 0, errors = 0, acked = 0;
  auto last_ack = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration max_gap{0};
  std::mt19937_64 rng(a.Num("seed", 1));
  // Sequence numbers continue a previous run's (--first-seq), so one check covers both logs.
  uint64_t seq = a.Num("first-seq", 1) - 1;
  std::vector<std::vector<uint8_t>> bufs;
  auto write_one = [&](std::unique_lock<std::mutex>& lock) {
    uint64_t u;
    do {
      u = rng() % units;
    } while (busy.count(u));
    busy.insert(u);
    const uint64_t s = ++seq;
    auto buf = std::make_shared<std::vector<uint8_t>>(unit);
    for (uint32_t p = 0; p < unit / kPart; ++p) FillPart(buf->data() + p * kPart, s, u, p);
    const bool fua = fua_every && s % fua_every == 0;
    pending[s] = u;
    ++inflight;
    lock.unlock();
    vol.Submit({Op::kWrite, static_cast<uint8_t>(fua ? kFua : 0), u * unit, unit, buf->data()},
               [&, s, u, fua, buf](Status st) {
                 std::lock_guard<std::mutex> g(mu);
                 pending.erase(s);
                 busy.erase(u);
                 --inflight;
                 if (!st.ok()) {
                   // An error says nothing of whether the data reached the disk: pending.
                   log << "P " << s << " " << u << "\n";
                   ++errors;
                   std::fprintf(stderr, "block_load: write %llu failed: %s\n",
                                static_cast<unsigned long long>(s), st.ToString().c_str());
                 } else {
                   ++acked;
                   const auto now = std::chrono::steady_clock::now();
                   max_gap = std::max(max_gap, now - last_ack);
                   last_ack = now;
                   log << "W " << s << " " << u << " " << (fua ? 1 : 0) << "\n";
                   if (!fua) since_flush.emplace_back(s, u);
                 }
                 cv.notify_all();
               });
    lock.lock();
  };
  std::unique_lock<std::mutex> lock(mu);
  while (std::chrono::steady_clock::now() < end && !g_stop) {
    if (flush_every && seq > 0 && seq % flush_every == 0 && !since_flush.empty()) {
      // Quiesce, so "before the flush" is exact (a signal ends the run instead).
      while (inflight > 0 && !g_stop) cv.wait_for(lock, std::chrono::milliseconds(50));
      if (g_stop) break;
      lock.unlock();
      auto p = std::make_shared<std::promise<Status>>();
      std::future<Status> fut = p->get_future();
      vol.Submit({Op::kFlush, 0, 0, 0, nullptr}, [p](Status st) { p->set_value(st); });
      while (fut.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready && !g_stop) {
      }
      lock.lock();
      if (g_stop && fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        // Cut short during the flush: what it covered may or may not be durable.
        for (auto [ps, pu] : since_flush) log << "P " << ps << " " << pu << "\n";
        break;
      }
      const Status st = fut.get();
      if (!st.ok()) {
        ++errors;
      } else {
        log << "F\n";
        since_flush.clear();
      }
    }
    if (inflight < qd) {
      write_one(lock);
    } else {
      cv.wait_for(lock, std::chrono::milliseconds(100));
    }
  }
  // Drain; a power-cut run gives up quickly and logs what is still in flight as pending.
  cv.wait_for(lock, std::chrono::seconds(a.Num("drain-seconds", 60)),
              [&] { return inflight == 0; });
  for (const auto& [s, u] : pending) log << "P " << s << " " << u << "\n";
  log.flush();
  const size_t left = pending.size();
  std::printf(
      "{\"acked\": %llu, \"errors\": %llu, \"pending\": %zu, \"attaches\": %llu, "
      "\"failovers\": %llu, \"max_gap_ms\": %.1f}\n",
      static_cast<unsigned long long>(acked), static_cast<unsigned long long>(errors), left,
      static_cast<unsigned long long>(vol.stats().attaches),
      static_cast<unsigned long long>(vol.stats().failovers),
      std::chrono::duration<double, std::milli>(max_gap).count());
  lock.unlock();
  std::fflush(stdout);
  // A volume whose bridge is gone keeps requests until they time out: do not wait for that.
  if (left > 0) std::_Exit(1);
  return errors == 0 ? 0 : 1;
}

// Per unit: the last acknowledged write, the last durable one, any pending ones.
struct UnitLog {
  uint64_t last = 0;
  uint64_t durable = 0;
  std::set<uint64_t> pending;
};

std::map<uint64_t, UnitLog> ReadLog(const std::string& path) {
  std::ifstream in(path);
  std::map<uint64_t, UnitLog> units;
  std::vector<std::pair<uint64_t, uint64_t>> since_flush;
  std::string kind;
  while (in >> kind) {
    if (kind == "F") {
      for (auto [s, u] : since_flush) units[u].durable = std::max(units[u].durable, s);
      since_flush.clear();
      continue;
    }
    uint64_t s, u;
    in >> s >> u;
    if (kind == "P") {
      units[u].pending.insert(s);
      continue;
    }
    int fua;
    in >> fua;
    UnitLog& ul = units[u];
    ul.last = std::max(ul.last, s);
    if (fua)
      ul.durable = std::max(ul.durable, s);
    else
      since_flush.emplace_back(s, u);
  }
  return units;
}

int Check(const Args& a, bool durable_only) {
  const uint32_t unit = static_cast<uint32_t>(a.Num("unit", 16384));
  std::map<uint64_t, UnitLog> units = ReadLog(a.Get("log"));
  std::ifstream f(a.Get("file"), std::ios::binary);
  if (!f || units.empty()) return 2;
  std::vector<uint8_t> buf(unit);
  int bad = 0;
  uint64_t checked = 0, lost = 0;  // lost: units whose newer, non-durable write is gone
  for (const auto& [u, ul] : units) {
    f.seekg(static_cast<std::streamoff>(u * unit));
    f.read(reinterpret_cast<char*>(buf.data()), unit);
    const uint64_t want = durable_only ? ul.durable : ul.last;
    for (uint32_t p = 0; p < unit / kPart; ++p) {
      const uint64_t got = PartSeq(buf.data() + p * kPart, u, p);
      if (got == want || ul.pending.count(got)) {
        if (p == 0 && durable_only && got == want && ul.last != ul.durable) ++lost;
        continue;
      }
      if (++bad <= 10) {
        std::fprintf(stderr, "unit %llu part %u: holds write %llu, want %llu (last acked %llu)\n",
                     static_cast<unsigned long long>(u), p, static_cast<unsigned long long>(got),
                     static_cast<unsigned long long>(want),
                     static_cast<unsigned long long>(ul.last));
      }
    }
    ++checked;
  }
  std::printf("{\"units\": %llu, \"bad_parts\": %d, \"lost_nondurable\": %llu}\n",
              static_cast<unsigned long long>(checked), bad, static_cast<unsigned long long>(lost));
  return bad == 0 ? 0 : 1;
}

int Torn(const Args& a) {
  const uint32_t unit = static_cast<uint32_t>(a.Num("unit", 16384));
  std::ifstream f(a.Get("file"), std::ios::binary);
  if (!f || unit % kPart != 0) return 2;
  std::vector<uint8_t> buf(unit);
  uint64_t u = 0, torn = 0, written = 0;
  while (f.read(reinterpret_cast<char*>(buf.data()), unit)) {
    std::set<uint64_t> seqs;
    for (uint32_t p = 0; p < unit / kPart; ++p) seqs.insert(PartSeq(buf.data() + p * kPart, u, p));
    if (seqs.size() != 1 || seqs.count(UINT64_MAX)) {
      if (++torn <= 10)
        std::fprintf(stderr, "unit %llu is torn\n", static_cast<unsigned long long>(u));
    } else if (!seqs.count(0)) {
      ++written;
    }
    ++u;
  }
  std::printf("{\"units\": %llu, \"written\": %llu, \"torn\": %llu}\n",
              static_cast<unsigned long long>(u), static_cast<unsigned long long>(written),
              static_cast<unsigned long long>(torn));
  return torn == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: block_load write|check|torn --key value ...\n");
    return 2;
  }
  Args a;
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) return 2;
    k = k.substr(2);
    if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
      a.kv[k] = argv[++i];
    } else {
      a.flags.insert(k);
    }
  }
  signal(SIGTERM, [](int) { g_stop = true; });
  const std::string mode = argv[1];
  if (mode == "write") return Write(a);
  if (mode == "check") return Check(a, a.flags.count("durable-only") > 0);
  if (mode == "torn") return Torn(a);
  return 2;
}

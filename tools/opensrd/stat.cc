#include "tools/opensrd/stat.h"

#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <string>
#include <thread>

#include "opensrd/transport.h"
#include "tools/opensrd/prom_text.h"

namespace opensrd::cli {

namespace {

struct StatOptions {
  std::string metrics;
  int interval_ms = 1000;
  int count = 0;  // frames; 0 = until 'q'
};
StatOptions g_opts;
CLI::App* g_cmd = nullptr;
std::atomic<bool> g_stop{false};
void OnSignal(int) {
  g_stop.store(true);
}

constexpr size_t kHistory = 30;  // sparkline width, in frames

// Eight block heights; a sparkline scales to the largest value it shows.
std::string Sparkline(const std::deque<double>& v) {
  static const char* const kBars[] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                      "\u2585", "\u2586", "\u2587", "\u2588"};
  double hi = 0;
  for (double x : v) hi = std::max(hi, x);
  std::string out;
  for (double x : v) {
    const int i = hi > 0 ? std::clamp(static_cast<int>(x / hi * 7.0 + 0.5), 0, 7) : 0;
    out += kBars[i];
  }
  for (size_t i = v.size(); i < kHistory; ++i) out += ' ';
  return out;
}

std::string Human(double v, const char* unit = "") {
  char buf[32];
  const char* suffix = "";
  if (v >= 1e9) {
    v /= 1e9;
    suffix = "G";
  } else if (v >= 1e6) {
    v /= 1e6;
    suffix = "M";
  } else if (v >= 1e4) {
    v /= 1e3;
    suffix = "k";
  }
  std::snprintf(buf, sizeof buf, *suffix ? "%.1f%s%s" : "%.0f%s%s", v, suffix, unit);
  return buf;
}

// One scrape, reduced to what the view shows.
struct Frame {
  std::string command;
  std::map<std::string, double> totals;  // unlabelled samples by name
  std::map<std::string, double> causes;  // opensrd_retrans_cause_pkts_total by cause
  struct PathRow {
    std::string state = "?";
    double tx = 0, retx = 0, lost = 0, srtt_s = 0, min_rtt_s = 0;
  };
  std::map<std::pair<std::string, std::string>, PathRow> paths;  // by (peer, path)
  uint64_t rejected = 0;
};

Frame Reduce(const PromText& t) {
  Frame f;
  f.rejected = t.total_rejected();
  for (const PromSample& s : t.samples) {
    if (s.name == "opensrd_info") {
      f.command = s.Label("command");
    } else if (s.name == "opensrd_retrans_cause_pkts_total") {
      f.causes[std::string(s.Label("cause"))] = s.value;
    } else if (s.name.rfind("opensrd_path_", 0) == 0 && !s.Label("path").empty()) {
      Frame::PathRow& p = f.paths[{std::string(s.Label("peer")), std::string(s.Label("path"))}];
      if (s.name == "opensrd_path_state") {
        if (s.value == 1) p.state = s.Label("state");
      } else if (s.name == "opensrd_path_tx_pkts_total") {
        p.tx += s.value;
      } else if (s.name == "opensrd_path_retrans_pkts_total") {
        p.tx += s.value;
        p.retx = s.value;
      } else if (s.name == "opensrd_path_lost_pkts_total") {
        p.lost = s.value;
      } else if (s.name == "opensrd_path_srtt_seconds") {
        p.srtt_s = s.value;
      } else if (s.name == "opensrd_path_min_rtt_seconds") {
        p.min_rtt_s = s.value;
      }
    } else if (s.labels.empty()) {
      f.totals[s.name] = s.value;
    }
  }
  return f;
}

class View {
 public:
  // Renders `now` against the previous frame, `dt` seconds earlier (0: the first).
  std::string Render(const Frame& now, double dt, const std::string& where) {
    auto total = [&](const char* n) {
      auto it = now.totals.find(n);
      return it == now.totals.end() ? 0.0 : it->second;
    };
    auto rate = [&](const char* n) {
      auto it = prev_.totals.find(n);
      return dt > 0 && it != prev_.totals.end() ? std::max(0.0, (total(n) - it->second) / dt) : 0.0;
    };
    std::string out;
    char line[512];
    std::snprintf(line, sizeof line, "opensrd stat  %s  %s  every %.1f s  (q quits)\n",
                  where.c_str(), now.command.c_str(), g_opts.interval_ms / 1000.0);
    out += line;
    std::snprintf(
        line, sizeof line, "endpoint  tx %s (%s/s)  rx %s (%s/s)  rx bytes %s/s  messages in %s\n",
        Human(total("opensrd_tx_pkts_total")).c_str(), Human(rate("opensrd_tx_pkts_total")).c_str(),
        Human(total("opensrd_rx_pkts_total")).c_str(), Human(rate("opensrd_rx_pkts_total")).c_str(),
        Human(rate("opensrd_rx_bytes_total"), "B").c_str(),
        Human(total("opensrd_messages_received_total")).c_str());
    out += line;
    auto cause = [&](const char* c) {
      auto it = now.causes.find(c);
      return it == now.causes.end() ? 0.0 : it->second;
    };
    std::snprintf(line, sizeof line,
                  "retrans   %s  (rack %s  rto %s  tlp %s  nack %s  rnr %s)  spurious %s  "
                  "rto events %s\n",
                  Human(total("opensrd_retrans_pkts_total")).c_str(), Human(cause("rack")).c_str(),
                  Human(cause("rto")).c_str(), Human(cause("tlp")).c_str(),
                  Human(cause("nack")).c_str(), Human(cause("rnr")).c_str(),
                  Human(total("opensrd_spurious_retrans_pkts_total")).c_str(),
                  Human(total("opensrd_retrans_timeout_events_total")).c_str());
    out += line;
    std::snprintf(line, sizeof line,
                  "paths     state changes %s  rnr waits %s  cwnd %s  in flight %s  pacing %s/s  "
                  "peers %s\n",
                  Human(total("opensrd_endpoint_path_state_changes_total")).c_str(),
                  Human(total("opensrd_rnr_waits_total")).c_str(),
                  Human(total("opensrd_cwnd_bytes"), "B").c_str(),
                  Human(total("opensrd_inflight_bytes"), "B").c_str(),
                  Human(total("opensrd_pacing_rate_bytes_per_second"), "B").c_str(),
                  Human(total("opensrd_peers")).c_str());
    out += line;
    std::snprintf(line, sizeof line, "\n%-5s %-5s %-8s %8s %8s %8s %8s %8s  %-*s  %-*s\n", "peer",
                  "path", "state", "pkts/s", "retx", "lost", "srtt us", "min us",
                  static_cast<int>(kHistory), "pkts/s", static_cast<int>(kHistory), "srtt");
    out += line;
    for (const auto& [key, p] : now.paths) {
      History& h = history_[key];
      auto old = prev_.paths.find(key);
      const double pps =
          dt > 0 && old != prev_.paths.end() ? std::max(0.0, (p.tx - old->second.tx) / dt) : 0.0;
      if (dt > 0) {
        Push(h.rate, pps);
        Push(h.rtt, p.srtt_s);
      }
      std::snprintf(line, sizeof line, "%-5s %-5s %-8s %8s %8s %8s %8.0f %8.0f  %s  %s\n",
                    key.first.c_str(), key.second.c_str(), p.state.c_str(), Human(pps).c_str(),
                    Human(p.retx).c_str(), Human(p.lost).c_str(), p.srtt_s * 1e6, p.min_rtt_s * 1e6,
                    Sparkline(h.rate).c_str(), Sparkline(h.rtt).c_str());
      out += line;
    }
    if (now.paths.empty()) out += "(no peers yet)\n";
    if (now.rejected > 0) {
      std::snprintf(line, sizeof line, "\n%llu lines of the scrape did not parse\n",
                    static_cast<unsigned long long>(now.rejected));
      out += line;
    }
    prev_ = now;
    return out;
  }

 private:
  struct History {
    std::deque<double> rate, rtt;
  };
  static void Push(std::deque<double>& d, double v) {
    d.push_back(v);
    if (d.size() > kHistory) d.pop_front();
  }
  Frame prev_;
  std::map<std::pair<std::string, std::string>, History> history_;
};

// Raw keys from a terminal on stdin, restored on exit.
class KeyReader {
 public:
  KeyReader() {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~KeyReader() {
    if (active_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  // Waits up to `ms` for a key; true if it was 'q' (or stdin closed).
  bool WaitForQuit(int ms) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!g_stop.load()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            end - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0) return false;
      pollfd p{STDIN_FILENO, POLLIN, 0};
      const int r = active_ ? poll(&p, 1, static_cast<int>(left)) : 0;
      if (!active_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min<long>(left, 50)));
        continue;
      }
      if (r > 0) {
        char c = 0;
        const ssize_t n = read(STDIN_FILENO, &c, 1);
        if (n == 0) return true;
        if (n == 1 && (c == 'q' || c == 'Q')) return true;
      }
    }
    return true;
  }

 private:
  termios saved_{};
  bool active_ = false;
};

}  // namespace

void AddStatCommand(CLI::App& app) {
  g_cmd = app.add_subcommand("stat",
                             "Live view of a running command's counters (its --metrics endpoint)");
  g_cmd->add_option("--metrics", g_opts.metrics, "HOST:PORT of the command's --metrics")
      ->required();
  g_cmd->add_option("--interval-ms", g_opts.interval_ms, "refresh period")
      ->check(CLI::Range(100, 60'000));
  g_cmd->add_option("--count", g_opts.count, "frames to show, then exit (default: until q)")
      ->check(CLI::Range(0, 1'000'000));
}

bool StatParsed() {
  return g_cmd != nullptr && g_cmd->parsed();
}

int RunStat() {
  Result<NetAddr> a = ParseNetAddr(g_opts.metrics);
  if (!a.ok() || a->port == 0) {
    std::fprintf(stderr, "opensrd stat: bad --metrics %s: %s\n", g_opts.metrics.c_str(),
                 a.ok() ? "port 0" : a.status().message().c_str());
    return 2;
  }
  std::string host = ToString(*a);
  host = host.substr(0, host.rfind(':'));
  if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
  httplib::Client http(host, a->port);
  http.set_connection_timeout(2, 0);
  http.set_read_timeout(2, 0);
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  const bool tty = isatty(STDOUT_FILENO);
  KeyReader keys;
  View view;
  auto last = std::chrono::steady_clock::now();
  bool first = true;
  int shown = 0, failures = 0;
  while (!g_stop.load()) {
    httplib::Result res = http.Get("/metrics");
    const auto now = std::chrono::steady_clock::now();
    std::string screen;
    if (!res || res->status != 200) {
      if (first) {
        std::fprintf(stderr, "opensrd stat: cannot scrape http://%s/metrics: %s\n",
                     g_opts.metrics.c_str(),
                     res ? ("HTTP " + std::to_string(res->status)).c_str()
                         : httplib::to_string(res.error()).c_str());
        return 1;
      }
      ++failures;
      screen = "opensrd stat  " + g_opts.metrics + ": scrape failed (" +
               (res ? "HTTP " + std::to_string(res->status) : httplib::to_string(res.error())) +
               "), retrying\n";
    } else {
      const double dt = first ? 0 : std::chrono::duration<double>(now - last).count();
      screen = view.Render(Reduce(ParsePromText(res->body)), dt, g_opts.metrics);
      last = now;
      first = false;
    }
    // On a terminal: home and clear, then the frame; to a pipe: frames one after another.
    std::fputs(tty ? "\x1b[H\x1b[2J" : "\n", stdout);
    std::fputs(screen.c_str(), stdout);
    std::fflush(stdout);
    if (g_opts.count > 0 && ++shown >= g_opts.count) break;
    if (keys.WaitForQuit(g_opts.interval_ms)) break;
  }
  return failures > 0 && first ? 1 : 0;
}

}  // namespace opensrd::cli

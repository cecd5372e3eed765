// `opensrd stat --metrics HOST:PORT`: a live terminal view of a running command's counters (what
// its --metrics serves): endpoint totals and rates, retransmissions by cause, and one row per
// path with its state, rates, RTT and sparklines of its packet rate and smoothed RTT. Refreshes
// every --interval-ms until 'q' (or Ctrl-C, or --count frames).
#pragma once

namespace CLI {
class App;
}

namespace opensrd::cli {

// Adds the `stat` subcommand to `app`; StatParsed() tells main.cc whether to call RunStat().
void AddStatCommand(CLI::App& app);
bool StatParsed();
int RunStat();

}  // namespace opensrd::cli

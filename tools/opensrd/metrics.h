// --metrics HOST:PORT: the endpoint's counters as Prometheus text at http://HOST:PORT/metrics
// (cpp-httplib from Debian serves it on its own threads). Names are opensrd_*, EFA's where the
// meaning is the same (docs/OBSERVABILITY.md has the list).
//
// The endpoint belongs to its I/O thread, so the HTTP threads never touch it: the I/O thread
// calls MaybePublish in its loop, which at most every `kPublishPeriodUs` copies the counters into
// a snapshot under a lock it only try-locks (a scrape in progress makes it skip one period; it
// never waits). A scrape renders the last snapshot, so values lag the endpoint by up to ~100 ms.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "transport/udp_endpoint.h"

namespace opensrd::cli {

// One sample of a command's own metric family (the block counters of `bridge` and `adapter`),
// rendered after the endpoint's. Samples of one family are adjacent and share type and help.
struct ExtraMetric {
  std::string name;  // full name, opensrd_*
  const char* type = "counter";
  std::string help;
  std::string labels;  // rendered inside {}, e.g. state="ok" (already quoted)
  double value = 0;
};
// `key="value"` with the value escaped as the exposition format wants.
std::string MetricLabel(const std::string& key, const std::string& value);
using ExtraMetricsFn = std::function<void(std::vector<ExtraMetric>&)>;

class MetricsServer {
 public:
  // Binds HOST:PORT (an IPv4/IPv6 address, port > 0) and starts serving. `command` labels the
  // process in opensrd_info ("perf_server", "perf_client"). Errors name the address.
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& host_port,
                                                      const std::string& command);
  ~MetricsServer();  // stops the HTTP server and joins its thread

  // I/O thread: publishes a snapshot of `udp` if the last one is older than the period (or if
  // `force`), with the samples `extra` adds (called only when publishing). Never blocks.
  void MaybePublish(const UdpEndpoint& udp, bool force = false, const ExtraMetricsFn& extra = {});

  class Impl;

 private:
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace opensrd::cli

// opensrd: one CLI for the whole system. Parses arguments and dispatches to a subcommand.
// Exit codes: 0 success, 1 a failed run, 2 bad arguments (every CLI11 parse error included).
#include <CLI/CLI.hpp>

#include <cstdio>

#include "tools/opensrd/commands.h"
#include "tools/opensrd/rdma_cli.h"
#include "tools/opensrd/rdma_commands.h"
#include "tools/opensrd/sim_command.h"
#include "tools/opensrd/stat.h"

namespace {
constexpr const char* kPcapHelp =
    "write every datagram crossing the sockets to this pcap file (sends after the fault "
    "injector, receives before it; never slows the run: drops are counted)";
constexpr const char* kMetricsHelp =
    "serve the endpoint's counters as Prometheus text at http://HOST:PORT/metrics";
}  // namespace

int main(int argc, char** argv) {
  using namespace opensrd::cli;
  CLI::App app{"opensrd: SRD-style reliable multipath transport over UDP (software I/O card)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "opensrd 0.1.0");

  DemoOptions demo;
  auto* demo_cmd = app.add_subcommand("demo",
                                      "Local transfer between two endpoints over several "
                                      "paths with injected loss on one; prints a report");
  demo_cmd->add_option("--paths", demo.paths, "number of paths")->check(CLI::Range(1, 64));
  demo_cmd->add_option("--loss", demo.loss, "loss probability injected on path 1")
      ->check(CLI::Range(0.0, 0.9));
  demo_cmd->add_option("--messages", demo.messages, "messages to transfer");
  demo_cmd->add_option("--seed", demo.seed, "seed for payload sizes");
  demo_cmd
      ->add_option("--storage-ops", demo.storage_ops,
                   "4 KiB writes, then reads, of the storage part (bridge and adapter on a "
                   "temporary file volume); 0 skips it")
      ->check(CLI::Range(0, 16384));
  demo_cmd->add_option("--pcap", demo.pcap, kPcapHelp);

  auto* perf_cmd = app.add_subcommand(
      "perf", "Bandwidth and latency over real UDP sockets (a server and a client)");
  perf_cmd->require_subcommand(1);

  PerfServerOptions server;
  auto* server_cmd = perf_cmd->add_subcommand(
      "server", "Serve perf clients until killed; verifies every byte it receives");
  server_cmd
      ->add_option("--bind", server.bind,
                   "HOST:PORT to listen on (repeat for a multi-homed server: one socket each)")
      ->required();
  server_cmd->add_option("--paths", server.paths, "paths accepted per client")
      ->check(CLI::Range(1, 256));
  server_cmd->add_option("--max-size", server.max_size, "largest message accepted (bytes)")
      ->check(CLI::Range(72u, 64u << 20));
  server_cmd->add_option("--buffers", server.buffers, "receive buffers posted")
      ->check(CLI::Range(1, 65536));
  server_cmd
      ->add_option("--max-payload", server.max_payload,
                   "payload bytes per packet sent (default: 8192 on loopback, else 1400)")
      ->check(CLI::Range(64, 65451));
  server_cmd->add_flag("--quiet", server.quiet, "no per-client lines on stderr");
  server_cmd->add_option("--key-file", server.key_file,
                         "cluster key file (32 bytes or 64 hex digits): every packet protected");
  server_cmd->add_option("--key-mode", server.key_mode, "mac (default) or aead");
  server_cmd->add_option("--pcap", server.pcap, kPcapHelp);
  server_cmd->add_option("--metrics", server.metrics, kMetricsHelp);
  AddDmaOptions(server_cmd, server.dma, [](auto v) { return CLI::IsMember(v); });

  PerfClientOptions client;
  auto* client_cmd = perf_cmd->add_subcommand("client", "Run a bw or lat test against a server");
  auto* connect = client_cmd->add_option("--connect", client.connect, "server HOST:PORT");
  client_cmd
      ->add_option("--path", client.path,
                   "explicit path LOCAL=REMOTE (LOCAL: HOST or HOST:PORT; repeat per path; "
                   "replaces --connect, --paths and --source-port-base)")
      ->excludes(connect);
  client_cmd->add_option("--paths", client.paths, "paths (path i sends from source port base+i)")
      ->check(CLI::Range(1, 256));
  client_cmd
      ->add_option("--source-port-base", client.source_port_base,
                   "first local UDP port (default: ephemeral ports)")
      ->check(CLI::Range(1, 65535));
  client_cmd->add_option("--size", client.size, "message size in bytes (bw 65536, lat 64)")
      ->check(CLI::Range(24u, 64u << 20));
  auto* dur = client_cmd->add_option("--duration", client.duration_s, "seconds (default 3)")
                  ->check(CLI::Range(0.001, 86400.0));
  client_cmd->add_option("--count", client.count, "messages to send")->excludes(dur);
  client_cmd->add_option("--inflight", client.inflight, "messages kept posted (bw)")
      ->check(CLI::Range(1, 4096));
  client_cmd->add_option("--mode", client.mode, "bw (throughput) or lat (ping-pong)")
      ->check(CLI::IsMember({"bw", "lat"}));
  client_cmd->add_flag("--in-order", client.in_order, "in-order delivery at the server");
  client_cmd->add_option("--fault", client.fault,
                         "fault injection on this client's paths, e.g. "
                         "'path=1:loss=0.05,dup=0.01;path=3:blackhole_after_ms=500'");
  client_cmd->add_flag("--json", client.json, "print one JSON object");
  client_cmd
      ->add_option("--peer-timeout-ms", client.peer_timeout_ms,
                   "fail when the server does not answer for this long")
      ->check(CLI::Range(1, 3'600'000));
  client_cmd
      ->add_option("--max-payload", client.max_payload,
                   "payload bytes per packet (default: 8192 on loopback, else 1400, which fits "
                   "a 1500-byte MTU; at most 65451)")
      ->check(CLI::Range(64, 65451));
  client_cmd->add_option("--spray-burst", client.spray_burst, "packets per path choice")
      ->check(CLI::Range(1, 1024));
  client_cmd
      ->add_option("--gso-cork-us", client.gso_cork_us,
                   "hold full-size datagrams up to this long for larger GSO sends (default 0: "
                   "off; experimental, see docs/PERF.md)")
      ->check(CLI::Range(0, 1000));
  client_cmd->add_option("--seed", client.seed, "endpoint and fault seed (default: clock)");
  client_cmd->add_option("--key-file", client.key_file,
                         "cluster key file (32 bytes or 64 hex digits): every packet protected");
  client_cmd->add_option("--key-mode", client.key_mode, "mac (default) or aead");
  client_cmd->add_option("--pcap", client.pcap, kPcapHelp);
  client_cmd->add_option("--metrics", client.metrics, kMetricsHelp);
  AddDmaOptions(client_cmd, client.dma, [](auto v) { return CLI::IsMember(v); });
  client_cmd->add_option("--timeline", client.timeline,
                         "write per-path rate, RTT and retransmissions over time to this CSV "
                         "(scripts/plot_timeline.py draws it)");
  client_cmd
      ->add_option("--timeline-interval-ms", client.timeline_interval_ms,
                   "--timeline's sampling period")
      ->check(CLI::Range(10, 60'000));

  BridgeCliOptions bridge;
  auto* bridge_cmd = app.add_subcommand(
      "bridge", "Storage bridge: serve named volumes (files or block devices) to adapters");
  bridge_cmd->add_option("--bind", bridge.bind, "HOST:PORT to listen on (repeatable)")->required();
  bridge_cmd
      ->add_option("--volume", bridge.volumes,
                   "NAME=PATH[,size=BYTES][,token=SECRET|,token-file=PATH][,ro][,crash-test] "
                   "(repeatable; a missing file is created at the size; an inline token is "
                   "visible to other users in the process list)")
      ->required();
  bridge_cmd->add_option("--paths", bridge.paths, "paths accepted per adapter")
      ->check(CLI::Range(1, 256));
  bridge_cmd->add_option("--buffers", bridge.buffers, "requests in flight (receive buffers)")
      ->check(CLI::Range(4, 65536));
  bridge_cmd->add_flag("--no-direct", bridge.no_direct, "buffered I/O instead of O_DIRECT");
  bridge_cmd->add_flag("--json", bridge.json, "print one JSON object of counters at exit");
  bridge_cmd->add_flag("--quiet", bridge.quiet, "no log lines on stderr");
  bridge_cmd->add_option("--key-file", bridge.key_file, "cluster key file (docs/SECURITY.md)");
  bridge_cmd->add_option("--key-mode", bridge.key_mode, "mac (default) or aead");
  bridge_cmd->add_option("--pcap", bridge.pcap, kPcapHelp);
  bridge_cmd->add_option("--metrics", bridge.metrics, kMetricsHelp);

  auto* volume_cmd = app.add_subcommand("volume", "Manage volumes on a running bridge");
  volume_cmd->require_subcommand(1);
  VolumeResizeOptions resize;
  auto* resize_cmd = volume_cmd->add_subcommand("resize", "Grow a volume; adapters see it live");
  resize_cmd->add_option("--bridge", resize.bridge, "bridge HOST:PORT")->required();
  resize_cmd->add_option("--volume", resize.volume, "volume name")->required();
  resize_cmd->add_option("--size", resize.size, "new size (bytes, or with K/M/G/T/KiB/MiB/GiB)")
      ->required();
  auto* tok = resize_cmd->add_option("--token", resize.token,
                                     "the volume's token (visible in the process list)");
  resize_cmd->add_option("--token-file", resize.token_file, "file holding the volume's token")
      ->excludes(tok);
  resize_cmd->add_option("--key-file", resize.key_file, "cluster key file");
  resize_cmd->add_option("--key-mode", resize.key_mode, "mac (default) or aead");
  resize_cmd->add_option("--timeout-ms", resize.timeout_ms, "give up after this long")
      ->check(CLI::Range(1, 600'000));

  AdapterOptions adapter;
  auto* adapter_cmd = app.add_subcommand(
      "adapter", "Storage adapter: attach a volume on bridges and serve it to local clients");
  adapter_cmd
      ->add_option("--bridge", adapter.bridges, "bridge HOST:PORT (repeat: failover in order)")
      ->required();
  adapter_cmd->add_option("--volume", adapter.volume, "volume name")->required();
  auto* atok = adapter_cmd->add_option("--token", adapter.token,
                                       "the volume's token (visible in the process list)");
  adapter_cmd->add_option("--token-file", adapter.token_file, "file holding the volume's token")
      ->excludes(atok);
  adapter_cmd->add_option("--nvme", adapter.nvme,
                          "unix:PATH: NVMe-style queues in shared memory for a host program");
  adapter_cmd->add_option("--nbd", adapter.nbd,
                          "unix:PATH or HOST:PORT: serve the volume over NBD (export named as "
                          "the volume)");
  adapter_cmd->add_option("--queues", adapter.queues, "NVMe-style queue pairs")
      ->check(CLI::Range(1, 8));
  adapter_cmd->add_option("--paths", adapter.paths, "paths to each bridge")
      ->check(CLI::Range(1, 256));
  adapter_cmd
      ->add_option("--peer-timeout-ms", adapter.peer_timeout_ms,
                   "a bridge silent this long is given up (then the next one is tried)")
      ->check(CLI::Range(10, 3'600'000));
  adapter_cmd
      ->add_option("--reconnect-timeout-ms", adapter.reconnect_timeout_ms,
                   "requests wait this long for a bridge to return before failing (io-disabled)")
      ->check(CLI::Range(10, 86'400'000));
  adapter_cmd->add_flag("--json", adapter.json, "print one JSON object of counters at exit");
  adapter_cmd->add_flag("--quiet", adapter.quiet, "no log lines on stderr");
  adapter_cmd->add_option("--key-file", adapter.key_file, "cluster key file");
  adapter_cmd->add_option("--key-mode", adapter.key_mode, "mac (default) or aead");
  adapter_cmd->add_option("--pcap", adapter.pcap, kPcapHelp);
  adapter_cmd->add_option("--metrics", adapter.metrics, kMetricsHelp);

  AddStatCommand(app);
  // rdma server|client (native over SRD) and the RoCEv2 interop modes hang on one `rdma`.
  const auto run_rdma = AddRdmaCommand(app);
  auto* rdma_cmd = app.get_subcommand("rdma");
  AddRocePingpongCommand(rdma_cmd);
  AddRocePerftestCommand(rdma_cmd);
  AddRoceRpingCommand(rdma_cmd);
  auto run_sim = AddSimCommand(app);
  AddLogLevelOption(app);  // every command, so after all of them
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (demo_cmd->parsed()) return RunDemo(demo);
  if (server_cmd->parsed()) return RunPerfServer(server);
  if (client_cmd->parsed()) return RunPerfClient(client);
  if (bridge_cmd->parsed()) return RunBridge(bridge);
  if (resize_cmd->parsed()) return RunVolumeResize(resize);
  if (adapter_cmd->parsed()) return RunAdapter(adapter);
  if (StatParsed()) return RunStat();
  if (const int rc = run_rdma(); rc >= 0) return rc;
  if (rdma_cmd->parsed()) return RdmaCommandExitCode();
  if (const int rc = run_sim(); rc >= 0) return rc;
  return 2;
}

// What `opensrd rdma server|client --protocol roce` and `rdma rping` share: one RoCEv2 endpoint
// (RoceUdpShell) with its connection manager (CmAgent) on QP1, and small address helpers.
// Single-threaded, like the shell.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/pcap_writer.h"
#include "common/status.h"
#include "rdma/ib_cm_agent.h"
#include "rdma/roce_udp.h"

namespace opensrd::cli {

uint64_t NowUs();  // CLOCK_MONOTONIC microseconds, the shell's clock
// HOST[:PORT] (IPv4); the port stays as given when absent.
bool ParseHostPort(const std::string& s, uint32_t* ip, uint16_t* port);
std::string IpText(uint32_t ip);
uint32_t RouteSource(uint32_t ip);  // the source address the kernel would use towards ip
void PutBe(uint8_t* p, uint64_t v, int n);
uint64_t GetBe(const uint8_t* p, int n);
uint32_t MtuBytes(uint8_t code);  // IB MTU code (1-5) to bytes
std::string CpuModel();

// The shell, the CM agent and the glue between them: QP1 packets are decoded and fed to the
// agent; the agent's messages go out as GSI packets from Step.
struct Node {
  std::unique_ptr<rdma::roce::RoceUdpShell> shell;
  std::unique_ptr<rdma::cm::CmAgent> agent;
  std::unique_ptr<PcapWriter> capture;
  uint16_t port = 4791;
  uint32_t gsi_psn = 0;
  uint64_t cm_malformed = 0;
  // Set before Open: RoceUdpShell::Options::reorder, and its seed (0: derived from Open's seed;
  // Counters() reports the one used).
  double reorder = 0;
  uint64_t reorder_seed = 0;

  Status Open(uint32_t ip, uint16_t udp_port, const std::string& pcap, uint64_t seed,
              uint64_t cm_resend_us = 200'000);
  // One turn: socket I/O, the CM's timers, the CM's messages out.
  Status Step(int timeout_ms);
  nlohmann::json Counters() const;
};

}  // namespace opensrd::cli

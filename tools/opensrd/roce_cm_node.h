// Small helpers the RoCEv2 commands share (`rdma server|client --protocol roce`, `rdma rping`,
// `rdma pingpong|perftest`): IPv4 HOST:PORT parsing, route source lookup, big-endian fields, IB
// MTU codes, the CPU model for reports. (The endpoint and its connection manager that used to
// live here are RcDevice's now: src/rdma/rc_device_roce.cc.)
#pragma once
#include <cstdint>
#include <string>

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

}  // namespace opensrd::cli

// PcapWriter: records the UDP datagrams an endpoint sends and receives in a classic pcap file
// (nanosecond time stamps, LINKTYPE_RAW), each wrapped in a synthesized IPv4 or IPv6 header and
// a UDP header carrying the datagram's real addresses and ports, so Wireshark and tshark read
// it like a capture from the wire (tools/wireshark/opensrd.lua decodes the payload).
//
// It never stalls the data path. Each producing thread appends through its own Source: a
// single-producer single-consumer byte ring of fixed size, no lock, no allocation and no system
// call per datagram (one clock_gettime). A background thread (at nice 10, below the I/O
// threads) drains every source a few hundred times a second and writes the file. When a ring is
// full the datagram is not recorded and is counted in `dropped`; nothing ever waits for the disk.
//
// Off costs nothing: an endpoint without a writer tests one null pointer per datagram.
//
// Thread-safety: Open, NewSource, stats and Close may be called from any thread; a Source is
// used by one thread at a time (several endpoints driven by the same thread may share one).
// Records from different sources are written in drain order, so their time stamps may be out of
// order by up to one drain period (a few milliseconds).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "opensrd/transport.h"

namespace opensrd {

struct PcapWriterOptions {
  std::string path;
  // Bytes of ring per Source (rounded up to a power of two). At 8 MiB and a drain every 2 ms a
  // source absorbs about 4 GB/s of datagrams before dropping.
  size_t ring_bytes = 8u << 20;
  // Datagram bytes recorded per datagram (the rest is cut; the record keeps the real length).
  uint32_t snaplen = 65535;
  // How often the writer thread drains the rings (tests stretch it to fill a ring on purpose).
  uint32_t drain_period_ms = 2;
};

struct PcapStats {
  uint64_t captured = 0;      // datagrams appended to a ring
  uint64_t dropped = 0;       // datagrams not recorded because a ring was full
  uint64_t written = 0;       // records written to the file
  uint64_t write_errors = 0;  // records lost to a failed write (disk full ...)
};

class PcapWriter {
 public:
  class Source;

  // Creates (truncates) the file, writes the pcap header and starts the writer thread.
  static Result<std::unique_ptr<PcapWriter>> Open(const PcapWriterOptions& options);
  // Close()s.
  ~PcapWriter();
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;

  // A new producer handle, owned by the writer (valid until the writer is destroyed).
  Source* NewSource();
  // Drains every ring, writes, flushes and closes the file; later appends are dropped.
  void Close();
  PcapStats stats() const;
  const std::string& path() const;

 private:
  class Impl;
  explicit PcapWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class PcapWriter::Source {
 public:
  // Records one UDP datagram from `src` to `dst` (same address family). Never blocks.
  void Append(const NetAddr& src, const NetAddr& dst, std::span<const uint8_t> datagram);
  // Records `bytes` written to (or read from) a TCP stream as segments from `src` to `dst`, the
  // first at sequence number `seq`, acknowledging `ack` (the caller counts both directions'
  // bytes; no SYN or FIN is recorded). Never blocks.
  void AppendTcp(const NetAddr& src, const NetAddr& dst, uint32_t seq, uint32_t ack,
                 std::span<const uint8_t> bytes);

 private:
  friend class PcapWriter;
  friend class PcapWriter::Impl;
  Source(size_t ring_bytes, uint32_t snaplen);
  void Put(const NetAddr& src, const NetAddr& dst, std::span<const uint8_t> bytes, uint8_t proto,
           uint32_t seq, uint32_t ack);
  // Consumer side (the writer thread): appends every complete record, as pcap records with
  // their synthesized IP and UDP headers, to `out` and frees its ring space. Returns records.
  uint64_t DrainInto(std::vector<uint8_t>& out);

  const size_t mask_;
  const uint32_t snaplen_;
  std::unique_ptr<uint8_t[]> ring_;
  std::atomic<uint64_t> head_{0};  // written by the producer
  std::atomic<uint64_t> tail_{0};  // written by the consumer
  std::atomic<uint64_t> captured_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<bool> closed_{false};
};

}  // namespace opensrd

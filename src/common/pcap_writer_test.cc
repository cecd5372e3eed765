#include "common/pcap_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

namespace opensrd {
namespace {

// A pcap file read back, checked field by field as a reader (tshark) would see it.
struct Frame {
  uint32_t ts_sec = 0, ts_nsec = 0, incl_len = 0, orig_len = 0;
  std::vector<uint8_t> bytes;  // from the IP header on
};
struct PcapFile {
  uint32_t magic = 0, snaplen = 0, linktype = 0;
  uint16_t major = 0, minor = 0;
  std::vector<Frame> frames;
};

uint32_t Le32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint16_t Be16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
uint32_t Be32(const uint8_t* p) {
  return (uint32_t{Be16(p)} << 16) | Be16(p + 2);
}

PcapFile Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  PcapFile f;
  EXPECT_GE(b.size(), 24u);
  if (b.size() < 24) return f;
  f.magic = Le32(&b[0]);
  std::memcpy(&f.major, &b[4], 2);
  std::memcpy(&f.minor, &b[6], 2);
  f.snaplen = Le32(&b[16]);
  f.linktype = Le32(&b[20]);
  size_t at = 24;
  while (at + 16 <= b.size()) {
    Frame fr;
    fr.ts_sec = Le32(&b[at]);
    fr.ts_nsec = Le32(&b[at + 4]);
    fr.incl_len = Le32(&b[at + 8]);
    fr.orig_len = Le32(&b[at + 12]);
    at += 16;
    EXPECT_LE(at + fr.incl_len, b.size()) << "record cut short";
    if (at + fr.incl_len > b.size()) break;
    fr.bytes.assign(b.begin() + at, b.begin() + at + fr.incl_len);
    at += fr.incl_len;
    f.frames.push_back(std::move(fr));
  }
  EXPECT_EQ(at, b.size()) << "trailing bytes";
  return f;
}

// RFC 1071 sum over `n` bytes, folded; a correct header or segment sums to 0xFFFF.
uint16_t OnesSum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += Be16(p + i);
  if (n & 1) sum += uint32_t{p[n - 1]} << 8;
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

std::string TempPath(const char* name) {
  return testing::TempDir() + "pcap_writer_test_" + std::to_string(getpid()) + "_" + name;
}

std::vector<uint8_t> Payload(size_t n, uint8_t seed) {
  std::vector<uint8_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(seed + i * 7);
  return p;
}

NetAddr V4(uint32_t ip, uint16_t port) {
  return NetAddr{.ip = ip, .port = port};
}
NetAddr V6Loopback(uint16_t port) {
  NetAddr a{.port = port, .v6 = true};
  a.ip6[15] = 1;
  return a;
}

TEST(PcapWriter, WritesIpv4AndIpv6DatagramsAReaderCanCheck) {
  const std::string path = TempPath("basic.pcap");
  auto w = PcapWriter::Open({.path = path});
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  PcapWriter::Source* src = (*w)->NewSource();
  const auto p1 = Payload(101, 1);  // odd length: the checksum pads a zero byte
  const auto p2 = Payload(1400, 2);
  src->Append(V4(0x7F000001, 7400), V4(0x7F000002, 7401), p1);
  src->Append(V6Loopback(7402), V6Loopback(7403), p2);
  (*w)->Close();
  const PcapStats st = (*w)->stats();
  EXPECT_EQ(st.captured, 2u);
  EXPECT_EQ(st.written, 2u);
  EXPECT_EQ(st.dropped, 0u);
  EXPECT_EQ(st.write_errors, 0u);

  const PcapFile f = Read(path);
  EXPECT_EQ(f.magic, 0xA1B23C4Du);  // nanosecond time stamps
  EXPECT_EQ(f.major, 2);
  EXPECT_EQ(f.minor, 4);
  EXPECT_EQ(f.linktype, 101u);  // LINKTYPE_RAW
  EXPECT_GE(f.snaplen, 65535u);
  ASSERT_EQ(f.frames.size(), 2u);

  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(now).count();
  for (const Frame& fr : f.frames) {
    EXPECT_LE(fr.ts_sec, now_s);
    EXPECT_GE(fr.ts_sec + 60, now_s);
    EXPECT_LT(fr.ts_nsec, 1'000'000'000u);
    EXPECT_EQ(fr.incl_len, fr.orig_len);
  }

  // IPv4 + UDP.
  const std::vector<uint8_t>& a = f.frames[0].bytes;
  ASSERT_EQ(a.size(), 20u + 8 + p1.size());
  EXPECT_EQ(a[0], 0x45);
  EXPECT_EQ(Be16(&a[2]), 20 + 8 + p1.size());
  EXPECT_EQ(a[9], 17);
  EXPECT_EQ(Be32(&a[12]), 0x7F000001u);
  EXPECT_EQ(Be32(&a[16]), 0x7F000002u);
  EXPECT_EQ(OnesSum(a.data(), 20), 0xFFFF) << "IPv4 header checksum";
  EXPECT_EQ(Be16(&a[20]), 7400);
  EXPECT_EQ(Be16(&a[22]), 7401);
  EXPECT_EQ(Be16(&a[24]), 8 + p1.size());
  EXPECT_NE(Be16(&a[26]), 0) << "UDP checksum present";
  uint32_t pseudo = OnesSum(&a[12], 8) + 17 + Be16(&a[24]);
  EXPECT_EQ(OnesSum(&a[20], a.size() - 20, pseudo), 0xFFFF) << "UDP checksum";
  EXPECT_TRUE(std::equal(p1.begin(), p1.end(), a.begin() + 28));

  // IPv6 + UDP.
  const std::vector<uint8_t>& b = f.frames[1].bytes;
  ASSERT_EQ(b.size(), 40u + 8 + p2.size());
  EXPECT_EQ(b[0] >> 4, 6);
  EXPECT_EQ(Be16(&b[4]), 8 + p2.size());
  EXPECT_EQ(b[6], 17);
  EXPECT_EQ(b[23], 1);  // ::1
  EXPECT_EQ(b[39], 1);
  EXPECT_EQ(Be16(&b[40]), 7402);
  EXPECT_EQ(Be16(&b[42]), 7403);
  pseudo = OnesSum(&b[8], 32) + 17 + Be16(&b[44]);
  EXPECT_EQ(OnesSum(&b[40], b.size() - 40, pseudo), 0xFFFF) << "UDP checksum (IPv6)";
  EXPECT_TRUE(std::equal(p2.begin(), p2.end(), b.begin() + 48));
  std::remove(path.c_str());
}

// TCP stream bytes become segments with the caller's sequence numbers; a write longer than one IP
// packet holds is split, the sequence numbers following the bytes.
TEST(PcapWriter, WritesTcpSegmentsAReaderCanCheck) {
  const std::string path = TempPath("tcp.pcap");
  auto w = PcapWriter::Open({.path = path, .snaplen = 1 << 20});
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  PcapWriter::Source* src = (*w)->NewSource();
  const auto small = Payload(333, 3);
  const auto big = Payload(100'000, 4);
  src->AppendTcp(V4(0x7F000001, 40000), V4(0x7F000002, 7774), 1, 77, small);
  src->AppendTcp(V4(0x7F000002, 7774), V4(0x7F000001, 40000), 77, 334, big);
  (*w)->Close();
  const PcapFile f = Read(path);
  ASSERT_EQ(f.frames.size(), 3u);  // 333 B, then 100000 B in two segments
  uint32_t next_seq = 77;
  size_t big_at = 0;
  for (size_t i = 0; i < f.frames.size(); ++i) {
    const std::vector<uint8_t>& a = f.frames[i].bytes;
    ASSERT_GE(a.size(), 40u);
    EXPECT_LE(a.size(), 65535u) << "one IP packet";
    EXPECT_EQ(Be16(&a[2]), a.size());
    EXPECT_EQ(a[9], 6) << "TCP";
    EXPECT_EQ(OnesSum(a.data(), 20), 0xFFFF) << "IPv4 header checksum";
    EXPECT_EQ(a[32] >> 4, 5) << "20-byte TCP header";
    EXPECT_EQ(a[33], 0x18) << "PSH, ACK";
    const uint32_t pseudo = OnesSum(&a[12], 8) + 6 + static_cast<uint32_t>(a.size() - 20);
    EXPECT_EQ(OnesSum(&a[20], a.size() - 20, pseudo), 0xFFFF) << "TCP checksum";
    if (i == 0) {
      EXPECT_EQ(Be16(&a[20]), 40000);
      EXPECT_EQ(Be16(&a[22]), 7774);
      EXPECT_EQ(Be32(&a[24]), 1u);
      EXPECT_EQ(Be32(&a[28]), 77u);
      EXPECT_TRUE(std::equal(small.begin(), small.end(), a.begin() + 40));
      continue;
    }
    EXPECT_EQ(Be32(&a[24]), next_seq);
    EXPECT_EQ(Be32(&a[28]), 334u);
    const size_t n = a.size() - 40;
    EXPECT_TRUE(std::equal(a.begin() + 40, a.end(), big.begin() + big_at));
    next_seq += static_cast<uint32_t>(n);
    big_at += n;
  }
  EXPECT_EQ(big_at, big.size());
  std::remove(path.c_str());
}

TEST(PcapWriter, SnaplenCutsTheRecordButKeepsTheRealLength) {
  const std::string path = TempPath("snap.pcap");
  auto w = PcapWriter::Open({.path = path, .snaplen = 64});
  ASSERT_TRUE(w.ok());
  const auto p = Payload(1000, 3);
  (*w)->NewSource()->Append(V4(0x7F000001, 1), V4(0x7F000001, 2), p);
  (*w)->Close();
  const PcapFile f = Read(path);
  ASSERT_EQ(f.frames.size(), 1u);
  EXPECT_EQ(f.frames[0].incl_len, 28u + 64);
  EXPECT_EQ(f.frames[0].orig_len, 28u + 1000);
  EXPECT_EQ(Be16(&f.frames[0].bytes[2]), 28 + 1000) << "IP total length is the real one";
  EXPECT_EQ(Be16(&f.frames[0].bytes[24]), 8 + 1000);
  std::remove(path.c_str());
}

// A full ring drops (and counts) instead of waiting: with the writer thread held off, a 4 KiB
// ring takes three 1000-byte datagrams (1072 bytes each with the record header) and drops the
// rest.
TEST(PcapWriter, AFullRingDropsAndCountsInsteadOfBlocking) {
  const std::string path = TempPath("full.pcap");
  auto w = PcapWriter::Open({.path = path, .ring_bytes = 4096, .drain_period_ms = 60'000});
  ASSERT_TRUE(w.ok());
  PcapWriter::Source* src = (*w)->NewSource();
  const auto p = Payload(1000, 4);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) src->Append(V4(0x7F000001, 1), V4(0x7F000001, 2), p);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1)) << "appends waited";
  PcapStats st = (*w)->stats();
  EXPECT_EQ(st.captured, 3u);
  EXPECT_EQ(st.dropped, 97u);
  (*w)->Close();
  st = (*w)->stats();
  EXPECT_EQ(st.written, 3u);
  EXPECT_EQ(Read(path).frames.size(), 3u);
  // After Close, appends are dropped, not recorded.
  src->Append(V4(0x7F000001, 1), V4(0x7F000001, 2), p);
  EXPECT_EQ((*w)->stats().dropped, 98u);
  std::remove(path.c_str());
}

// Records go around a small ring many times (skip markers at its end) and come out intact and
// in order.
TEST(PcapWriter, RingWrapsAroundAndKeepsOrder) {
  const std::string path = TempPath("wrap.pcap");
  auto w = PcapWriter::Open({.path = path, .ring_bytes = 4096, .drain_period_ms = 1});
  ASSERT_TRUE(w.ok());
  PcapWriter::Source* src = (*w)->NewSource();
  constexpr int kRounds = 40;
  for (int i = 0; i < kRounds; ++i) {
    // Sizes that do not divide the ring, so records meet its end at different offsets.
    const auto p = Payload(300 + 37 * (i % 7), static_cast<uint8_t>(i));
    src->Append(V4(0x7F000001, static_cast<uint16_t>(1000 + i)), V4(0x7F000001, 2), p);
    // Wait until the writer took it (bounded), so nothing is dropped.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while ((*w)->stats().written < static_cast<uint64_t>(i + 1) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  (*w)->Close();
  EXPECT_EQ((*w)->stats().dropped, 0u);
  const PcapFile f = Read(path);
  ASSERT_EQ(f.frames.size(), static_cast<size_t>(kRounds));
  for (int i = 0; i < kRounds; ++i) {
    const auto p = Payload(300 + 37 * (i % 7), static_cast<uint8_t>(i));
    const std::vector<uint8_t>& b = f.frames[i].bytes;
    ASSERT_EQ(b.size(), 28 + p.size()) << i;
    EXPECT_EQ(Be16(&b[20]), 1000 + i);
    EXPECT_TRUE(std::equal(p.begin(), p.end(), b.begin() + 28)) << i;
  }
  std::remove(path.c_str());
}

// Two producing threads, one source each: every datagram is either written or counted dropped.
TEST(PcapWriter, ConcurrentSourcesLoseNothingUncounted) {
  const std::string path = TempPath("threads.pcap");
  auto w = PcapWriter::Open({.path = path, .ring_bytes = 64 << 10});
  ASSERT_TRUE(w.ok());
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    PcapWriter::Source* src = (*w)->NewSource();
    threads.emplace_back([src, t] {
      const auto p = Payload(200, static_cast<uint8_t>(t));
      for (int i = 0; i < kPerThread; ++i) {
        src->Append(V4(0x7F000001, static_cast<uint16_t>(t)), V4(0x7F000001, 9), p);
      }
    });
  }
  for (auto& th : threads) th.join();
  (*w)->Close();
  const PcapStats st = (*w)->stats();
  EXPECT_EQ(st.captured + st.dropped, 2u * kPerThread);
  EXPECT_EQ(st.written, st.captured);
  EXPECT_EQ(Read(path).frames.size(), st.written);
  std::remove(path.c_str());
}

// Sources may be added while the writer thread is busy writing the others' records.
TEST(PcapWriter, SourcesAddedWhileWritingAreDrainedToo) {
  const std::string path = TempPath("late.pcap");
  auto w = PcapWriter::Open({.path = path, .ring_bytes = 1 << 20, .drain_period_ms = 1});
  ASSERT_TRUE(w.ok());
  std::atomic<bool> stop{false};
  PcapWriter::Source* first = (*w)->NewSource();
  std::thread producer([&] {
    const auto p = Payload(1000, 1);
    while (!stop.load()) first->Append(V4(0x7F000001, 1), V4(0x7F000001, 2), p);
  });
  std::vector<PcapWriter::Source*> late;
  for (int i = 0; i < 200; ++i) {
    late.push_back((*w)->NewSource());
    late.back()->Append(V4(0x7F000001, 3), V4(0x7F000001, 4), Payload(64, 2));
  }
  stop.store(true);
  producer.join();
  (*w)->Close();
  const PcapStats st = (*w)->stats();
  EXPECT_EQ(st.written, st.captured);
  size_t late_records = 0;
  for (const Frame& f : Read(path).frames) late_records += Be16(&f.bytes[20]) == 3;
  EXPECT_EQ(late_records, 200u);
  std::remove(path.c_str());
}

TEST(PcapWriter, OpenFailsOnAnUnwritablePath) {
  auto w = PcapWriter::Open({.path = "/nonexistent-dir/x.pcap"});
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("/nonexistent-dir/x.pcap"), std::string::npos);
}

}  // namespace
}  // namespace opensrd

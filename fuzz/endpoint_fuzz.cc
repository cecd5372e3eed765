// Feeds arbitrary datagrams into a live connection between two endpoints. Many inputs are
// patched to carry the connection's real context ids and incarnations and a valid CRC, so the
// fuzzer reaches the context's data, ack, nack, probe and reset handling, not just the parser.
// The property: whatever arrives, nothing crashes, nothing reads or writes out of bounds
// (ASan/UBSan), and the endpoints keep running.
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "opensrd/transport.h"
#include "transport/wire.h"

using namespace opensrd;

namespace {
const NetAddr kA{0x7F000001, 5000};
const NetAddr kB{0x7F000001, 6000};
constexpr size_t kRecvLen = 4096;
constexpr int kRecvBuffers = 8;
// PollTransmit needs room for max_payload + the DATA header; the default max_payload is used.
constexpr size_t kTransmitLen = EndpointConfig{}.max_payload + wire::kDataHeaderLen + wire::kCrcLen;

void Put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// Every buffer the endpoints see is its own heap allocation of exactly its size, so ASan reports
// a read or write even one byte past it instead of landing silently in a neighbouring buffer.
struct Exact {
  explicit Exact(size_t n) : bytes(new uint8_t[n]), size(n) {}
  std::span<uint8_t> span() { return {bytes.get(), size}; }
  std::unique_ptr<uint8_t[]> bytes;
  size_t size;
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Identities and secrets from seeds, not getrandom: an input must replay exactly.
  Endpoint a(EndpointConfig{
      .node_id = 1, .seed = 1, .identity_seed = 11, .static_key_seed = 12, .window_packets = 256});
  Endpoint b(EndpointConfig{
      .node_id = 2, .seed = 2, .identity_seed = 21, .static_key_seed = 22, .window_packets = 256});
  CqId cqa = a.CreateCompletionQueue(), cqb = b.CreateCompletionQueue();
  SqId sq = a.CreateSendQueue({.cq = cqa, .in_order = (size & 1) != 0}).value();
  PeerId peer = a.AddPeer({{0, kB}, {1, kB}}, 0).value();
  // Receive buffers are reposted by tag, so each keeps its own allocation for the whole run.
  std::vector<Exact> rbufs;
  for (int i = 0; i < kRecvBuffers; ++i) {
    rbufs.emplace_back(kRecvLen);
    std::memset(rbufs.back().bytes.get(), 0, kRecvLen);
    (void)b.PostRecv(cqb, rbufs.back().bytes.get(), kRecvLen, i);
  }
  Nanos now = 0;
  // Moves every datagram `from` has to send into `to`. Each is built in a fresh transmit buffer
  // and handed over as a fresh allocation of exactly its length.
  auto deliver = [&](Endpoint& from, Endpoint& to, const NetAddr& from_addr) {
    for (;;) {
      Exact tx(kTransmitLen);
      Transmit t;
      if (!from.PollTransmit(now, tx.span(), t)) return;
      Exact dgram(t.len);
      std::memcpy(dgram.bytes.get(), tx.bytes.get(), t.len);
      to.HandleDatagram(now, &from == &a ? t.local_socket : 0, from_addr, dgram.span());
    }
  };
  auto pump = [&](int rounds) {
    for (int r = 0; r < rounds; ++r) {
      now += 7'000;  // 7 us per round (the core's clock is in nanoseconds)
      a.HandleTimeout(now);
      b.HandleTimeout(now);
      deliver(a, b, kA);
      deliver(b, a, kB);
      Completion c[8];
      while (a.PollCompletions(cqa, c) > 0) {
      }
      size_t n;
      while ((n = b.PollCompletions(cqb, c)) > 0) {
        for (size_t k = 0; k < n; ++k) {
          if (c[k].tag < rbufs.size()) {
            (void)b.PostRecv(cqb, rbufs[c[k].tag].bytes.get(), kRecvLen, c[k].tag);
          }
        }
      }
    }
  };
  // Send payloads stay allocated until the endpoints are gone: a send may still be read for a
  // retransmission until it completes.
  std::vector<Exact> payloads;
  for (int i = 0; i < 3; ++i) {
    payloads.emplace_back(1000u + 3000u * i);
    std::memset(payloads.back().bytes.get(), 7, payloads.back().size);
    Sge sge{payloads.back().bytes.get(), payloads.back().size};
    (void)a.PostSend(sq, peer, {&sge, 1}, i, now);
  }
  pump(3);

  // Input: records of [flags][len][bytes...]. flags bit0: target A (else B); bit1: patch in
  // the live ids and incarnations; bit2: seal with a valid CRC; bits 4-7: pump rounds after.
  size_t pos = 0;
  while (pos + 2 <= size) {
    const uint8_t flags = data[pos];
    const size_t len = data[pos + 1];
    pos += 2;
    const size_t take = len < size - pos ? len : size - pos;
    const bool seal = (flags & 4) != 0;
    Exact dgram(take + (seal ? wire::kCrcLen : 0));
    std::memcpy(dgram.bytes.get(), data + pos, take);
    pos += take;
    Endpoint& to = (flags & 1) ? a : b;
    Endpoint& from = (flags & 1) ? b : a;
    uint8_t* d = dgram.bytes.get();
    if ((flags & 2) && take >= wire::kCommonLen) {
      d[0] = 0x53;
      d[1] = 0x44;
      d[2] = wire::kVersion;
      d[6] = d[7] = 0;
      Put32(&d[8], 1);  // context ids are 1 on both sides
      Put32(&d[12], 1);
      Put32(&d[16], from.incarnation());
      Put32(&d[20], to.incarnation());
    }
    if (seal) wire::SealDatagram(dgram.span(), take);
    to.HandleDatagram(now, 0, (flags & 1) ? kB : kA, dgram.span());
    pump(flags >> 4);
  }
  pump(20);
  return 0;
}

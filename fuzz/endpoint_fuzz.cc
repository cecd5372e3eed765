// Feeds arbitrary datagrams into a live connection between two endpoints. Many inputs are
// patched to carry the connection's real context ids and incarnations and a valid CRC, so the
// fuzzer reaches the context's data, ack, nack, probe and reset handling, not just the parser.
// The property: whatever arrives, nothing crashes, nothing reads or writes out of bounds
// (ASan/UBSan), and the endpoints keep running.
#include <cstdint>
#include <cstring>
#include <vector>

#include "opensrd/transport.h"
#include "transport/wire.h"

using namespace opensrd;

namespace {
const NetAddr kA{0x7F000001, 5000};
const NetAddr kB{0x7F000001, 6000};

void Put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Endpoint a(EndpointConfig{.node_id = 1, .seed = 1, .window_packets = 256});
  Endpoint b(EndpointConfig{.node_id = 2, .seed = 2, .window_packets = 256});
  CqId cqa = a.CreateCompletionQueue(), cqb = b.CreateCompletionQueue();
  SqId sq = a.CreateSendQueue({.cq = cqa, .in_order = (size & 1) != 0}).value();
  PeerId peer = a.AddPeer({{0, kB}, {1, kB}}, 0).value();
  std::vector<uint8_t> rbuf(8 * 4096), msg(20000, 7), buf(wire::kMaxDatagram);
  for (int i = 0; i < 8; ++i) (void)b.PostRecv(cqb, rbuf.data() + i * 4096, 4096, i);
  Micros now = 0;
  auto pump = [&](int rounds) {
    for (int r = 0; r < rounds; ++r) {
      now += 7;
      a.HandleTimeout(now);
      b.HandleTimeout(now);
      Transmit t;
      while (a.PollTransmit(now, buf, t))
        b.HandleDatagram(now, t.local_socket, kA, {buf.data(), t.len});
      while (b.PollTransmit(now, buf, t)) a.HandleDatagram(now, 0, kB, {buf.data(), t.len});
      Completion c[8];
      while (a.PollCompletions(cqa, c) > 0) {
      }
      size_t n;
      while ((n = b.PollCompletions(cqb, c)) > 0) {
        for (size_t k = 0; k < n; ++k) (void)b.PostRecv(cqb, c[k].buffer, 4096, c[k].tag);
      }
    }
  };
  for (int i = 0; i < 3; ++i) {
    Sge sge{msg.data(), 1000u + 3000u * i};
    (void)a.PostSend(sq, peer, {&sge, 1}, i, now);
  }
  pump(3);

  // Input: records of [flags][len][bytes...]. flags bit0: target A (else B); bit1: patch in
  // the live ids and incarnations; bit2: seal with a valid CRC; bits 4-7: pump rounds after.
  size_t pos = 0;
  std::vector<uint8_t> dgram;
  while (pos + 2 <= size) {
    const uint8_t flags = data[pos];
    const size_t len = data[pos + 1];
    pos += 2;
    const size_t take = len < size - pos ? len : size - pos;
    dgram.assign(data + pos, data + pos + take);
    pos += take;
    Endpoint& to = (flags & 1) ? a : b;
    Endpoint& from = (flags & 1) ? b : a;
    if ((flags & 2) && dgram.size() >= wire::kCommonLen) {
      dgram[0] = 0x53;
      dgram[1] = 0x44;
      dgram[2] = wire::kVersion;
      dgram[6] = dgram[7] = 0;
      Put32(&dgram[8], 1);  // context ids are 1 on both sides
      Put32(&dgram[12], 1);
      Put32(&dgram[16], from.incarnation());
      Put32(&dgram[20], to.incarnation());
    }
    if (flags & 4) {
      dgram.resize(dgram.size() + wire::kCrcLen);
      wire::SealDatagram(dgram, dgram.size() - wire::kCrcLen);
    }
    to.HandleDatagram(now, 0, (flags & 1) ? kB : kA, dgram);
    pump(flags >> 4);
  }
  pump(20);
  return 0;
}

// The connection manager's parsers and state machine on arbitrary bytes (a peer's QP1 MADs are
// untrusted). Byte 0 picks the harness:
//   0: DecodeGsiPacket; 1: DecodeMad; 2: DecodeCmaHeader (each: whatever parses encodes to
//      bytes that parse again to the same encoding);
//   3: a CmAgent (listening, and with one connection of its own started) fed 257-byte records
//      [control][256-byte MAD]: control bit 0 advances the clock past the resend time, bit 1
//      accepts (else rejects) a connection request, bit 2 disconnects an established one, bit 3
//      makes the MAD come from another address. Everything it sends must encode and parse.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "rdma/ib_cm.h"
#include "rdma/ib_cm_agent.h"

using namespace opensrd::rdma::cm;

namespace {

void Check(const Message& m) {
  auto mad = EncodeMad(m);
  auto again = DecodeMad(mad);
  if (!again.ok() || EncodeMad(*again) != mad) std::abort();
}

void RunAgent(std::span<const uint8_t> in) {
  CmAgent::Config c;
  c.local_ip = 0x0A000001;
  c.resend_us = 1000;
  c.max_resends = 2;
  CmAgent agent(c);
  agent.Listen(ServiceIdForTcpPort(7174));
  QpOffer offer;
  offer.qpn = 0x123;
  offer.recv_psn = 0x456;
  CmaHeader cma{1234, 0x0A000001, 0x0A000002};
  agent.Connect(0x0A000002, ServiceIdForTcpPort(7174), offer, &cma, 0);
  uint64_t now = 0;
  while (in.size() >= 1 + kMadLen) {
    const uint8_t ctl = in[0];
    if (ctl & 1) {
      now += 1500;
      agent.OnTimer(now);
    }
    opensrd::Result<Message> m = DecodeMad(in.subspan(1, kMadLen));
    if (m.ok()) agent.OnMessage((ctl & 8) ? 0x0A000003 : 0x0A000002, *m, now);
    for (const Event& e : agent.TakeEvents()) {
      if (e.kind == EventKind::kConnectRequest) {
        if (ctl & 2) {
          (void)agent.Accept(e.id, offer, now);
        } else {
          (void)agent.Reject(e.id, kRejConsumer, now);
        }
      } else if (e.kind == EventKind::kEstablished && (ctl & 4)) {
        (void)agent.Disconnect(e.id, now);
      }
    }
    for (const Outgoing& o : agent.TakeOutgoing()) Check(o.message);
    in = in.subspan(1 + kMadLen);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::span<const uint8_t> in(data + 1, size - 1);
  switch (data[0] & 3) {
    case 0: {
      auto m = DecodeGsiPacket(in);
      if (m.ok()) {
        Check(*m);
        if (!DecodeGsiPacket(EncodeGsiPacket(*m, 7)).ok()) std::abort();
      }
      break;
    }
    case 1: {
      auto m = DecodeMad(in);
      if (m.ok()) Check(*m);
      break;
    }
    case 2: {
      auto h = DecodeCmaHeader(in);
      if (h.ok()) {
        uint8_t b[kCmaHeaderLen];
        EncodeCmaHeader(*h, b);
        auto again = DecodeCmaHeader(b);
        if (!again.ok() || again->src_ip != h->src_ip || again->dst_ip != h->dst_ip ||
            again->src_port != h->src_port) {
          std::abort();
        }
      }
      break;
    }
    default:
      RunAgent(in);
  }
  return 0;
}

// Feeds arbitrary bytes to the iWARP receive path: the MPA stream receiver and the DDP/RDMAP
// decoder. The first byte picks the shape and the chunking:
//   bits 0-1 == 0: a TCP stream that must open with an MPA request, then FPDUs;
//   bits 0-1 == 1: the same, opening with a reply;
//   bits 0-1 >= 2: a ULPDU the harness frames into an FPDU with a correct CRC32C, so the
//                  fuzzer reaches the DDP/RDMAP tables past the CRC.
// Bits 2-7 set the chunk size the stream is fed in (1..64 bytes). Checks beyond "no crash":
// every ULPDU that decodes re-encodes to a ULPDU that decodes to the same command, and a
// framed ULPDU comes back out of the receiver byte for byte.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "rdma/iwarp.h"
#include "rdma/mpa.h"
#include "rdma/protocol_index.h"

using namespace opensrd;
using namespace opensrd::rdma;

namespace {

void CheckUlpdu(std::span<const uint8_t> u) {
  Result<RdmaCommand> c = iwarp::DecodeUlpdu(u);
  if (!c.ok()) return;
  Result<std::vector<uint8_t>> again = iwarp::EncodeUlpdu(*c);
  if (!again.ok()) std::abort();
  Result<RdmaCommand> d = iwarp::DecodeUlpdu(*again);
  if (!d.ok() || d->opcode != c->opcode || d->flags != c->flags || d->rkey != c->rkey ||
      d->va != c->va || d->msn != c->msn || d->message_offset != c->message_offset ||
      d->payload.size() != c->payload.size()) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] & 3;
  const size_t chunk = 1 + (data[0] >> 2);
  std::span<const uint8_t> in(data + 1, size - 1);
  (void)ClassifyPacket({Carrier::kTcp, 0, false}, in);

  std::vector<uint8_t> stream;
  mpa::MpaReceiver::Config cfg;
  if (mode >= 2) {
    if (in.empty() || in.size() > 0xFFFF) return 0;
    Result<std::vector<uint8_t>> f = mpa::EncodeFpdu(in);
    if (!f.ok()) std::abort();
    stream = *f;
  } else {
    stream.assign(in.begin(), in.end());
    cfg.expect = mode == 0 ? mpa::MpaReceiver::Expect::kRequest : mpa::MpaReceiver::Expect::kReply;
  }
  mpa::MpaReceiver rx(cfg);
  size_t ulpdus = 0;
  for (size_t off = 0; off < stream.size(); off += chunk) {
    size_t n = std::min(chunk, stream.size() - off);
    rx.Feed(std::span(stream).subspan(off, n));
    for (;;) {
      Result<mpa::MpaReceiver::Event> ev = rx.Next();
      if (!ev.ok()) {
        if (mode >= 2 && in.size() >= mpa::kMinUlpdu) std::abort();  // a framed ULPDU is valid
        return 0;
      }
      if (ev->kind == mpa::MpaReceiver::Event::Kind::kNone) break;
      if (ev->kind == mpa::MpaReceiver::Event::Kind::kStartFrame) {
        // A decoded start frame re-encodes to a frame that decodes the same.
        Result<std::vector<uint8_t>> again = mpa::EncodeStartFrame(ev->start);
        if (!again.ok()) std::abort();
        Result<mpa::StartFrame> d = mpa::DecodeStartFrame(*again, ev->start.reply);
        if (!d.ok() || d->flags != ev->start.flags || d->revision != ev->start.revision ||
            d->private_data != ev->start.private_data ||
            d->enhanced.has_value() != ev->start.enhanced.has_value()) {
          std::abort();
        }
        rx.StartFpdus((ev->start.flags & mpa::kFlagCrc) != 0);
        continue;
      }
      ++ulpdus;
      if (mode >= 2 && (ev->ulpdu.size() != in.size() ||
                        std::memcmp(ev->ulpdu.data(), in.data(), in.size()) != 0)) {
        std::abort();
      }
      CheckUlpdu(ev->ulpdu);
    }
  }
  if (mode >= 2 && in.size() >= mpa::kMinUlpdu && ulpdus != 1) std::abort();
  return 0;
}

// Feeds arbitrary bytes to the packet parser. Checks beyond "no crash": whatever parses must
// re-encode to the identical datagram, so the parser accepts nothing the encoder cannot say.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/crc32c.h"
#include "transport/wire.h"

using namespace opensrd::wire;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Half the inputs get a valid CRC appended so the fuzzer explores past the checksum.
  std::vector<uint8_t> buf(data, data + size);
  if (size > 0 && (data[0] & 1) && size + kCrcLen <= kMaxDatagram) {
    buf.resize(size + kCrcLen);
    SealDatagram(buf, size);
  }
  Packet p;
  if (Parse(buf, p) != ParseError::kNone) return 0;
  std::vector<uint8_t> out(kMaxDatagram);
  size_t n = 0;
  switch (p.common.type) {
    case Type::kData:
      n = EncodeData(p.common, p.data, p.payload, out,
                     (p.common.flags & kFlagAck) ? &p.ack : nullptr);
      break;
    case Type::kAck:
      n = EncodeAck(p.common, p.ack, out);
      break;
    case Type::kHello:
    case Type::kHelloAck:
      n = EncodeHello(p.common, p.hello, out);
      break;
    case Type::kNack:
      n = EncodeNack(p.common, p.nack, out);
      break;
    case Type::kProbe:
      n = EncodeBare(p.common, out);
      break;
    case Type::kReset:
      n = EncodeReset(p.common, p.reset, out);
      break;
    case Type::kRetry:
      n = EncodeRetry(p.common, p.retry, out);
      break;
    case Type::kPathChallenge:
    case Type::kPathResponse:
      n = EncodePath(p.common, p.path, out);
      break;
  }
  if (n != buf.size() || std::memcmp(out.data(), buf.data(), n) != 0) std::abort();
  return 0;
}

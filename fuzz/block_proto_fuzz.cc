// Feeds arbitrary bytes to the block protocol's parsers (what a bridge or an adapter receives
// from the network). Beyond "no crash": whatever parses re-encodes to the identical message,
// so the parsers accept nothing the encoders cannot say.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "block/protocol.h"

using namespace opensrd::block::proto;

namespace {

void Same(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (a.size() != b.size() || std::memcmp(a.data(), b.data(), a.size()) != 0) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> msg(data, size);
  opensrd::Result<Type> t = PeekType(msg);
  if (!t.ok()) return 0;
  std::vector<uint8_t> out(size + kMaxControlMessage);
  std::span<const uint8_t> payload;
  switch (*t) {
    case Type::kIo:
      if (auto h = ParseIo(msg, &payload); h.ok()) {
        EncodeIo(*h, std::span<uint8_t, kIoHeaderLen>(out.data(), kIoHeaderLen));
        // Reserved bytes 40..47 are ignored on receipt: compare the rest.
        Same(msg.first(40), std::span<const uint8_t>(out.data(), 40));
        if (payload.size() != size - kIoHeaderLen) std::abort();
      }
      break;
    case Type::kIoReply:
      if (auto r = ParseIoReply(msg, &payload); r.ok()) {
        EncodeIoReply(*r, std::span<uint8_t, kIoReplyLen>(out.data(), kIoReplyLen));
        Same(msg.first(17), std::span<const uint8_t>(out.data(), 17));
        if (payload.size() != r->length) std::abort();
      }
      break;
    case Type::kAttach:
      if (auto a = ParseAttach(msg); a.ok()) {
        auto n = EncodeAttach(*a, out);
        if (!n.ok() || *n != size) std::abort();
        Same(msg.first(24), std::span<const uint8_t>(out.data(), 24));
        Same(msg.subspan(kAttachFixedLen),
             std::span<const uint8_t>(out).subspan(kAttachFixedLen, size - kAttachFixedLen));
      }
      break;
    case Type::kAttachReply:
      if (auto r = ParseAttachReply(msg); r.ok()) {
        auto n = EncodeAttachReply(*r, out);
        if (!n.ok() || *n != size) std::abort();
        // Flag bits beyond the known six are dropped: compare all but that byte.
        Same(msg.first(17), std::span<const uint8_t>(out.data(), 17));
        Same(msg.subspan(18), std::span<const uint8_t>(out).subspan(18, size - 18));
      }
      break;
    case Type::kResize:
      if (auto r = ParseResize(msg); r.ok()) {
        auto n = EncodeResize(*r, out);
        if (!n.ok() || *n != size) std::abort();
        Same(msg.first(24), std::span<const uint8_t>(out.data(), 24));
      }
      break;
    case Type::kResizeReply:
      if (auto r = ParseResizeReply(msg); r.ok()) {
        auto n = EncodeResizeReply(*r, out);
        if (!n.ok() || *n != size) std::abort();
        Same(msg.first(6), std::span<const uint8_t>(out.data(), 6));
      }
      break;
    case Type::kInfo:
      if (auto i = ParseInfo(msg); i.ok()) {
        EncodeInfo(*i, std::span<uint8_t, kInfoLen>(out.data(), kInfoLen));
        Same(msg.first(16), std::span<const uint8_t>(out.data(), 16));
      }
      break;
  }
  return 0;
}

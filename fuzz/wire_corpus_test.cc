// The committed wire corpus (fuzz/corpus/wire, made by fuzz/make_corpus.sh) holds a parsing
// seed of every packet kind in docs/WIRE.md, so fuzzing starts from each of them.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "transport/wire.h"

namespace opensrd::wire {
namespace {

// The kind a datagram shows: its type, and "data+ack" for DATA carrying an ack block.
std::string Kind(const Packet& p) {
  switch (p.common.type) {
    case Type::kData:
      return (p.common.flags & kFlagAck) ? "data+ack" : "data";
    case Type::kAck:
      return "ack";
    case Type::kHello:
      return "hello";
    case Type::kHelloAck:
      return "hello_ack";
    case Type::kProbe:
      return "probe";
    case Type::kNack:
      return "nack";
    case Type::kReset:
      return "reset";
    case Type::kRetry:
      return "retry";
    case Type::kPathChallenge:
      return "path_challenge";
    case Type::kPathResponse:
      return "path_response";
  }
  return "?";
}

TEST(WireCorpus, HoldsEveryPacketKind) {
  std::set<std::string> kinds;
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(OPENSRD_WIRE_CORPUS)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::vector<uint8_t> buf((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
    ++files;
    // As wire_fuzz.cc does: an input with an odd first byte (every seed starts with 0x53) is
    // sealed with a valid CRC; seeds are stored without theirs.
    if (buf.empty() || (buf[0] & 1) == 0) continue;
    const size_t body = buf.size();
    buf.resize(body + kCrcLen);
    SealDatagram(buf, body);
    Packet p;
    if (Parse(buf, p) == ParseError::kNone) kinds.insert(Kind(p));
  }
  EXPECT_GT(files, 0);
  for (const char* k : {"data", "data+ack", "ack", "hello", "hello_ack", "probe", "nack", "reset",
                        "retry", "path_challenge", "path_response"}) {
    EXPECT_TRUE(kinds.count(k)) << "no parsing " << k << " seed in " << OPENSRD_WIRE_CORPUS;
  }
}

}  // namespace
}  // namespace opensrd::wire

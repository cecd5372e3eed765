// NbdSession driven byte for byte from the client's side: each option, each command, each
// rejection path, ordering, limits.
#include "block/nbd/nbd_session.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "block/memory_device.h"
#include "block/nbd/nbd_test_client.h"

namespace opensrd::block::nbd {
namespace {

using namespace client;  // NOLINT

VolumeInfo TestVolume() {
  VolumeInfo v;
  v.size_bytes = 1 << 20;
  v.block_size = 512;
  v.max_transfer = 64 * 1024;
  v.can_fast_zero = true;
  return v;
}

class Harness {
 public:
  explicit Harness(VolumeInfo info = TestVolume(), NbdExportConfig config = Config())
      : dev(info), s(dev, std::move(config)) {
    Drain();
    auto greeting = r.Take(kGreetingLen);
    EXPECT_TRUE(greeting.has_value());
    if (greeting) {
      EXPECT_EQ(Get64(greeting->data()), kNbdMagic);
      EXPECT_EQ(Get64(greeting->data() + 8), kOptMagic);
      EXPECT_EQ(Get16(greeting->data() + 16), kFlagFixedNewstyle | kFlagNoZeroes);
    }
  }
  static NbdExportConfig Config() {
    NbdExportConfig c;
    c.name = "vol";
    c.description = "test volume";
    return c;
  }

  // Feeds everything (expects it all to be consumed), runs the device unless held.
  void Feed(const Bytes& b) {
    const size_t used = s.Feed(b.data(), b.size());
    EXPECT_EQ(used, b.size());
    Pump();
  }
  void Pump() {
    std::vector<NbdSession::Submission> subs;
    s.TakeSubmissions(&subs);
    for (const auto& sub : subs) {
      seen.push_back(sub.request);
      if (hold) {
        held.push_back(sub);
      } else {
        dev.Submit(sub.request, [&, id = sub.id](Status st) { s.Complete(id, st); });
      }
    }
    Drain();
  }
  void CompleteHeld(size_t i, Status st = Status::Ok()) {
    const auto sub = held[i];
    if (st.ok()) {
      dev.Submit(sub.request, [&, id = sub.id](Status x) { s.Complete(id, x); });
    } else {
      s.Complete(sub.id, st);
    }
    Drain();
  }
  void Drain() {
    iovec iov[16];
    while (s.HasOutput()) {
      const size_t k = s.GatherOutput(iov, 16);
      size_t n = 0;
      for (size_t i = 0; i < k; ++i) {
        r.Add(static_cast<const uint8_t*>(iov[i].iov_base), iov[i].iov_len);
        n += iov[i].iov_len;
      }
      s.ConsumeOutput(n);
    }
  }
  OptionReplyMsg Opt() {
    auto m = r.NextOption();
    EXPECT_TRUE(m.has_value());
    return m.value_or(OptionReplyMsg{});
  }
  ReplyMsg Reply(uint32_t simple_read_len = 0) {
    auto m = r.NextReply(simple_read_len);
    EXPECT_TRUE(m.has_value());
    return m.value_or(ReplyMsg{});
  }
  // Handshake through NBD_OPT_GO; optionally with structured replies and base:allocation.
  void Go(bool structured = true, bool meta = true) {
    Feed(ClientFlags());
    if (structured) {
      Feed(OptionRequest(kOptStructuredReply));
      EXPECT_EQ(Opt().type, kRepAck);
    }
    if (meta) {
      Feed(OptionRequest(kOptSetMetaContext, MetaData("vol", {"base:allocation"})));
      EXPECT_EQ(Opt().type, kRepMetaContext);
      EXPECT_EQ(Opt().type, kRepAck);
    }
    Feed(OptionRequest(kOptGo, InfoData("vol", {kInfoBlockSize})));
    for (;;) {
      const auto m = Opt();
      if (m.type != kRepInfo) {
        EXPECT_EQ(m.type, kRepAck);
        break;
      }
    }
    EXPECT_TRUE(s.in_transmission());
  }
  uint32_t ErrorOf(uint64_t handle) {
    const auto m = Reply();
    EXPECT_EQ(m.handle, handle);
    EXPECT_TRUE(m.done());
    return m.error;
  }
  Bytes Pattern(size_t n, uint8_t seed) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
    return b;
  }

  MemoryDevice dev;
  NbdSession s;
  ReplyReader r;
  bool hold = false;
  std::vector<NbdSession::Submission> held;
  std::vector<IoRequest> seen;
};

// ---- Handshake ----

TEST(NbdHandshake, UnknownClientFlagsClose) {
  Harness h;
  h.Feed(ClientFlags(kClientFixedNewstyle | 0x80));
  EXPECT_TRUE(h.s.closing());
  EXPECT_TRUE(h.s.Finished());
}

TEST(NbdHandshake, BadOptionMagicCloses) {
  Harness h;
  Bytes opt = OptionRequest(kOptList);
  opt[0] ^= 1;
  h.Feed(Cat({ClientFlags(), opt}));
  EXPECT_TRUE(h.s.closing());
}

TEST(NbdHandshake, UnknownOptionAndStartTlsAreUnsupported) {
  Harness h;
  h.Feed(Cat({ClientFlags(), OptionRequest(99, Bytes(10, 1)), OptionRequest(kOptStartTls)}));
  auto m = h.Opt();
  EXPECT_EQ(m.option, 99u);
  EXPECT_EQ(m.type, kRepErrUnsup);
  EXPECT_EQ(h.Opt().type, kRepErrUnsup);
  EXPECT_FALSE(h.s.closing());
}

TEST(NbdHandshake, OversizeOptionIsSkippedAndRefused) {
  Harness h;
  Bytes big = OptionRequest(kOptList, Bytes(NbdSession::kMaxOptionData + 1, 0x5a));
  h.Feed(Cat({ClientFlags(), big, OptionRequest(kOptList)}));
  EXPECT_EQ(h.Opt().type, kRepErrTooBig);
  EXPECT_EQ(h.Opt().type, kRepServer);  // the stream stayed in step
  EXPECT_EQ(h.Opt().type, kRepAck);
}

TEST(NbdHandshake, OversizeExportNameCloses) {
  Harness h;
  const Bytes b =
      Cat({ClientFlags(), OptionRequest(kOptExportName, Bytes(NbdSession::kMaxOptionData + 1))});
  EXPECT_LT(h.s.Feed(b.data(), b.size()), b.size());  // the name is never read
  EXPECT_TRUE(h.s.closing());
}

TEST(NbdHandshake, ListNamesTheExport) {
  Harness h;
  h.Feed(Cat({ClientFlags(), OptionRequest(kOptList)}));
  auto m = h.Opt();
  ASSERT_EQ(m.type, kRepServer);
  ASSERT_GE(m.data.size(), 4u);
  EXPECT_EQ(Get32(m.data.data()), 3u);
  EXPECT_EQ(std::string(m.data.begin() + 4, m.data.begin() + 7), "vol");
  EXPECT_EQ(std::string(m.data.begin() + 7, m.data.end()), "test volume");
  EXPECT_EQ(h.Opt().type, kRepAck);
}

TEST(NbdHandshake, ClientThatNeverReadsStopsBeingRead) {
  Harness h;
  h.Feed(ClientFlags());
  Bytes many;
  for (int i = 0; i < 40000; ++i) {
    const Bytes one = OptionRequest(kOptList);
    many.insert(many.end(), one.begin(), one.end());
  }
  // Nothing is drained: the replies pile up to the cap, then input is left unread.
  const size_t used = h.s.Feed(many.data(), many.size());
  EXPECT_LT(used, many.size());
  EXPECT_LE(h.s.output_bytes(), NbdSession::kMaxHandshakeOutput + 1024);
  h.Drain();
  EXPECT_GT(h.s.Feed(many.data() + used, many.size() - used), 0u);  // room again
}

TEST(NbdHandshake, ListWithDataIsInvalid) {
  Harness h;
  h.Feed(Cat({ClientFlags(), OptionRequest(kOptList, Bytes{1})}));
  EXPECT_EQ(h.Opt().type, kRepErrInvalid);
}

TEST(NbdHandshake, AbortIsAcknowledgedAndCloses) {
  Harness h;
  h.Feed(Cat({ClientFlags(), OptionRequest(kOptAbort)}));
  EXPECT_EQ(h.Opt().type, kRepAck);
  EXPECT_TRUE(h.s.Finished());
}

TEST(NbdHandshake, StructuredReplyWithDataIsInvalid) {
  Harness h;
  h.Feed(Cat({ClientFlags(), OptionRequest(kOptStructuredReply, Bytes{0})}));
  EXPECT_EQ(h.Opt().type, kRepErrInvalid);
  EXPECT_FALSE(h.s.structured_replies());
}

TEST(NbdHandshake, InfoReportsExportAndBlockSizesAndStaysInHandshake) {
  Harness h;
  h.Feed(Cat({ClientFlags(), OptionRequest(kOptInfo, InfoData("", {kInfoBlockSize, kInfoName,
                                                                   kInfoDescription}))}));
  bool export_seen = false, sizes_seen = false, name_seen = false, desc_seen = false;
  for (;;) {
    auto m = h.Opt();
    if (m.type == kRepAck) break;
    ASSERT_EQ(m.type, kRepInfo);
    const uint16_t type = Get16(m.data.data());
    if (type == kInfoExport) {
      ASSERT_EQ(m.data.size(), 12u);
      EXPECT_EQ(Get64(m.data.data() + 2), 1u << 20);
      const uint16_t f = Get16(m.data.data() + 10);
      EXPECT_TRUE(f & kFlagHasFlags);
      EXPECT_TRUE(f & kFlagSendFlush);
      EXPECT_TRUE(f & kFlagSendFua);
      EXPECT_TRUE(f & kFlagSendTrim);
      EXPECT_TRUE(f & kFlagSendWriteZeroes);
      EXPECT_TRUE(f & kFlagSendFastZero);
      EXPECT_TRUE(f & kFlagCanMultiConn);
      EXPECT_TRUE(f & kFlagSendCache);
      EXPECT_FALSE(f & kFlagReadOnly);
      EXPECT_FALSE(f & kFlagSendDf);  // no structured replies negotiated
      export_seen = true;
    } else if (type == kInfoBlockSize) {
      ASSERT_EQ(m.data.size(), 14u);
      EXPECT_EQ(Get32(m.data.data() + 2), 512u);
      EXPECT_EQ(Get32(m.data.data() + 6), 4096u);
      EXPECT_EQ(Get32(m.data.data() + 10), 64u * 1024);
      sizes_seen = true;
    } else if (type == kInfoName) {
      EXPECT_EQ(std::string(m.data.begin() + 2, m.data.end()), "vol");
      name_seen = true;
    } else if (type == kInfoDescription) {
      EXPECT_EQ(std::string(m.data.begin() + 2, m.data.end()), "test volume");
      desc_seen = true;
    }
  }
  EXPECT_TRUE(export_seen && sizes_seen && name_seen && desc_seen);
  EXPECT_FALSE(h.s.in_transmission());
}

TEST(NbdHandshake, InfoUnknownExport) {
  Harness h;
  h.Feed(Cat({ClientFlags(), OptionRequest(kOptInfo, InfoData("nope"))}));
  EXPECT_EQ(h.Opt().type, kRepErrUnknown);
  h.Feed(OptionRequest(kOptGo, InfoData("nope")));
  EXPECT_EQ(h.Opt().type, kRepErrUnknown);
  EXPECT_FALSE(h.s.in_transmission());
}

TEST(NbdHandshake, MalformedInfoIsInvalid) {
  Harness h;
  h.Feed(ClientFlags());
  h.Feed(OptionRequest(kOptGo, Bytes{0, 0, 0}));  // shorter than 6 bytes
  EXPECT_EQ(h.Opt().type, kRepErrInvalid);
  Bytes name_too_long = InfoData("vol");
  name_too_long.at(3) = 100;
  h.Feed(OptionRequest(kOptGo, name_too_long));
  EXPECT_EQ(h.Opt().type, kRepErrInvalid);
  Bytes count_mismatch = InfoData("vol", {kInfoBlockSize});
  count_mismatch.push_back(0);
  h.Feed(OptionRequest(kOptGo, count_mismatch));
  EXPECT_EQ(h.Opt().type, kRepErrInvalid);
  EXPECT_FALSE(h.s.in_transmission());
}

TEST(NbdHandshake, ExportNameRepliesWithZeroesUnlessNoZeroes) {
  for (bool no_zeroes : {false, true}) {
    Harness h;
    h.Feed(ClientFlags(kClientFixedNewstyle | (no_zeroes ? kClientNoZeroes : 0)));
    h.Feed(OptionRequest(kOptExportName, Bytes{'v', 'o', 'l'}));
    auto reply = h.r.Take(10);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(Get64(reply->data()), 1u << 20);
    EXPECT_TRUE(Get16(reply->data() + 8) & kFlagHasFlags);
    EXPECT_EQ(h.r.available(), no_zeroes ? 0u : kExportNameReplyZeroes);
    EXPECT_TRUE(h.s.in_transmission());
  }
}

TEST(NbdHandshake, ExportNameUnknownCloses) {
  Harness h;
  h.Feed(Cat({ClientFlags(), OptionRequest(kOptExportName, Bytes{'x'})}));
  EXPECT_TRUE(h.s.closing());
  EXPECT_FALSE(h.s.in_transmission());
}

TEST(NbdHandshake, MetaContextNeedsStructuredReplies) {
  Harness h;
  h.Feed(Cat(
      {ClientFlags(), OptionRequest(kOptSetMetaContext, MetaData("vol", {"base:allocation"}))}));
  EXPECT_EQ(h.Opt().type, kRepErrInvalid);
}

TEST(NbdHandshake, SetMetaContextSelectsBaseAllocation) {
  Harness h;
  h.Feed(Cat({ClientFlags(), OptionRequest(kOptStructuredReply)}));
  EXPECT_EQ(h.Opt().type, kRepAck);
  h.Feed(OptionRequest(kOptSetMetaContext,
                       MetaData("vol", {"x-other:thing", "base:unknown", "base:allocation"})));
  auto m = h.Opt();
  ASSERT_EQ(m.type, kRepMetaContext);
  EXPECT_EQ(Get32(m.data.data()), NbdSession::kMetaContextAllocation);
  EXPECT_EQ(std::string(m.data.begin() + 4, m.data.end()), "base:allocation");
  EXPECT_EQ(h.Opt().type, kRepAck);
  // "base:" selects nothing in SET; unknown contexts are ignored.
  h.Feed(OptionRequest(kOptSetMetaContext, MetaData("vol", {"base:", "x-y:z"})));
  EXPECT_EQ(h.Opt().type, kRepAck);
}

TEST(NbdHandshake, ListMetaContextWildcards) {
  Harness h;
  h.Feed(Cat({ClientFlags(), OptionRequest(kOptStructuredReply)}));
  h.Opt();
  for (const auto& queries : {std::vector<std::string>{}, std::vector<std::string>{"base:"}}) {
    h.Feed(OptionRequest(kOptListMetaContext, MetaData("", queries)));
    auto m = h.Opt();
    ASSERT_EQ(m.type, kRepMetaContext);
    EXPECT_EQ(Get32(m.data.data()), 0u);
    EXPECT_EQ(h.Opt().type, kRepAck);
  }
}

TEST(NbdHandshake, MalformedMetaContextIsInvalid) {
  Harness h;
  h.Feed(Cat({ClientFlags(), OptionRequest(kOptStructuredReply)}));
  h.Opt();
  Bytes d = MetaData("vol", {"base:allocation"});
  auto set32 = [](Bytes b, size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) b.at(at + i) = static_cast<uint8_t>(v >> (24 - 8 * i));
    return b;
  };
  const Bytes too_many = set32(d, 4 + 3, 1000);        // more queries than bytes
  const Bytes long_query = set32(d, 4 + 3 + 4, 1000);  // a query longer than the option
  Bytes trailing = d;
  trailing.push_back(0);
  Bytes no_colon = MetaData("vol", {"allocation"});
  for (const Bytes& bad : {Bytes{0, 0}, too_many, long_query, trailing, no_colon}) {
    h.Feed(OptionRequest(kOptSetMetaContext, bad));
    EXPECT_EQ(h.Opt().type, kRepErrInvalid);
  }
  h.Feed(OptionRequest(kOptSetMetaContext, MetaData("other", {"base:allocation"})));
  EXPECT_EQ(h.Opt().type, kRepErrUnknown);
}

TEST(NbdHandshake, ByteByByteEqualsBulk) {
  const Bytes script =
      Cat({ClientFlags(), OptionRequest(kOptStructuredReply),
           OptionRequest(kOptSetMetaContext, MetaData("vol", {"base:allocation"})),
           OptionRequest(kOptList), OptionRequest(kOptGo, InfoData("vol", {kInfoBlockSize})),
           Request(kCmdWrite, 1, 4096, 1024, 0, Bytes(1024, 0x42)),
           Request(kCmdRead, 2, 4096, 1024), Request(kCmdFlush, 3, 0, 0)});
  Harness bulk, trickle;
  bulk.Feed(script);
  for (uint8_t b : script) trickle.Feed(Bytes{b});
  auto a = bulk.r.Take(bulk.r.available());
  auto b = trickle.r.Take(trickle.r.available());
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->size(), b->size());
  for (size_t i = 0; i < a->size(); ++i) ASSERT_EQ((*a)[i], (*b)[i]) << "byte " << i;
  EXPECT_GT(a->size(), 100u);
}

// ---- Transmission ----

TEST(NbdTransmission, BadRequestMagicCloses) {
  Harness h;
  h.Go();
  Bytes r = Request(kCmdRead, 1, 0, 512);
  r[3] ^= 1;
  h.Feed(r);
  EXPECT_TRUE(h.s.closing());
}

TEST(NbdTransmission, WriteThenReadSimpleReplies) {
  Harness h;
  h.Go(/*structured=*/false, /*meta=*/false);
  const Bytes data = h.Pattern(8192, 3);
  h.Feed(Request(kCmdWrite, 7, 8192, 8192, 0, data));
  EXPECT_EQ(h.ErrorOf(7), 0u);
  h.Feed(Request(kCmdRead, 8, 8192, 8192));
  auto m = h.Reply(8192);
  EXPECT_FALSE(m.structured);
  EXPECT_EQ(m.handle, 8u);
  EXPECT_EQ(m.error, 0u);
  EXPECT_EQ(m.payload, data);
}

TEST(NbdTransmission, StructuredReadSendsDataAndHoleChunks) {
  Harness h;
  h.Go();
  const Bytes data = h.Pattern(4096, 9);
  h.Feed(Request(kCmdWrite, 1, 8192, 4096, 0, data));
  EXPECT_EQ(h.ErrorOf(1), 0u);
  h.Feed(Request(kCmdRead, 2, 0, 16384));  // hole 0-8K, data 8K-12K, hole 12K-16K
  std::vector<ReplyMsg> chunks;
  do chunks.push_back(h.Reply());
  while (!chunks.back().done());
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].type, kReplyOffsetHole);
  EXPECT_EQ(Get64(chunks[0].payload.data()), 0u);
  EXPECT_EQ(Get32(chunks[0].payload.data() + 8), 8192u);
  EXPECT_EQ(chunks[1].type, kReplyOffsetData);
  EXPECT_EQ(Get64(chunks[1].payload.data()), 8192u);
  EXPECT_EQ(Bytes(chunks[1].payload.begin() + 8, chunks[1].payload.end()), data);
  EXPECT_EQ(chunks[2].type, kReplyOffsetHole);
  EXPECT_EQ(Get64(chunks[2].payload.data()), 12288u);
  for (const auto& c : chunks) EXPECT_EQ(c.handle, 2u);
}

TEST(NbdTransmission, AllocatedZeroesAreSentAsData) {
  Harness h;
  h.Go();
  h.Feed(Request(kCmdWriteZeroes, 1, 0, 4096, kCmdFlagNoHole));  // allocated, reads zero
  EXPECT_EQ(h.ErrorOf(1), 0u);
  h.Feed(Request(kCmdRead, 2, 0, 4096));
  auto m = h.Reply();
  EXPECT_EQ(m.type, kReplyOffsetData);
  EXPECT_TRUE(m.done());
}

TEST(NbdTransmission, DontFragmentSendsOneDataChunk) {
  Harness h;
  h.Go();
  h.Feed(Request(kCmdWrite, 1, 4096, 512, 0, Bytes(512, 1)));
  h.Reply();
  h.Feed(Request(kCmdRead, 2, 0, 16384, kCmdFlagDf));
  auto m = h.Reply();
  EXPECT_EQ(m.type, kReplyOffsetData);
  EXPECT_TRUE(m.done());
  EXPECT_EQ(m.payload.size(), 8u + 16384);
}

TEST(NbdTransmission, DontFragmentNeedsStructuredReplies) {
  Harness h;
  h.Go(false, false);
  h.Feed(Request(kCmdRead, 2, 0, 512, kCmdFlagDf));
  EXPECT_EQ(h.ErrorOf(2), kEinval);
}

TEST(NbdTransmission, RangeAndAlignmentErrors) {
  Harness h;
  h.Go();
  h.Feed(Request(kCmdRead, 1, (1 << 20) - 512, 1024));
  EXPECT_EQ(h.ErrorOf(1), kEinval);
  h.Feed(Request(kCmdRead, 2, 100, 512));
  EXPECT_EQ(h.ErrorOf(2), kEinval);
  h.Feed(Request(kCmdRead, 3, 0, 100));
  EXPECT_EQ(h.ErrorOf(3), kEinval);
  h.Feed(Request(kCmdTrim, 4, 1 << 20, 512));
  EXPECT_EQ(h.ErrorOf(4), kEinval);
  h.Feed(Request(kCmdWriteZeroes, 5, 1 << 20, 512));
  EXPECT_EQ(h.ErrorOf(5), kEnospc);
  h.Feed(Request(kCmdCache, 6, UINT64_MAX - 511, 512));
  EXPECT_EQ(h.ErrorOf(6), kEinval);
  EXPECT_TRUE(h.seen.empty());  // nothing reached the device
}

TEST(NbdTransmission, RefusedWritePayloadIsSkipped) {
  Harness h;
  h.Go();
  // Beyond the end (ENOSPC), misaligned (EINVAL), over the maximum payload (EINVAL): each
  // payload is read past and the next request parses.
  h.Feed(Request(kCmdWrite, 1, 1 << 20, 512, 0, Bytes(512, 0xee)));
  EXPECT_EQ(h.ErrorOf(1), kEnospc);
  h.Feed(Request(kCmdWrite, 2, 1, 512, 0, Bytes(512, 0xee)));
  EXPECT_EQ(h.ErrorOf(2), kEinval);
  h.Feed(Request(kCmdWrite, 3, 0, 128 * 1024, 0, Bytes(128 * 1024, 0xee)));
  EXPECT_EQ(h.ErrorOf(3), kEinval);
  h.Feed(Request(kCmdRead, 4, 0, 512));
  auto m = h.Reply();
  EXPECT_EQ(m.handle, 4u);
  EXPECT_EQ(m.type, kReplyOffsetHole);  // nothing was written
  EXPECT_TRUE(h.seen.size() == 1 && h.seen[0].op == Op::kRead);
}

TEST(NbdTransmission, OversizeReadIsRefused) {
  Harness h;
  h.Go();
  h.Feed(Request(kCmdRead, 1, 0, 128 * 1024));
  EXPECT_EQ(h.ErrorOf(1), kEinval);
}

TEST(NbdTransmission, ReadOnlyRefusesWrites) {
  VolumeInfo v = TestVolume();
  v.read_only = true;
  Harness h(v);
  h.Go();
  h.Feed(Request(kCmdWrite, 1, 0, 512, 0, Bytes(512, 1)));
  EXPECT_EQ(h.ErrorOf(1), kEperm);
  h.Feed(Request(kCmdTrim, 2, 0, 512));
  EXPECT_EQ(h.ErrorOf(2), kEperm);
  h.Feed(Request(kCmdWriteZeroes, 3, 0, 512));
  EXPECT_EQ(h.ErrorOf(3), kEperm);
  h.Feed(Request(kCmdRead, 4, 0, 512));
  EXPECT_EQ(h.Reply().error, 0u);
  EXPECT_TRUE(h.s.transmission_flags() & kFlagReadOnly);
  EXPECT_FALSE(h.s.transmission_flags() & kFlagSendTrim);
}

TEST(NbdTransmission, UnknownCommandAndFlags) {
  Harness h;
  h.Go();
  h.Feed(Request(42, 1, 0, 0));
  EXPECT_EQ(h.ErrorOf(1), kEinval);
  h.Feed(Request(kCmdRead, 2, 0, 512, kCmdFlagNoHole));
  EXPECT_EQ(h.ErrorOf(2), kEinval);
  h.Feed(Request(kCmdWrite, 3, 0, 512, kCmdFlagReqOne, Bytes(512)));
  EXPECT_EQ(h.ErrorOf(3), kEinval);
  h.Feed(Request(kCmdTrim, 4, 0, 512, 0x8000));
  EXPECT_EQ(h.ErrorOf(4), kEinval);
  h.Feed(Request(kCmdFlush, 5, 512, 0));  // FLUSH's offset and length must be zero
  EXPECT_EQ(h.ErrorOf(5), kEinval);
}

TEST(NbdTransmission, ErrorsCarryAMessageInStructuredMode) {
  Harness h;
  h.Go();
  h.Feed(Request(kCmdRead, 1, 1 << 20, 512));
  auto m = h.Reply();
  ASSERT_EQ(m.type, kReplyError);
  ASSERT_GE(m.payload.size(), 6u);
  EXPECT_EQ(Get32(m.payload.data()), kEinval);
  const uint16_t len = Get16(m.payload.data() + 4);
  EXPECT_EQ(m.payload.size(), 6u + len);
  EXPECT_NE(std::string(m.payload.begin() + 6, m.payload.end()).find("beyond"), std::string::npos);
}

TEST(NbdTransmission, FlushFuaTrimWriteZeroesReachTheDevice) {
  Harness h;
  h.Go();
  h.Feed(Request(kCmdWrite, 1, 0, 8192, kCmdFlagFua, Bytes(8192, 7)));
  h.Feed(Request(kCmdFlush, 2, 0, 0));
  h.Feed(Request(kCmdTrim, 3, 0, 4096));
  h.Feed(Request(kCmdWriteZeroes, 4, 4096, 4096, kCmdFlagNoHole | kCmdFlagFua));
  h.Feed(Request(kCmdWriteZeroes, 5, 16384, 4096));
  for (uint64_t i = 1; i <= 5; ++i) EXPECT_EQ(h.ErrorOf(i), 0u);
  ASSERT_EQ(h.seen.size(), 5u);
  EXPECT_EQ(h.seen[0].op, Op::kWrite);
  EXPECT_EQ(h.seen[0].flags, kFua);
  EXPECT_EQ(h.seen[1].op, Op::kFlush);
  EXPECT_EQ(h.seen[2].op, Op::kDiscard);
  EXPECT_EQ(h.seen[3].op, Op::kWriteZeroes);
  EXPECT_EQ(h.seen[3].flags, kFua | kNoUnmap);
  EXPECT_EQ(h.seen[4].flags, 0);
  const auto c = h.dev.counters();
  EXPECT_EQ(c.flushes, 1u);
  EXPECT_EQ(c.fua, 2u);
  EXPECT_EQ(h.dev.allocated_pages(), 1u);  // only the NO_HOLE page kept its allocation
}

TEST(NbdTransmission, FastZero) {
  Harness fast;
  fast.Go();
  fast.Feed(Request(kCmdWriteZeroes, 1, 0, 4096, kCmdFlagFastZero));
  EXPECT_EQ(fast.ErrorOf(1), 0u);
  EXPECT_EQ(fast.seen.at(0).flags, kFastZero);

  VolumeInfo v = TestVolume();
  v.can_fast_zero = false;
  Harness slow(v);
  slow.Go();
  slow.Feed(Request(kCmdWrite, 1, 0, 512, 0, Bytes(512, 9)));
  slow.Reply();
  slow.Feed(Request(kCmdWriteZeroes, 2, 0, 512, kCmdFlagFastZero));
  EXPECT_EQ(slow.ErrorOf(2), kEnotsup);
  EXPECT_EQ(slow.seen.size(), 1u);  // failed fast, without the device, contents unchanged
  EXPECT_TRUE(slow.s.transmission_flags() & kFlagSendFastZero);
}

TEST(NbdTransmission, FastZeroRefusedByTheDeviceIsEnotsup) {
  Harness h;
  h.Go();
  h.hold = true;
  h.Feed(Request(kCmdWriteZeroes, 1, 0, 4096, kCmdFlagFastZero));
  h.CompleteHeld(0, Status(Code::kInvalidArgument, "would be slow"));
  EXPECT_EQ(h.ErrorOf(1), kEnotsup);
}

TEST(NbdTransmission, CacheChecksTheRangeOnly) {
  Harness h;
  h.Go();
  h.Feed(Request(kCmdCache, 1, 0, 65536));
  EXPECT_EQ(h.ErrorOf(1), 0u);
  EXPECT_TRUE(h.seen.empty());
}

TEST(NbdTransmission, BlockStatus) {
  Harness h;
  h.Go();
  h.Feed(Request(kCmdWrite, 1, 4096, 4096, 0, Bytes(4096, 1)));
  h.Reply();
  h.Feed(Request(kCmdBlockStatus, 2, 0, 16384));
  auto m = h.Reply();
  ASSERT_EQ(m.type, kReplyBlockStatus);
  EXPECT_TRUE(m.done());
  ASSERT_EQ(m.payload.size(), 4u + 3 * 8);
  EXPECT_EQ(Get32(m.payload.data()), NbdSession::kMetaContextAllocation);
  const uint8_t* d = m.payload.data() + 4;
  EXPECT_EQ(Get32(d), 4096u);
  EXPECT_EQ(Get32(d + 4), kStateHole | kStateZero);
  EXPECT_EQ(Get32(d + 8), 4096u);
  EXPECT_EQ(Get32(d + 12), 0u);
  EXPECT_EQ(Get32(d + 16), 8192u);
  EXPECT_EQ(Get32(d + 20), kStateHole | kStateZero);

  h.Feed(Request(kCmdBlockStatus, 3, 0, 16384, kCmdFlagReqOne));
  m = h.Reply();
  EXPECT_EQ(m.payload.size(), 4u + 8);
  h.Feed(Request(kCmdBlockStatus, 4, 0, 0));
  EXPECT_EQ(h.ErrorOf(4), kEinval);
  h.Feed(Request(kCmdBlockStatus, 5, 1 << 20, 512));
  EXPECT_EQ(h.ErrorOf(5), kEinval);
}

TEST(NbdTransmission, BlockStatusNeedsAContext) {
  Harness h;
  h.Go(/*structured=*/true, /*meta=*/false);
  h.Feed(Request(kCmdBlockStatus, 1, 0, 4096));
  EXPECT_EQ(h.ErrorOf(1), kEinval);
}

TEST(NbdTransmission, RepliesFollowCompletionOrder) {
  Harness h;
  h.Go();
  h.hold = true;
  h.Feed(Cat({Request(kCmdRead, 10, 0, 512), Request(kCmdWrite, 11, 512, 512, 0, Bytes(512, 1)),
              Request(kCmdFlush, 12, 0, 0)}));
  ASSERT_EQ(h.held.size(), 3u);
  EXPECT_EQ(h.s.in_flight(), 3u);
  EXPECT_EQ(h.r.available(), 0u);
  h.CompleteHeld(2);
  h.CompleteHeld(0);
  h.CompleteHeld(1);
  EXPECT_EQ(h.Reply().handle, 12u);
  EXPECT_EQ(h.Reply().handle, 10u);
  EXPECT_EQ(h.Reply().handle, 11u);
  EXPECT_EQ(h.s.in_flight(), 0u);
}

TEST(NbdTransmission, DeviceErrorsMapToNbdErrors) {
  Harness h;
  h.Go(false, false);
  h.hold = true;
  h.Feed(Cat(
      {Request(kCmdRead, 1, 0, 512), Request(kCmdFlush, 2, 0, 0), Request(kCmdTrim, 3, 0, 512)}));
  h.CompleteHeld(0, Status(Code::kIoError, "disk on fire"));
  h.CompleteHeld(1, Status(Code::kCancelled, "closing"));
  h.CompleteHeld(2, Status(Code::kTimedOut, "bridge gone"));
  EXPECT_EQ(h.ErrorOf(1), kEio);  // a failed simple READ carries no data
  EXPECT_EQ(h.ErrorOf(2), kEshutdown);
  EXPECT_EQ(h.ErrorOf(3), kEio);
  EXPECT_EQ(h.r.available(), 0u);
}

TEST(NbdTransmission, InjectedDeviceErrorInStructuredRead) {
  Harness h;
  h.Go();
  h.dev.InjectError(Op::kRead, Code::kIoError);
  h.Feed(Request(kCmdRead, 1, 0, 512));
  auto m = h.Reply();
  EXPECT_EQ(m.type, kReplyError);
  EXPECT_EQ(m.error, kEio);
  EXPECT_TRUE(m.done());
}

TEST(NbdTransmission, DisconnectWaitsForInFlight) {
  Harness h;
  h.Go();
  h.hold = true;
  const Bytes b = Cat({Request(kCmdWrite, 1, 0, 512, 0, Bytes(512, 1)), Request(kCmdDisc, 2, 0, 0),
                       Request(kCmdRead, 3, 0, 512)});
  EXPECT_EQ(h.s.Feed(b.data(), b.size()), b.size() - kRequestHeaderLen);
  h.Pump();
  EXPECT_TRUE(h.s.closing());
  EXPECT_FALSE(h.s.Finished());
  EXPECT_EQ(h.held.size(), 1u);  // nothing after DISC was taken
  h.CompleteHeld(0);
  EXPECT_EQ(h.ErrorOf(1), 0u);
  EXPECT_TRUE(h.s.Finished());
}

TEST(NbdTransmission, InFlightLimitStopsConsumption) {
  NbdExportConfig c = Harness::Config();
  c.max_in_flight = 2;
  Harness h(TestVolume(), c);
  h.Go();
  h.hold = true;
  const Bytes three = Cat({Request(kCmdRead, 1, 0, 512), Request(kCmdRead, 2, 512, 512),
                           Request(kCmdRead, 3, 1024, 512)});
  const size_t used = h.s.Feed(three.data(), three.size());
  h.Pump();
  EXPECT_EQ(used, three.size());  // the third header is held, not yet started
  EXPECT_EQ(h.held.size(), 2u);
  EXPECT_EQ(h.s.Feed(nullptr, 0), 0u);
  h.Pump();
  EXPECT_EQ(h.held.size(), 2u);
  h.CompleteHeld(0);
  h.s.Feed(nullptr, 0);
  h.Pump();
  EXPECT_EQ(h.held.size(), 3u);
  // At the limit again: the next header is taken and held, nothing is submitted.
  const Bytes more = Cat({Request(kCmdRead, 4, 0, 512), Request(kCmdRead, 5, 0, 512)});
  EXPECT_EQ(h.s.Feed(more.data(), more.size()), kRequestHeaderLen);
  h.Pump();
  EXPECT_EQ(h.held.size(), 3u);
}

TEST(NbdTransmission, BufferLimitStopsConsumption) {
  NbdExportConfig c = Harness::Config();
  c.max_buffered = 64 * 1024;
  Harness h(TestVolume(), c);
  h.Go();
  h.hold = true;
  const Bytes two = Cat({Request(kCmdRead, 1, 0, 65536), Request(kCmdRead, 2, 0, 65536)});
  h.s.Feed(two.data(), two.size());
  h.Pump();
  EXPECT_EQ(h.held.size(), 1u);  // 64 KiB held: the second waits
  h.CompleteHeld(0);
  h.s.Feed(nullptr, 0);
  h.Pump();
  // The first reply's 64 KiB was drained by the harness, so the second may start.
  EXPECT_EQ(h.held.size(), 2u);
}

TEST(NbdTransmission, ZeroLengthRequestsAreAnswered) {
  Harness h;
  h.Go();
  h.Feed(Request(kCmdWrite, 1, 0, 0));
  EXPECT_EQ(h.ErrorOf(1), 0u);
  h.Feed(Request(kCmdRead, 2, 0, 0));
  auto m = h.Reply();
  EXPECT_EQ(m.type, kReplyNone);
  EXPECT_TRUE(m.done());
  EXPECT_TRUE(h.seen.empty());
}

TEST(NbdSessionErrors, StatusMapping) {
  EXPECT_EQ(NbdErrorFor(Status::Ok()), 0u);
  EXPECT_EQ(NbdErrorFor(Status(Code::kInvalidArgument, "")), kEinval);
  EXPECT_EQ(NbdErrorFor(Status(Code::kIoError, "")), kEio);
  EXPECT_EQ(NbdErrorFor(Status(Code::kTimedOut, "")), kEio);
  EXPECT_EQ(NbdErrorFor(Status(Code::kCancelled, "")), kEshutdown);
  EXPECT_EQ(NbdErrorFor(Status(Code::kResourceExhausted, "")), kEnospc);
}

}  // namespace
}  // namespace opensrd::block::nbd

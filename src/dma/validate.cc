#include "dma/validate.h"

#include <cstring>

namespace opensrd::dma {
namespace {

bool Overlap(const uint8_t* a, uint64_t alen, const uint8_t* b, uint64_t blen) {
  return a < b + blen && b < a + alen;
}

// Reads a scatter-gather list (count entries at iova) into out, translating every entry with
// `access`. Returns the total length in *total.
CompletionStatus ReadList(const RegionTable& regions, uint64_t iova, uint16_t count,
                          uint32_t access, Segment* out, uint64_t* total) {
  if (iova == 0) return CompletionStatus::kNullAddress;
  if (count == 0 || count > kMaxSgEntries) return CompletionStatus::kBadSgList;
  CompletionStatus why = CompletionStatus::kSuccess;
  const uint8_t* list = regions.Translate(iova, uint64_t{count} * sizeof(SgEntry), kRead, &why);
  if (list == nullptr) return why;
  *total = 0;
  for (uint16_t i = 0; i < count; ++i) {
    SgEntry e;
    std::memcpy(&e, list + i * sizeof(SgEntry), sizeof e);  // one read of each entry
    if (e.iova == 0) return CompletionStatus::kNullAddress;
    if (e.length == 0 || e.reserved != 0) return CompletionStatus::kBadSgList;
    out[i].p = regions.Translate(e.iova, e.length, access, &why);
    if (out[i].p == nullptr) return why;
    out[i].len = e.length;
    *total += e.length;
  }
  return CompletionStatus::kSuccess;
}

CompletionStatus ValidateSg(const Descriptor& d, const RegionTable& regions, SgScratch* s, Op* op) {
  if (d.pattern != 0 || d.crc_seed != 0) return CompletionStatus::kBadField;
  uint64_t src_total = 0, dst_total = 0;
  CompletionStatus st = ReadList(regions, d.src, d.src_count, kRead, s->src, &src_total);
  if (st != CompletionStatus::kSuccess) return st;
  st = ReadList(regions, d.dst, d.dst_count, kWrite, s->dst, &dst_total);
  if (st != CompletionStatus::kSuccess) return st;
  if (d.length == 0 || src_total != d.length || dst_total != d.length) {
    return CompletionStatus::kBadLength;
  }
  for (uint16_t i = 0; i < d.src_count; ++i) {
    for (uint16_t j = 0; j < d.dst_count; ++j) {
      if (Overlap(s->src[i].p, s->src[i].len, s->dst[j].p, s->dst[j].len)) {
        return CompletionStatus::kOverlap;
      }
    }
  }
  op->src_sg = s->src;
  op->dst_sg = s->dst;
  op->src_count = d.src_count;
  op->dst_count = d.dst_count;
  return CompletionStatus::kSuccess;
}

}  // namespace

CompletionStatus Validate(const Descriptor& d, const RegionTable& regions, SgScratch* scratch,
                          Op* op) {
  *op = Op{};
  const auto opcode = static_cast<Opcode>(d.opcode);
  if (opcode == Opcode::kInvalid || d.opcode > static_cast<uint8_t>(Opcode::kCompare)) {
    return CompletionStatus::kBadOpcode;
  }
  if ((d.flags & ~kKnownFlags) != 0 || d.reserved0 != 0 || d.reserved[0] != 0 ||
      d.reserved[1] != 0) {
    return CompletionStatus::kBadField;
  }
  op->opcode = opcode;
  op->flags = d.flags;
  op->length = d.length;
  if (opcode == Opcode::kCopySg) return ValidateSg(d, regions, scratch, op);

  // Fields the single-buffer opcodes do not use must be zero, so a misplaced field is caught.
  if (d.src_count != 0 || d.dst_count != 0) return CompletionStatus::kBadField;
  if (opcode != Opcode::kFill && d.pattern != 0) return CompletionStatus::kBadField;
  if (opcode != Opcode::kCopyCrc && d.crc_seed != 0) return CompletionStatus::kBadField;
  if (opcode == Opcode::kFill && d.src != 0) return CompletionStatus::kBadField;
  if (d.dst == 0 || (opcode != Opcode::kFill && d.src == 0)) return CompletionStatus::kNullAddress;
  if (d.length == 0) return CompletionStatus::kBadLength;

  CompletionStatus why = CompletionStatus::kSuccess;
  if (opcode != Opcode::kFill) {
    op->src = regions.Translate(d.src, d.length, kRead, &why);
    if (op->src == nullptr) return why;
  }
  // kCompare only reads its second buffer.
  op->dst = regions.Translate(d.dst, d.length, opcode == Opcode::kCompare ? kRead : kWrite, &why);
  if (op->dst == nullptr) return why;
  if ((opcode == Opcode::kCopy || opcode == Opcode::kCopyCrc) &&
      Overlap(op->src, d.length, op->dst, d.length)) {
    return CompletionStatus::kOverlap;
  }
  op->pattern = d.pattern;
  op->crc_seed = d.crc_seed;
  return CompletionStatus::kSuccess;
}

}  // namespace opensrd::dma

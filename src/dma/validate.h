// The engine's main parser: turns one descriptor (a private snapshot, never the shared slot,
// so a producer rewriting the slot meanwhile cannot change what was checked) into a validated
// operation on local addresses, or the error status it completes with. Pure function of the
// descriptor, the registered regions and the memory holding scatter-gather lists.
#pragma once
#include "dma/backend.h"
#include "dma/regions.h"

namespace opensrd::dma {

// Scratch for the scatter-gather lists of one operation.
struct SgScratch {
  Segment src[kMaxSgEntries];
  Segment dst[kMaxSgEntries];
};

// kSuccess and *op filled, or the status the descriptor completes with.
CompletionStatus Validate(const Descriptor& d, const RegionTable& regions, SgScratch* scratch,
                          Op* op);

}  // namespace opensrd::dma

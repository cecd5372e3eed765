// CRC32C (Castagnoli), the checksum every opensrd packet carries. ISA-L's crc32_iscsi (kernel
// chosen for the CPU at run time) for long buffers, one SSE4.2 crc32 stream for short ones;
// pure function, thread-safe.
#pragma once
#include <cstddef>
#include <cstdint>

namespace opensrd {

// Extends `crc` (0 for a fresh checksum) over `len` bytes. Matches RFC 3720's CRC32C:
// crc32c("123456789") == 0xE3069283.
uint32_t Crc32c(const void* data, size_t len, uint32_t crc = 0);

}  // namespace opensrd

// RdmaCommand: what one received RDMA packet asks for, in terms no wire protocol owns. The
// protocol codecs (RoCEv2, iWARP, native) turn header bytes into a command through their header
// tables (header_table.h); the executor acts on commands only, so it never learns which
// protocol carried them. Plain value type; `payload` points into the caller's packet buffer and
// is valid only as long as that buffer is.
#pragma once
#include <cstdint>
#include <span>

namespace opensrd::rdma {

// Segment position is part of the opcode where the wire says it (InfiniBand opcodes do); flags
// kFirst/kLast repeat it for every opcode so the executor can test one bit.
enum class RdmaOpcode : uint8_t {
  kSendFirst,
  kSendMiddle,
  kSendLast,
  kSendLastImm,
  kSendLastInv,  // last segment of a SEND with invalidate (rkey in invalidate_rkey)
  kSendOnly,
  kSendOnlyImm,
  kSendOnlyInv,
  kWriteFirst,
  kWriteMiddle,
  kWriteLast,
  kWriteLastImm,
  kWriteOnly,
  kWriteOnlyImm,
  kReadRequest,
  kReadResponseFirst,
  kReadResponseMiddle,
  kReadResponseLast,
  kReadResponseOnly,
  kAck,     // positive acknowledgement (AETH syndrome class 000)
  kRnrNak,  // receiver not ready (syndrome class 001; low 5 bits: the RNR timer)
  kNak,     // negative acknowledgement (syndrome class 011; low 5 bits: NakCode)
  kCompareSwap,
  kFetchAdd,
  kAtomicAck,
  kTerminate,  // iWARP RDMAP Terminate (term_* fields, payload: the offending headers)
};
inline constexpr int kRdmaOpcodeCount = static_cast<int>(RdmaOpcode::kTerminate) + 1;

// Messages that span several packets; every other opcode is a single packet.
enum class OpcodeFamily : uint8_t { kSend, kWrite, kReadResponse, kSingle };

// NAK codes carried in the low 5 bits of a kNak syndrome (IBTA: AETH).
enum class NakCode : uint8_t {
  kPsnSequenceError = 0,
  kInvalidRequest = 1,
  kRemoteAccessError = 2,
  kRemoteOperationalError = 3,
  kInvalidRdRequest = 4,
};

// Command flags (RdmaCommand::flags).
inline constexpr uint8_t kFlagSolicited = 0x01;   // raise a solicited event at the receiver
inline constexpr uint8_t kFlagAckRequest = 0x02;  // RoCE BTH A bit: acknowledge this packet
inline constexpr uint8_t kFlagFirst = 0x04;       // first packet of its message
inline constexpr uint8_t kFlagLast = 0x08;        // last packet of its message
inline constexpr uint8_t kFlagMigReq = 0x10;      // RoCE BTH M bit (path migration state)
inline constexpr uint8_t kFlagInvalidate = 0x20;  // SEND with invalidate of invalidate_rkey

struct RdmaCommand {
  RdmaOpcode opcode = RdmaOpcode::kSendOnly;
  uint8_t flags = 0;
  uint8_t pad_count = 0;         // RoCE BTH PadCnt: bytes after the payload to a 4-byte boundary
  uint16_t pkey = 0xFFFF;        // RoCE partition key (the default partition)
  uint32_t dest_qp = 0;          // RoCE destination QP (24 bits); iWARP: 0, the connection names it
  uint32_t src_qp = 0;           // native: the sender's QP (datagram QPs name both ends)
  uint32_t psn = 0;              // RoCE packet sequence number (24 bits); iWARP: none
  uint32_t msn = 0;              // RoCE AETH MSN (24 bits) or DDP untagged MSN (32 bits)
  uint64_t va = 0;               // remote virtual address: RETH/AtomicETH VA; iWARP tagged offset
                                 // (tagged segments) or data source TO (read request)
  uint32_t rkey = 0;             // R_Key; iWARP STag (tagged segments) or data source STag (read)
  uint32_t dma_length = 0;       // RETH DMA length; iWARP RDMA read message size
  uint32_t imm = 0;              // immediate data (ImmDt), opcodes *Imm
  uint32_t invalidate_rkey = 0;  // IETH / iWARP invalidate STag, with kFlagInvalidate
  uint64_t swap_add = 0;         // AtomicETH swap (CMP_SWAP) or add (FETCH_ADD) operand
  uint64_t compare = 0;          // AtomicETH compare operand
  uint64_t atomic_orig = 0;      // AtomicAckETH: the remote value before the atomic
  uint8_t syndrome = 0;          // AETH syndrome (class in bits 7..5)
  uint32_t message_offset = 0;   // iWARP DDP untagged MO: byte offset of this segment
  uint32_t sink_stag = 0;        // iWARP read request: where the response lands (requester)
  uint64_t sink_to = 0;
  uint8_t term_layer = 0;  // iWARP Terminate: layer (0 RDMAP, 1 DDP, 2 MPA/LLP)
  uint8_t term_etype = 0;  // error type within the layer
  uint8_t term_code = 0;   // error code within the type
  uint8_t term_hdrct = 0;  // M, D, R bits: which offending headers follow (in payload)
  std::span<const uint8_t> payload;
};

OpcodeFamily Family(RdmaOpcode op);
bool IsFirst(RdmaOpcode op);  // First or Only forms, and every single-packet opcode
bool IsLast(RdmaOpcode op);   // Last or Only forms, and every single-packet opcode
bool HasImmediate(RdmaOpcode op);
bool IsInvalidate(RdmaOpcode op);
// The multi-packet opcode of `family` at a position; kSend with `invalidate` gives the *Inv
// forms where InfiniBand has them (last, only) and kSendFirst/kSendMiddle otherwise (the
// command then carries kFlagInvalidate). kSingle is not composable (returns kSendOnly).
RdmaOpcode Compose(OpcodeFamily family, bool first, bool last, bool invalidate = false);
const char* OpcodeName(RdmaOpcode op);

// The acknowledgement kind an AETH syndrome names (bits 7..5: 000 kAck, 001 kRnrNak, 011
// kNak); false for the reserved classes (010, 1xx), which a receiver must not act on.
bool AckKindOfSyndrome(uint8_t syndrome, RdmaOpcode* kind);

}  // namespace opensrd::rdma

// MPA (RFC 5044, revision 2 per RFC 6581): the framing that carries DDP segments over a TCP
// stream. Start-up: the initiator sends a request frame, the responder a reply frame, each with
// private data (revision 2 puts the enhanced IRD/ORD/RTR word first). Then both sides send
// FPDUs: 2-byte ULPDU length, the ULPDU (a DDP segment), pad to a 4-byte boundary, CRC32C.
// opensrd never uses markers. Encoders and decoders are pure; an MpaReceiver is one stream's
// state and is not thread-safe.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/status.h"

namespace opensrd::rdma::mpa {

inline constexpr size_t kKeyLen = 16;
inline constexpr char kRequestKey[] = "MPA ID Req Frame";  // 16 bytes on the wire, no NUL
inline constexpr char kReplyKey[] = "MPA ID Rep Frame";
inline constexpr size_t kStartHeaderLen = 20;   // key, flags, revision, PD_Length
inline constexpr size_t kMaxPrivateData = 512;  // RFC 5044 7.1
inline constexpr size_t kEnhancedLen = 4;       // RFC 6581 IRD/ORD word
inline constexpr size_t kLengthLen = 2;
inline constexpr size_t kCrcLen = 4;
inline constexpr size_t kMinUlpdu = 14;  // the shortest DDP segment (tagged header)

// Start frame flags byte (offset 16).
inline constexpr uint8_t kFlagMarkers = 0x80;   // M: the sender wants markers in what it gets
inline constexpr uint8_t kFlagCrc = 0x40;       // C: the sender wants CRCs
inline constexpr uint8_t kFlagReject = 0x20;    // R: reply only, the connection is refused
inline constexpr uint8_t kFlagEnhanced = 0x10;  // revision 2: private data opens with IRD/ORD
                                                // (what Linux siw and cxgb4 set and check)

// RFC 6581 enhanced connection establishment: the first 4 bytes of private data.
struct Enhanced {
  bool peer_to_peer = true;  // A: peer-to-peer model, a ready-to-receive (RTR) message follows
  bool send_rtr = false;     // B: RTR as a zero-length SEND
  bool write_rtr = false;    // C: RTR as a zero-length RDMA WRITE
  bool read_rtr = false;     // D: RTR as a zero-length RDMA READ
  uint16_t ird = 0;          // inbound RDMA read queue depth (14 bits)
  uint16_t ord = 0;          // outbound RDMA read queue depth (14 bits)
};

struct StartFrame {
  bool reply = false;
  uint8_t flags = kFlagCrc;  // kFlag* bits, including any the sender set that we do not know
  uint8_t revision = 2;
  std::optional<Enhanced> enhanced;   // revision 2 with kFlagEnhanced
  std::vector<uint8_t> private_data;  // the ULP's private data, after the enhanced word
};

// Whole start frame. kInvalidArgument if the private data exceeds 512 bytes with the enhanced
// word, or IRD/ORD exceed 14 bits.
Result<std::vector<uint8_t>> EncodeStartFrame(const StartFrame& f);

// Length of the start frame at the start of `bytes`, or 0 if its header is not complete yet.
size_t StartFrameLength(std::span<const uint8_t> bytes);
// Decodes a complete start frame (StartFrameLength bytes). Error tokens: "too_short",
// "bad_key" (not the expected request/reply key), "bad_revision" (not 1 or 2), "bad_length"
// (private data over 512 bytes, or too short for the enhanced word).
Result<StartFrame> DecodeStartFrame(std::span<const uint8_t> bytes, bool expect_reply);

// One FPDU around `ulpdu` (1..65535 bytes). Without CRCs the CRC field is sent as zero.
Result<std::vector<uint8_t>> EncodeFpdu(std::span<const uint8_t> ulpdu, bool crc = true);
// Total FPDU length for a ULPDU length: 2 + ulpdu + pad + 4.
size_t FpduLength(size_t ulpdu_len);

// Takes a TCP byte stream in chunks of any size and yields the start frame (if configured to
// expect one) and then one ULPDU per FPDU, checking each CRC32C. The first error is sticky:
// MPA has no way to resynchronise a stream, so the connection must be terminated.
class MpaReceiver {
 public:
  enum class Expect : uint8_t { kRequest, kReply, kFpdus };
  struct Config {
    Expect expect = Expect::kFpdus;
    bool crc = true;           // CRCs negotiated (either side set C)
    size_t max_ulpdu = 65535;  // the largest ULPDU accepted
  };
  explicit MpaReceiver(Config c) : cfg_(c) {}

  void Feed(std::span<const uint8_t> bytes);

  struct Event {
    enum class Kind : uint8_t { kNone, kStartFrame, kUlpdu } kind = Kind::kNone;
    StartFrame start;                // kStartFrame
    std::span<const uint8_t> ulpdu;  // kUlpdu: valid until the next Feed() or Next()
  };
  // The next complete unit, kNone if more bytes are needed, or the stream's error: "bad_key",
  // "bad_revision", "bad_length" (ULPDU shorter than a DDP header or over max_ulpdu, or a bad
  // private data length), "bad_crc".
  Result<Event> Next();

  // Switches to FPDUs after a start frame, with the CRC setting the exchange agreed on.
  void StartFpdus(bool crc) {
    cfg_.expect = Expect::kFpdus;
    cfg_.crc = crc;
  }
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  Config cfg_;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;  // bytes of buf_ already consumed
  Status error_;
};

}  // namespace opensrd::rdma::mpa

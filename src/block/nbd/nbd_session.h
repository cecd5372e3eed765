// NbdSession: one NBD connection's protocol, sans I/O. Client bytes go in (Feed); device
// requests (TakeSubmissions) and reply bytes (GatherOutput/ConsumeOutput) come out; the device's
// answers come back in (Complete). The session never touches a socket, a thread or a clock, so
// tests and the fuzz target drive it byte by byte; NbdServer is the socket shell around it.
//
// Protocol (NetworkBlockDevice/nbd doc/proto.md): fixed newstyle handshake only (no oldstyle, no
// TLS); options EXPORT_NAME, GO, INFO (NBD_INFO_EXPORT, NAME, DESCRIPTION, BLOCK_SIZE), LIST,
// ABORT, STRUCTURED_REPLY, LIST/SET_META_CONTEXT (base:allocation); commands READ (simple or
// structured: OFFSET_DATA / OFFSET_HOLE chunks, DF), WRITE, FLUSH, TRIM, WRITE_ZEROES (NO_HOLE,
// FAST_ZERO), CACHE, BLOCK_STATUS (REQ_ONE), DISC, FUA on every command. Requests run
// concurrently and are answered in completion order. Docs: docs/STORAGE.md, "NBD front".
//
// Bounds: a READ/WRITE payload above the advertised maximum is refused (EINVAL; a WRITE's payload
// is skipped without being stored), option data above kMaxOptionData is skipped and refused, and
// Feed stops consuming once `max_in_flight` requests or `max_buffered` bytes are held, so the
// session's memory is bounded whatever the client sends.
//
// Lifetime: the memory a submission names belongs to the session and stays valid until its
// Complete; the session must not be destroyed while submissions are outstanding (in_flight() > 0).
// Thread-safety: none; one thread drives a session. The device is used only for Info() and the
// synchronous BlockStatus(); Submit is the caller's job.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "block/nbd/nbd_wire.h"
#include "opensrd/block.h"

namespace opensrd::block::nbd {

struct NbdExportConfig {
  std::string name;         // canonical export name; the empty (default) name also selects it
  std::string description;  // NBD_INFO_DESCRIPTION and the text of NBD_OPT_LIST (may be empty)
  uint32_t max_payload = 32u << 20;  // largest READ/WRITE; also capped by the device's max_transfer
  uint32_t preferred_block = 4096;   // NBD_INFO_BLOCK_SIZE preferred (raised to the block size)
  uint32_t max_in_flight = 128;      // requests at the device (submitted, not complete) at once
  uint64_t max_buffered = 64u << 20;  // payload bytes held for requests and unsent replies
  // Offer NBD_FLAG_CAN_MULTI_CONN. Correct only because a BlockDevice's flush is device-wide: it
  // covers every write acknowledged before it, whichever connection sent it.
  bool multi_conn = true;
  // Answer structured READs with OFFSET_HOLE chunks where the device reports a hole that reads
  // back as zeroes (one BlockStatus call per read).
  bool sparse_reads = true;
};

class NbdSession {
 public:
  static constexpr size_t kMaxOptionData = 64 * 1024;
  static constexpr uint32_t kMetaContextAllocation = 1;  // our id for base:allocation
  // Options are not read while this much handshake output is unsent (a client that never reads).
  static constexpr size_t kMaxHandshakeOutput = 1 << 20;

  struct Submission {
    uint64_t id;
    IoRequest request;
  };

  NbdSession(BlockDevice& device, NbdExportConfig config);
  ~NbdSession();
  NbdSession(const NbdSession&) = delete;
  NbdSession& operator=(const NbdSession&) = delete;

  // Consumes client bytes; returns how many were taken. Fewer than `n` means the session is at a
  // limit (or closing): feed the rest later, after completions or output drained. Feed(nullptr,
  // 0) resumes a request that waited for room.
  size_t Feed(const uint8_t* data, size_t n);

  // Device requests Feed produced, oldest first (appended to *out).
  void TakeSubmissions(std::vector<Submission>* out);
  // The device finished submission `id`.
  void Complete(uint64_t id, const Status& status);

  // Reply bytes waiting to be sent, as up to `max_iov` iovecs (returns how many were filled),
  // and the number of those bytes that were sent.
  size_t GatherOutput(iovec* iov, size_t max_iov) const;
  void ConsumeOutput(size_t n);
  bool HasOutput() const { return !out_.empty(); }
  size_t output_bytes() const { return output_bytes_; }

  // True once the connection should end (client abort/disconnect or a protocol violation):
  // nothing more is consumed; close after in-flight requests finish and output is sent.
  bool closing() const { return state_ == State::kClosed; }
  bool Finished() const { return closing() && in_flight() == 0 && out_.empty(); }
  const std::string& close_reason() const { return close_reason_; }
  bool in_transmission() const { return transmission_; }
  size_t in_flight() const { return pending_.size(); }
  bool structured_replies() const { return structured_; }
  uint16_t transmission_flags() const { return transmission_ ? tflags_ : TransmissionFlags(); }

 private:
  enum class State {
    kClientFlags,    // 4 bytes of client flags
    kOptionHeader,   // IHAVEOPT, option, length
    kOptionData,     // collecting option data
    kOptionSkip,     // discarding oversize option data, then refusing it
    kRequestHeader,  // 28-byte request header
    kRequestWait,    // header parsed; waiting for room to start it
    kWritePayload,   // collecting a WRITE's payload
    kWriteSkip,      // discarding a refused WRITE's payload
    kClosed,
  };
  struct Pending {
    uint64_t handle = 0;
    uint16_t cmd = 0;
    uint16_t flags = 0;
    uint64_t offset = 0;
    uint32_t length = 0;
    std::shared_ptr<uint8_t[]> buf;  // READ destination / WRITE source
    std::vector<Extent> extents;     // READ: allocation at submission (hole hints)
  };
  struct Segment {  // one piece of output: a small inline head, then an optional shared body
    uint8_t head[40];
    uint32_t head_len = 0;
    std::shared_ptr<uint8_t[]> owner;
    const uint8_t* body = nullptr;
    size_t body_len = 0;
    size_t sent = 0;       // bytes of head+body already sent
    uint64_t release = 0;  // held_bytes_ given back once this segment is sent
  };

  // Framing helpers.
  size_t Collect(const uint8_t* data, size_t n, size_t want);  // into hdr_
  void Close(std::string reason);

  // Handshake (nbd_handshake.cc).
  void OnClientFlags();
  void OnOptionHeader();
  void OnOption();
  void OnOptionList();
  void OnOptionInfo(bool go);
  void OnOptionMetaContext(bool set);
  void OptionReply(uint32_t type, const uint8_t* data = nullptr, size_t len = 0);
  void OptionError(uint32_t type, const std::string& message);
  bool IsOurExport(const std::string& name) const;
  void EnterTransmission();
  uint16_t TransmissionFlags() const;
  struct BlockSizes {
    uint32_t minimum, preferred, maximum;
  };
  BlockSizes Sizes() const;

  // Transmission (nbd_transmission.cc).
  void OnRequestHeader();
  uint32_t RoomNeeded() const;
  bool HasRoomFor(uint32_t payload) const;
  void StartRequest();
  void Submit(Pending p, Op op, uint8_t flags);
  void ReplyOk(uint64_t handle);
  void ReplyError(uint64_t handle, uint16_t cmd, uint32_t error, const std::string& message);
  void ReplyRead(const Pending& p);
  void ReplyBlockStatus(uint64_t handle, uint64_t offset, uint32_t length, bool req_one);
  uint32_t CheckRequest(const VolumeInfo& info, std::string* why) const;

  // Output.
  void Enqueue(Segment s);
  void PushBody(Segment& s, std::shared_ptr<uint8_t[]> owner, const uint8_t* body, size_t len);
  void StructuredHeader(Segment& s, uint16_t flags, uint16_t type, uint64_t handle,
                        uint32_t length);

  BlockDevice& device_;
  NbdExportConfig config_;
  State state_ = State::kClientFlags;
  std::string close_reason_;

  // Framing.
  uint8_t hdr_[kRequestHeaderLen] = {};
  size_t hdr_have_ = 0;
  std::vector<uint8_t> opt_data_;
  size_t opt_len_ = 0;
  uint32_t opt_ = 0;
  uint64_t to_skip_ = 0;

  // Negotiated.
  bool no_zeroes_ = false;
  bool structured_ = false;
  bool transmission_ = false;
  bool meta_allocation_ = false;            // base:allocation selected for our export
  BlockSizes sizes_ = {1, 4096, 1u << 20};  // fixed when transmission starts
  uint16_t tflags_ = 0;                     // the transmission flags the client was sent

  // Current request.
  uint16_t req_flags_ = 0;
  uint16_t req_cmd_ = 0;
  uint64_t req_handle_ = 0;
  uint64_t req_offset_ = 0;
  uint32_t req_length_ = 0;
  Pending write_;  // WRITE whose payload is arriving
  uint32_t write_have_ = 0;
  uint32_t skip_error_ = 0;  // reply for a WRITE whose payload is being skipped
  std::string skip_why_;

  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Pending> pending_;
  std::vector<Submission> submissions_;
  uint64_t held_bytes_ = 0;  // request buffers alive (in flight or queued for output)

  std::deque<Segment> out_;
  size_t output_bytes_ = 0;
};

// Maps a device completion status to an NBD error value (kOk -> 0).
uint32_t NbdErrorFor(const Status& status);

}  // namespace opensrd::block::nbd

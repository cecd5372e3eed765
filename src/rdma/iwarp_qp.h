// IwarpQp: one iWARP queue pair over one reliable byte stream, sans I/O. The shell (a TCP
// socket, or an in-memory pipe in tests) feeds it the bytes it received (OnBytes) and sends
// what PendingOutput holds; the queue pair never touches a socket or a clock. TCP orders and
// retransmits, so iWARP has no PSN, ACK or timer: a SEND or WRITE completes once its bytes are
// handed to the stream (as in Linux siw), a READ once its last response segment has landed.
//
// Connection set-up is MPA (RFC 5044) revision 2 with RFC 6581 enhanced mode, as Linux siw and
// rdma_cm use it: the initiator sends a request frame with private data and its IRD/ORD and the
// RTR kinds it can send; the responder answers with a reply frame naming one; the initiator's
// first FPDU is that ready-to-receive message (a zero-length WRITE or READ). A revision 1 peer
// gets a revision 1 reply without the enhanced word. CRCs are on if either side asks; markers
// are never used (a peer asking for them is refused with the R flag).
//
// Then FPDUs (CRC32C, ISA-L) carry DDP segments: tagged (WRITE, READ RESPONSE) placed at
// STag + TO, untagged (SEND on queue 0, READ REQUEST on queue 1, TERMINATE on queue 2) with a
// per-queue MSN starting at 1 and a message offset. Remote operations run through the
// protocol-independent Executor (key, bounds, access and protection domain checks against the
// MemoryRegistry); any failure sends a TERMINATE with the RFC 5040/5041/5044 layer, error type
// and code, leaves target memory untouched, and moves the queue pair to the terminated state,
// where every outstanding work request and posted receive completes as flushed. A TERMINATE
// received does the same, with the first outstanding request completing with the status the
// terminate names.
//
// Not thread-safe: one thread drives one queue pair.
#pragma once
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "opensrd/rdma.h"
#include "rdma/executor.h"
#include "rdma/iwarp.h"
#include "rdma/memory_registry.h"
#include "rdma/mpa.h"

namespace opensrd::rdma::iwarp {

struct QpConfig {
  bool initiator = true;
  PdHandle pd = 0;
  std::vector<uint8_t> private_data;    // ours: in the MPA request (initiator) or reply
  bool enhanced = true;                 // RFC 6581 enhanced connection establishment
  uint16_t ird = 16;                    // inbound READs we serve at once (advertised)
  uint16_t ord = 16;                    // outbound READs we issue at once (advertised)
  bool crc = true;                      // ask for MPA CRCs (used if either side asks)
  uint32_t max_segment = 16384;         // payload bytes per DDP segment (one FPDU)
  uint32_t max_read_bytes = 16u << 20;  // largest READ this side serves (else TERMINATE)
};

// What a TERMINATE carried (sent or received).
struct TermInfo {
  uint8_t layer = 0;
  uint8_t etype = 0;
  uint8_t code = 0;
  bool operator==(const TermInfo&) const = default;
};

struct QpStats {
  uint64_t fpdus_sent = 0;
  uint64_t fpdus_received = 0;
  uint64_t bytes_placed = 0;  // WRITE and READ RESPONSE payload placed in registered memory
  uint64_t terminates_sent = 0;
  uint64_t terminates_received = 0;
  uint64_t requests_executed = 0;  // remote WRITE, SEND and READ messages served in full
};

class IwarpQp {
 public:
  enum class State : uint8_t {
    kIdle,          // initiator before Connect
    kAwaitRequest,  // responder waiting for the MPA request
    kAwaitReply,    // initiator waiting for the MPA reply
    kRts,           // FPDUs flow
    kTerminated,    // a TERMINATE went out or came in, or the stream broke
  };

  IwarpQp(const QpConfig& config, MemoryRegistry& registry);

  // Initiator: queues the MPA request.
  void Connect();
  // Bytes the stream delivered, any split or coalescing.
  void OnBytes(std::span<const uint8_t> bytes);
  // The peer closed its side of the stream.
  void OnStreamClosed();

  // Bytes to write to the stream; ConsumeOutput(n) after n of them were written.
  std::span<const uint8_t> PendingOutput() const;
  void ConsumeOutput(size_t n);

  // SEND, RDMA_WRITE and RDMA_READ (sge: the data, or where READ data lands: its lkey is also the
  // sink STag on the wire). Posting before the connection is up queues the request.
  // kInvalidArgument for other opcodes, kCancelled once terminated; a bad local SGE
  // completes with kLocalProtectionError.
  Status PostSend(const SendWr& wr);
  Status PostRecv(const RecvWr& wr);
  std::vector<WorkCompletion> TakeCompletions();

  State state() const { return state_; }
  // Why the queue pair stopped (a stable token first, as the codecs' errors), empty otherwise.
  const std::string& error() const { return error_; }
  const std::vector<uint8_t>& peer_private_data() const { return peer_private_data_; }
  bool crc() const { return crc_; }
  bool terminate_sent() const { return term_sent_; }
  bool terminate_received() const { return term_received_; }
  TermInfo sent_terminate() const { return sent_term_; }
  TermInfo received_terminate() const { return received_term_; }
  size_t outstanding() const { return sq_.size(); }
  const QpStats& stats() const { return stats_; }

 private:
  struct Wqe {
    SendWr wr;
    uint8_t* local = nullptr;  // the checked SGE
    bool emitted = false;
    bool done = false;
    WcStatus status = WcStatus::kSuccess;
  };
  struct OutstandingRead {
    Wqe* wqe = nullptr;  // nullptr: the RTR read, which completes nothing
    uint32_t sink_stag = 0;
    uint64_t sink_to = 0;
    uint32_t length = 0;
    uint32_t received = 0;
  };

  void OnStartFrame(const mpa::StartFrame& f);
  void EnterRts();
  void OnUlpdu(std::span<const uint8_t> ulpdu);
  void OnSend(const RdmaCommand& cmd);
  void OnWrite(const RdmaCommand& cmd);
  void OnReadRequest(const RdmaCommand& cmd);
  void OnReadResponse(const RdmaCommand& cmd);
  void OnTerminate(const RdmaCommand& cmd);
  void Pump();
  void EmitWqe(Wqe& w);
  void EmitCommand(const RdmaCommand& cmd);
  void EmitReadRequest(uint32_t sink_stag, uint64_t sink_to, uint32_t len, uint32_t src_stag,
                       uint64_t src_to);
  // Sends a TERMINATE naming the offending ULPDU's headers and stops the queue pair.
  void Terminate(TermInfo t, std::span<const uint8_t> offending, const std::string& why);
  // Stops without a TERMINATE (start-up errors, a broken stream).
  void Fail(const std::string& why);
  void MarkFailed(const std::string& why);  // stop now, flush in FinishStep
  void FinishStep();
  void Drain();
  void FlushAll(WcStatus front_status);
  void CompleteInOrder();

  QpConfig cfg_;
  MemoryRegistry& registry_;
  Executor executor_;
  ReceiveQueue rq_;
  ResponderState rstate_;  // SENDs (multi-segment messages on queue 0)
  ResponderState wstate_;  // scratch for tagged WRITE segments and READs, each checked alone
  std::span<const uint8_t> last_ulpdu_;  // the ULPDU being handled (for TERMINATE's copy)
  bool flushed_ = false;
  mpa::MpaReceiver rx_;
  State state_;
  std::string error_;
  bool crc_ = true;
  std::vector<uint8_t> peer_private_data_;
  uint16_t peer_ird_ = 1;  // READs the peer serves at once
  // RTR the initiator owes (zero-length WRITE or READ); the responder's first FPDU must wait.
  enum class Rtr : uint8_t { kNone, kWrite, kRead } rtr_ = Rtr::kNone;

  std::vector<uint8_t> out_;
  size_t out_pos_ = 0;
  uint64_t out_consumed_ = 0;  // bytes the stream has taken (ConsumeOutput) since the start
  // The stream offset (in out_consumed_'s count) at which each served READ's last response
  // byte ends, oldest first.
  std::deque<uint64_t> inbound_reads_;
  std::deque<Wqe> sq_;
  std::deque<OutstandingRead> reads_;
  std::vector<WorkCompletion> completions_;
  uint32_t send_msn_ = 1;         // next MSN on our untagged queue 0
  uint32_t read_msn_ = 1;         // next MSN on our untagged queue 1
  uint32_t expect_send_msn_ = 1;  // the peer's queue 0
  uint32_t expect_read_msn_ = 1;  // the peer's queue 1
  uint32_t send_offset_ = 0;      // bytes of the SEND being received so far (its MO)
  bool term_sent_ = false;
  bool term_received_ = false;
  TermInfo sent_term_;
  TermInfo received_term_;
  QpStats stats_;
};

const char* StateName(IwarpQp::State s);

}  // namespace opensrd::rdma::iwarp

// RcQueuePair: one RoCEv2 reliable-connection queue pair, sans I/O. It is fed received
// transport headers (decoded RdmaCommands, ICRC already checked by the shell) and the time, and
// it hands back packets to send (BTH onward, without ICRC: the shell adds the ICRC for the IP
// and UDP headers it sends with), completions, and the next deadline.
//
// Requester: work requests become PSN ranges (24-bit, wrapping); SEND and WRITE are cut into
// MTU-sized FIRST/MIDDLE/LAST/ONLY packets, the last with the AckReq bit; READ and atomics are
// single requests whose responses use the PSNs reserved for them. Recovery is go-back-N: a NAK
// (PSN sequence error), a read response past the expected PSN, an ACK past an unanswered READ or
// atomic, or the local ACK timeout resends from the oldest unacknowledged PSN; an RNR NAK waits
// its RNR timer first. retry_cnt / rnr_retry count failed attempts since the last progress
// (7 means forever, as in InfiniBand); when one runs out the WR completes with an error and the
// queue pair flushes the rest.
//
// Responder: in-order execution through an RcTarget, one coalesced ACK per drain (the MSN and
// the newest PSN), a NAK once per sequence gap, duplicates re-acknowledged (SEND, WRITE),
// re-executed (READ) or answered from a small cache (atomics), RNR NAK when no receive is posted.
// Not thread-safe: one thread feeds one queue pair.
#pragma once
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "rdma/command.h"
#include "rdma/rc_target.h"

namespace opensrd::rdma::roce {

inline constexpr uint32_t kPsnMask = 0xFFFFFF;
// a - b in PSN space: the signed distance on the 24-bit circle.
inline int32_t PsnDiff(uint32_t a, uint32_t b) {
  return static_cast<int32_t>((a - b) << 8) >> 8;
}
// The InfiniBand RNR timer code (5 bits, AETH) in microseconds.
uint32_t RnrTimerMicros(uint8_t code);

enum class WrOpcode : uint8_t { kSend, kSendImm, kWrite, kWriteImm, kRead, kCmpSwap, kFetchAdd };

struct WorkRequest {
  uint64_t wr_id = 0;
  WrOpcode opcode = WrOpcode::kSend;
  std::vector<uint8_t> data;  // SEND / WRITE payload (owned until completion)
  uint32_t read_length = 0;   // READ
  uint64_t remote_va = 0;     // WRITE, READ, atomics
  uint32_t rkey = 0;
  uint32_t imm = 0;
  uint64_t swap_add = 0;  // atomics
  uint64_t compare = 0;
};

enum class WcStatus : uint8_t {
  kSuccess,
  kRemoteInvalidRequest,
  kRemoteAccessError,
  kRemoteOperationalError,
  kRnrRetryExceeded,
  kRetryExceeded,
  kFlushed,
};
const char* WcStatusName(WcStatus s);

struct Completion {
  uint64_t wr_id = 0;
  WrOpcode opcode = WrOpcode::kSend;
  WcStatus status = WcStatus::kSuccess;
  std::vector<uint8_t> read_data;  // READ
  uint64_t atomic_original = 0;    // atomics
};

struct RcConfig {
  uint32_t local_qpn = 0;
  uint32_t remote_qpn = 0;
  uint32_t send_psn = 0;                // first PSN this side sends (its sq_psn)
  uint32_t expected_psn = 0;            // first PSN the peer sends (the peer's sq_psn)
  uint32_t mtu = 1024;                  // payload bytes per packet: 256, 512, 1024, 2048 or 4096
  uint8_t retry_cnt = 7;                // 7: retry forever
  uint8_t rnr_retry = 7;                // 7: retry forever
  uint8_t min_rnr_timer = 12;           // what this side's RNR NAKs ask for (12: 0.64 ms)
  uint64_t ack_timeout_us = 67'109;     // local ACK timeout (ibv timeout 14: 4.096 us * 2^14)
  uint32_t max_inflight_packets = 128;  // PSNs sent and not yet acknowledged
  // Largest RDMA READ this responder serves; a larger request is NAKed (invalid request) before
  // any memory is set aside for it. perftest's largest default size is 8 MiB.
  uint32_t max_read_bytes = 16u << 20;
};

struct RcStats {
  uint64_t packets_sent = 0;
  uint64_t retransmitted_packets = 0;
  uint64_t timeouts = 0;
  uint64_t naks_sent = 0;
  uint64_t naks_received = 0;
  uint64_t rnr_naks_sent = 0;
  uint64_t rnr_naks_received = 0;
  uint64_t duplicates = 0;
  uint64_t acks_sent = 0;
  uint64_t messages_executed = 0;  // responder: messages (SEND, WRITE, READ, atomic) done
};

class RcQueuePair {
 public:
  RcQueuePair(const RcConfig& config, RcTarget* target);

  // Queues a work request; its packets come out of TakeOutgoing. False if the queue pair is in
  // the error state (the WR completes as kFlushed).
  bool PostSend(WorkRequest wr, uint64_t now_us);
  // One received packet addressed to this queue pair (its dest_qp already matched).
  void OnPacket(const RdmaCommand& cmd, uint64_t now_us);
  // Call when NextDeadline() has passed.
  void OnTimer(uint64_t now_us);
  std::optional<uint64_t> NextDeadline() const;

  // Packets to send, oldest first: BTH onward, without ICRC. Includes the coalesced ACK.
  std::vector<std::vector<uint8_t>> TakeOutgoing();
  std::vector<Completion> TakeCompletions();

  // Moves the queue pair to the error state: every outstanding work request completes as
  // kFlushed and later ones are refused (rdma_disconnect, a destroyed QP, a lost connection).
  void Flush() { FailFront(WcStatus::kFlushed); }

  bool in_error() const { return error_; }
  size_t outstanding() const { return sq_.size(); }
  const RcStats& stats() const { return stats_; }

 private:
  struct Wqe {
    WorkRequest wr;
    uint32_t first_psn = 0;
    uint32_t packets = 0;        // PSNs it uses (READ: its response packets)
    uint32_t read_received = 0;  // READ: response packets taken
    std::vector<uint8_t> read_data;
  };
  uint32_t LastPsn(const Wqe& w) const { return (w.first_psn + w.packets - 1) & kPsnMask; }
  bool IsReadLike(const Wqe& w) const;

  // Requester.
  void Pump(uint64_t now_us);
  void EmitRequestPacket(const Wqe& w, uint32_t index, bool ack_request);
  void OnResponse(const RdmaCommand& cmd, uint64_t now_us);
  bool AckUpTo(uint32_t psn, uint64_t now_us);  // false: an implied NAK (go back) was needed
  void GoBack(uint32_t psn);
  void Progress(uint64_t now_us);
  void Complete(Wqe& w, WcStatus status);
  void FailFront(WcStatus status);

  // Responder.
  void OnRequest(const RdmaCommand& cmd);
  void ExecuteRequest(const RdmaCommand& cmd);
  void RespondRead(const RdmaCommand& cmd, uint32_t psn);
  void SendAeth(RdmaOpcode kind, uint32_t psn, uint8_t syndrome);
  void Emit(const RdmaCommand& cmd);

  RcConfig cfg_;
  RcTarget* target_;
  bool error_ = false;
  RcStats stats_;
  std::vector<std::vector<uint8_t>> out_;
  std::vector<Completion> completions_;

  // Requester state.
  std::deque<Wqe> sq_;           // posted, not completed, in PSN order
  uint32_t next_psn_;            // the PSN the next posted WR gets
  uint32_t send_psn_;            // the next PSN to (re)transmit
  uint32_t una_psn_;             // oldest PSN not acknowledged
  uint32_t highest_sent_;        // PSNs before this were sent at least once
  uint64_t retry_deadline_ = 0;  // 0: no timer
  uint64_t rnr_deadline_ = 0;    // 0: not waiting on an RNR NAK
  uint8_t retries_left_;
  uint8_t rnr_retries_left_;
  std::optional<uint32_t> gone_back_at_;  // the PSN the last go-back started from

  // Responder state.
  uint32_t epsn_;     // expected PSN
  uint32_t msn_ = 0;  // messages completed (24 bits)
  bool ack_pending_ = false;
  bool nak_sent_ = false;  // a sequence-error NAK went out for the current epsn_
  bool in_send_ = false;   // between SEND FIRST and LAST
  bool in_write_ = false;  // between WRITE FIRST and LAST
  uint64_t write_va_ = 0;
  uint32_t write_rkey_ = 0;
  uint32_t write_length_ = 0;
  uint32_t write_offset_ = 0;
  bool write_bad_ = false;  // the WRITE's RETH failed its check: drop its later segments
  struct AtomicResult {
    uint32_t psn;
    uint64_t original;
  };
  std::deque<AtomicResult> atomic_cache_;  // answers to repeat for duplicate atomics
};

}  // namespace opensrd::rdma::roce

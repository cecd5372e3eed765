#include "rdma/iwarp_qp.h"

#include <algorithm>
#include <cstring>

namespace opensrd::rdma::iwarp {
namespace {

// Terminate layers, error types and codes as numbers (RFC 5040 4.8, 7; RFC 5041 7; RFC 5044 8;
// RFC 6581 for the enhanced start-up codes).
constexpr uint8_t kLayerRdmap = static_cast<uint8_t>(TermLayer::kRdmap);
constexpr uint8_t kLayerDdp = static_cast<uint8_t>(TermLayer::kDdp);
constexpr uint8_t kLayerLlp = static_cast<uint8_t>(TermLayer::kLlp);
constexpr uint8_t kRdmapProt = static_cast<uint8_t>(RdmapErrorType::kRemoteProtection);
constexpr uint8_t kRdmapOp = static_cast<uint8_t>(RdmapErrorType::kRemoteOperation);
constexpr uint8_t kDdpTagged = static_cast<uint8_t>(DdpErrorType::kTaggedBuffer);
constexpr uint8_t kDdpUntagged = static_cast<uint8_t>(DdpErrorType::kUntaggedBuffer);
constexpr uint8_t kLlpMpa = 0;
constexpr uint8_t kMpaCrcError = 0x02;
constexpr uint8_t kMpaFpduStart = 0x03;  // marker and ULPDU length mismatch / bad length
constexpr uint8_t kMpaNoMatchingRtr = 0x07;

template <typename E>
constexpr uint8_t U(E e) {
  return static_cast<uint8_t>(e);
}

TermInfo TaggedViolation(AccessViolation v) {
  switch (v) {
    case AccessViolation::kKey:
      return {kLayerDdp, kDdpTagged, U(DdpTaggedErrorCode::kInvalidStag)};
    case AccessViolation::kBounds:
      return {kLayerDdp, kDdpTagged, U(DdpTaggedErrorCode::kBaseOrBounds)};
    case AccessViolation::kPd:
      return {kLayerDdp, kDdpTagged, U(DdpTaggedErrorCode::kStagNotAssociated)};
    case AccessViolation::kAccess:
      return {kLayerRdmap, kRdmapProt, U(RdmapErrorCode::kAccessRights)};
    case AccessViolation::kNone:
      break;
  }
  return {kLayerRdmap, kRdmapOp, U(RdmapErrorCode::kUnspecified)};
}

TermInfo ReadViolation(AccessViolation v) {
  switch (v) {
    case AccessViolation::kKey:
      return {kLayerRdmap, kRdmapProt, U(RdmapErrorCode::kInvalidStag)};
    case AccessViolation::kBounds:
      return {kLayerRdmap, kRdmapProt, U(RdmapErrorCode::kBaseOrBounds)};
    case AccessViolation::kAccess:
      return {kLayerRdmap, kRdmapProt, U(RdmapErrorCode::kAccessRights)};
    case AccessViolation::kPd:
      return {kLayerRdmap, kRdmapProt, U(RdmapErrorCode::kStagNotAssociated)};
    case AccessViolation::kNone:
      break;
  }
  return {kLayerRdmap, kRdmapOp, U(RdmapErrorCode::kUnspecified)};
}

// The status the requester's oldest outstanding work request gets from a peer's TERMINATE.
WcStatus StatusForTerminate(const TermInfo& t) {
  if (t.layer == kLayerRdmap && t.etype == kRdmapProt) return WcStatus::kRemoteAccessError;
  if (t.layer == kLayerDdp && t.etype == kDdpTagged) return WcStatus::kRemoteAccessError;
  if (t.layer == kLayerDdp && t.etype == kDdpUntagged) return WcStatus::kRemoteInvalidRequest;
  return WcStatus::kRemoteOperationalError;
}

WcOpcode WcOpcodeOf(WrOpcode op) {
  switch (op) {
    case WrOpcode::kRdmaWrite:
      return WcOpcode::kRdmaWrite;
    case WrOpcode::kRdmaRead:
      return WcOpcode::kRdmaRead;
    default:
      return WcOpcode::kSend;
  }
}

uint32_t Be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

}  // namespace

const char* StateName(IwarpQp::State s) {
  switch (s) {
    case IwarpQp::State::kIdle:
      return "idle";
    case IwarpQp::State::kAwaitRequest:
      return "await_request";
    case IwarpQp::State::kAwaitReply:
      return "await_reply";
    case IwarpQp::State::kRts:
      return "rts";
    case IwarpQp::State::kTerminated:
      return "terminated";
  }
  return "?";
}

IwarpQp::IwarpQp(const QpConfig& config, MemoryRegistry& registry)
    : cfg_(config),
      registry_(registry),
      executor_(registry),
      rx_({config.initiator ? mpa::MpaReceiver::Expect::kReply : mpa::MpaReceiver::Expect::kRequest,
           config.crc, 0xFFFF}),
      state_(config.initiator ? State::kIdle : State::kAwaitRequest),
      crc_(config.crc) {
  cfg_.max_segment = std::clamp<uint32_t>(cfg_.max_segment, 1, 0xFFFF - kReadRequestLen - 18);
}

void IwarpQp::Connect() {
  if (state_ != State::kIdle) return;
  mpa::StartFrame f;
  f.reply = false;
  f.flags = cfg_.crc ? mpa::kFlagCrc : 0;
  f.revision = 2;
  if (cfg_.enhanced) {
    mpa::Enhanced e;
    e.peer_to_peer = true;
    e.write_rtr = true;  // the responder picks one of the RTR kinds offered
    e.read_rtr = true;
    e.ird = cfg_.ird;
    e.ord = cfg_.ord;
    f.enhanced = e;
  }
  f.private_data = cfg_.private_data;
  Result<std::vector<uint8_t>> bytes = mpa::EncodeStartFrame(f);
  if (!bytes.ok()) return Fail("bad_config: " + bytes.status().ToString());
  out_.insert(out_.end(), bytes->begin(), bytes->end());
  state_ = State::kAwaitReply;
}

std::span<const uint8_t> IwarpQp::PendingOutput() const {
  return std::span<const uint8_t>(out_).subspan(out_pos_);
}

void IwarpQp::ConsumeOutput(size_t n) {
  n = std::min(n, out_.size() - out_pos_);
  out_consumed_ += n;
  out_pos_ += n;
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
  } else if (out_pos_ > (1u << 20) && out_pos_ > out_.size() / 2) {
    out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(out_pos_));
    out_pos_ = 0;
  }
}

void IwarpQp::OnStreamClosed() {
  if (state_ == State::kTerminated) return;
  Fail("stream_closed: the peer closed the connection");
}

void IwarpQp::OnBytes(std::span<const uint8_t> bytes) {
  if (state_ == State::kTerminated || state_ == State::kIdle) return;
  rx_.Feed(bytes);
  Drain();
  FinishStep();
}

void IwarpQp::Drain() {
  while (state_ != State::kTerminated) {
    Result<mpa::MpaReceiver::Event> ev = rx_.Next();
    if (!ev.ok()) {
      const std::string m = ev.status().message();  // status() returns a copy
      if (state_ != State::kRts) return Fail(m);    // no FPDU channel yet: just close
      uint8_t code = m.rfind("bad_crc", 0) == 0 ? kMpaCrcError : kMpaFpduStart;
      return Terminate({kLayerLlp, kLlpMpa, code}, {}, m);
    }
    if (ev->kind == mpa::MpaReceiver::Event::Kind::kNone) return;
    if (ev->kind == mpa::MpaReceiver::Event::Kind::kStartFrame) {
      OnStartFrame(ev->start);
    } else {
      OnUlpdu(ev->ulpdu);
    }
  }
}

void IwarpQp::OnStartFrame(const mpa::StartFrame& f) {
  peer_private_data_ = f.private_data;
  if (cfg_.initiator) {
    if (f.flags & mpa::kFlagReject) return Fail("rejected: the responder refused (MPA R flag)");
    if (f.flags & mpa::kFlagMarkers) return Fail("markers: the responder wants MPA markers");
    crc_ = cfg_.crc || (f.flags & mpa::kFlagCrc);
    if (cfg_.enhanced && f.enhanced) {
      peer_ird_ = std::max<uint16_t>(1, f.enhanced->ird);
      if (f.enhanced->peer_to_peer) {
        if (f.enhanced->write_rtr) {
          rtr_ = Rtr::kWrite;
        } else if (f.enhanced->read_rtr) {
          rtr_ = Rtr::kRead;
        } else {
          return Fail("bad_rtr: the responder chose no RTR kind this side sends");
        }
      }
    } else {
      peer_ird_ = std::max<uint16_t>(1, cfg_.ord);
    }
    rx_.StartFpdus(crc_);
    state_ = State::kRts;
    // The ready-to-receive message: the responder sends nothing before it.
    if (rtr_ == Rtr::kWrite) {
      RdmaCommand c;
      c.opcode = RdmaOpcode::kWriteLast;
      EmitCommand(c);
    } else if (rtr_ == Rtr::kRead) {
      reads_.push_back({});
      EmitReadRequest(0, 0, 0, 0, 0);
    }
    rtr_ = Rtr::kNone;
    return Pump();
  }

  // Responder: answer the request.
  mpa::StartFrame r;
  r.reply = true;
  r.revision = f.revision;
  r.private_data = cfg_.private_data;
  auto reject = [&](const std::string& why) {
    r.flags = mpa::kFlagReject;
    r.private_data.clear();
    Result<std::vector<uint8_t>> bytes = mpa::EncodeStartFrame(r);
    if (bytes.ok()) out_.insert(out_.end(), bytes->begin(), bytes->end());
    Fail(why);
  };
  if (f.flags & mpa::kFlagMarkers) return reject("markers: the initiator wants MPA markers");
  crc_ = cfg_.crc || (f.flags & mpa::kFlagCrc);
  r.flags = crc_ ? mpa::kFlagCrc : 0;
  if (f.revision == 2 && f.enhanced && cfg_.enhanced) {
    const mpa::Enhanced& in = *f.enhanced;
    mpa::Enhanced e;
    e.peer_to_peer = in.peer_to_peer;
    e.ird = cfg_.ird;
    e.ord = std::min(cfg_.ord, in.ird);
    peer_ird_ = std::max<uint16_t>(1, in.ird);
    if (in.peer_to_peer) {
      if (in.write_rtr) {
        e.write_rtr = true;
        rtr_ = Rtr::kWrite;
      } else if (in.read_rtr) {
        e.read_rtr = true;
        rtr_ = Rtr::kRead;
      } else {
        return reject("bad_rtr: the initiator offers only a SEND RTR, which needs a receive");
      }
    }
    r.enhanced = e;
  } else {
    peer_ird_ = std::max<uint16_t>(1, cfg_.ord);
  }
  Result<std::vector<uint8_t>> bytes = mpa::EncodeStartFrame(r);
  if (!bytes.ok()) return Fail("bad_config: " + bytes.status().ToString());
  out_.insert(out_.end(), bytes->begin(), bytes->end());
  rx_.StartFpdus(crc_);
  state_ = State::kRts;
  Pump();
}

void IwarpQp::OnUlpdu(std::span<const uint8_t> u) {
  ++stats_.fpdus_received;
  last_ulpdu_ = u;
  // Version, opcode and queue checks first, so each gets the terminate code RFC 5040/5041 give.
  const bool tagged = u[0] & 0x80;
  if ((u[0] & 0x03) != kDdpVersion) {
    return Terminate(
        tagged ? TermInfo{kLayerDdp, kDdpTagged, U(DdpTaggedErrorCode::kInvalidDdpVersion)}
               : TermInfo{kLayerDdp, kDdpUntagged, U(DdpUntaggedErrorCode::kInvalidDdpVersion)},
        u, "bad_ddp_version");
  }
  if ((u[1] >> 6) != kRdmapVersion) {
    return Terminate({kLayerRdmap, kRdmapOp, U(RdmapErrorCode::kInvalidRdmapVersion)}, u,
                     "bad_rdmap_version");
  }
  const uint8_t op = u[1] & 0x0F;
  const bool tagged_op = op == U(RdmapOpcode::kWrite) || op == U(RdmapOpcode::kReadResponse);
  if (op > U(RdmapOpcode::kTerminate) || tagged != tagged_op) {
    return Terminate({kLayerRdmap, kRdmapOp, U(RdmapErrorCode::kUnexpectedOpcode)}, u,
                     "unexpected_opcode: RDMAP opcode " + std::to_string(op));
  }
  if (!tagged && u.size() >= kUntaggedHeaderLen) {
    uint32_t qn = Be32(u.data() + 6);
    uint32_t want = op == U(RdmapOpcode::kReadRequest) ? kReadRequestQueue
                    : op == U(RdmapOpcode::kTerminate) ? kTerminateQueue
                                                       : kSendQueue;
    if (qn != want) {
      return Terminate({kLayerDdp, kDdpUntagged, U(DdpUntaggedErrorCode::kInvalidQn)}, u,
                       "bad_qn: DDP queue " + std::to_string(qn));
    }
  }
  Result<RdmaCommand> c = DecodeUlpdu(u);
  if (!c.ok()) {
    return Terminate({kLayerRdmap, kRdmapOp, U(RdmapErrorCode::kUnspecified)}, u,
                     c.status().message());
  }
  bool is_rtr = false;
  if (rtr_ != Rtr::kNone) {
    // Responder: the initiator's first FPDU must be the RTR it was told to send.
    const bool zero_write = Family(c->opcode) == OpcodeFamily::kWrite && c->payload.empty();
    const bool zero_read = c->opcode == RdmaOpcode::kReadRequest && c->dma_length == 0;
    if (!((rtr_ == Rtr::kWrite && zero_write) || (rtr_ == Rtr::kRead && zero_read))) {
      return Terminate({kLayerLlp, kLlpMpa, kMpaNoMatchingRtr}, u, "no_rtr: first FPDU");
    }
    rtr_ = Rtr::kNone;
    is_rtr = true;
  }
  switch (Family(c->opcode)) {
    case OpcodeFamily::kWrite:
      OnWrite(*c);
      break;
    case OpcodeFamily::kSend:
      OnSend(*c);
      break;
    case OpcodeFamily::kReadResponse:
      OnReadResponse(*c);
      break;
    case OpcodeFamily::kSingle:
      if (c->opcode == RdmaOpcode::kReadRequest) {
        OnReadRequest(*c);
      } else {
        OnTerminate(*c);
      }
      break;
  }
  // The RTR is start-up, not a request of the ULP's: it is served but not counted.
  if (is_rtr && state_ == State::kRts) --stats_.requests_executed;
  if (state_ == State::kRts) Pump();  // an RTR may have unblocked our own requests
}

void IwarpQp::OnWrite(const RdmaCommand& cmd) {
  // Each tagged segment places on its own (RFC 5041 3): the executor checks it as a whole WRITE.
  RdmaCommand c = cmd;
  c.opcode = RdmaOpcode::kWriteOnly;
  c.dma_length = static_cast<uint32_t>(cmd.payload.size());
  ExecTarget t{cfg_.pd, &rq_, &wstate_};
  ExecResult r = executor_.Execute(c, t);
  if (r.reply == Reply::kNak) {
    return Terminate(TaggedViolation(r.violation), last_ulpdu_, "write_rejected");
  }
  stats_.bytes_placed += cmd.payload.size();
  if (IsLast(cmd.opcode)) ++stats_.requests_executed;
}

void IwarpQp::OnSend(const RdmaCommand& cmd) {
  if (cmd.msn != expect_send_msn_) {
    return Terminate({kLayerDdp, kDdpUntagged, U(DdpUntaggedErrorCode::kInvalidMsnRange)},
                     last_ulpdu_, "bad_msn: SEND MSN " + std::to_string(cmd.msn));
  }
  if (cmd.message_offset != send_offset_) {
    return Terminate({kLayerDdp, kDdpUntagged, U(DdpUntaggedErrorCode::kInvalidMo)}, last_ulpdu_,
                     "bad_mo: SEND MO " + std::to_string(cmd.message_offset));
  }
  ExecTarget t{cfg_.pd, &rq_, &rstate_};
  ExecResult r = executor_.Execute(cmd, t);
  if (r.recv_completed) completions_.push_back(r.recv_wc);
  if (r.reply == Reply::kRnrNak) {
    return Terminate({kLayerDdp, kDdpUntagged, U(DdpUntaggedErrorCode::kInvalidMsnNoBuffer)},
                     last_ulpdu_, "no_receive: SEND with no receive posted");
  }
  if (r.reply == Reply::kNak) {
    TermInfo ti = r.nak == NakCode::kInvalidRequest
                      ? TermInfo{kLayerDdp, kDdpUntagged, U(DdpUntaggedErrorCode::kMessageTooLong)}
                      : TermInfo{kLayerRdmap, kRdmapOp, U(RdmapErrorCode::kUnspecified)};
    return Terminate(ti, last_ulpdu_, "send_rejected");
  }
  send_offset_ += static_cast<uint32_t>(cmd.payload.size());
  if (IsLast(cmd.opcode)) {
    ++expect_send_msn_;
    send_offset_ = 0;
    ++stats_.requests_executed;
  }
}

void IwarpQp::OnReadRequest(const RdmaCommand& cmd) {
  if (cmd.msn != expect_read_msn_) {
    return Terminate({kLayerDdp, kDdpUntagged, U(DdpUntaggedErrorCode::kInvalidMsnRange)},
                     last_ulpdu_, "bad_msn: READ MSN " + std::to_string(cmd.msn));
  }
  ++expect_read_msn_;
  // The IRD we advertised bounds the READs whose responses are still queued here: a peer
  // sending more while it does not read its socket would otherwise make us buffer up to
  // max_read_bytes per request without limit. A response counts until the stream has taken
  // its last byte, which is before the requester sees it, so a peer within the IRD never trips
  // this. The read queue (QN 1) then has no buffer for the MSN (RFC 5041 7.2).
  while (!inbound_reads_.empty() && inbound_reads_.front() <= out_consumed_) {
    inbound_reads_.pop_front();
  }
  if (inbound_reads_.size() >= std::max<uint16_t>(1, cfg_.ird)) {
    return Terminate({kLayerDdp, kDdpUntagged, U(DdpUntaggedErrorCode::kInvalidMsnNoBuffer)},
                     last_ulpdu_, "ird_exceeded: more READ requests outstanding than the IRD");
  }
  if (cmd.dma_length > cfg_.max_read_bytes) {
    return Terminate({kLayerRdmap, kRdmapOp, U(RdmapErrorCode::kUnspecified)}, last_ulpdu_,
                     "read_too_long: " + std::to_string(cmd.dma_length));
  }
  ExecTarget t{cfg_.pd, &rq_, &wstate_};
  ExecResult r = executor_.Execute(cmd, t);
  if (r.reply != Reply::kReadResponse) {
    return Terminate(ReadViolation(r.violation), last_ulpdu_, "read_rejected");
  }
  // Served at once, in order: the IRD we advertised is never exceeded.
  size_t off = 0;
  do {
    size_t n = std::min<size_t>(cfg_.max_segment, r.read_data.size() - off);
    RdmaCommand c;
    c.opcode = off + n == r.read_data.size() ? RdmaOpcode::kReadResponseLast
                                             : RdmaOpcode::kReadResponseMiddle;
    c.rkey = cmd.sink_stag;
    c.va = cmd.sink_to + off;
    c.payload = r.read_data.subspan(off, n);
    EmitCommand(c);
    off += n;
  } while (off < r.read_data.size());
  inbound_reads_.push_back(out_consumed_ + (out_.size() - out_pos_));
  ++stats_.requests_executed;
}

void IwarpQp::OnReadResponse(const RdmaCommand& cmd) {
  if (reads_.empty()) {
    return Terminate({kLayerRdmap, kRdmapOp, U(RdmapErrorCode::kUnexpectedOpcode)}, last_ulpdu_,
                     "stray_read_response");
  }
  OutstandingRead& rd = reads_.front();
  if (cmd.rkey != rd.sink_stag) {
    return Terminate({kLayerDdp, kDdpTagged, U(DdpTaggedErrorCode::kInvalidStag)}, last_ulpdu_,
                     "bad_sink_stag");
  }
  if (cmd.va != rd.sink_to + rd.received || cmd.payload.size() > rd.length - rd.received) {
    return Terminate({kLayerDdp, kDdpTagged, U(DdpTaggedErrorCode::kBaseOrBounds)}, last_ulpdu_,
                     "bad_sink_to");
  }
  if (!cmd.payload.empty()) {
    uint8_t* at = nullptr;
    LocalSge sge{cmd.va, static_cast<uint32_t>(cmd.payload.size()), rd.sink_stag};
    AccessViolation v = registry_.CheckLocal(sge, cfg_.pd, kAccessLocalWrite, &at);
    if (v != AccessViolation::kNone) return Terminate(TaggedViolation(v), last_ulpdu_, "sink");
    std::memcpy(at, cmd.payload.data(), cmd.payload.size());
    stats_.bytes_placed += cmd.payload.size();
  }
  rd.received += static_cast<uint32_t>(cmd.payload.size());
  if (!IsLast(cmd.opcode)) return;
  if (rd.received != rd.length) {
    return Terminate({kLayerDdp, kDdpTagged, U(DdpTaggedErrorCode::kBaseOrBounds)}, last_ulpdu_,
                     "short_read_response");
  }
  if (rd.wqe != nullptr) rd.wqe->done = true;
  reads_.pop_front();
  CompleteInOrder();
}

void IwarpQp::OnTerminate(const RdmaCommand& cmd) {
  ++stats_.terminates_received;
  term_received_ = true;
  received_term_ = {cmd.term_layer, cmd.term_etype, cmd.term_code};
  error_ = "terminated_by_peer: layer " + std::to_string(cmd.term_layer) + " type " +
           std::to_string(cmd.term_etype) + " code " + std::to_string(cmd.term_code);
  state_ = State::kTerminated;
  FlushAll(StatusForTerminate(received_term_));
}

Status IwarpQp::PostSend(const SendWr& wr) {
  if (state_ == State::kTerminated) {
    return Status(Code::kCancelled, "iwarp queue pair terminated: " + error_);
  }
  if (wr.opcode != WrOpcode::kSend && wr.opcode != WrOpcode::kRdmaWrite &&
      wr.opcode != WrOpcode::kRdmaRead) {
    return Status(Code::kInvalidArgument, "iwarp supports SEND, RDMA_WRITE and RDMA_READ");
  }
  Wqe w;
  w.wr = wr;
  const uint32_t access = wr.opcode == WrOpcode::kRdmaRead ? uint32_t{kAccessLocalWrite} : 0u;
  if (wr.sge.length != 0 &&
      registry_.CheckLocal(wr.sge, cfg_.pd, access, &w.local) != AccessViolation::kNone) {
    w.emitted = true;
    w.done = true;
    w.status = WcStatus::kLocalProtectionError;
  }
  sq_.push_back(w);
  Pump();
  CompleteInOrder();
  FinishStep();
  return Status();
}

Status IwarpQp::PostRecv(const RecvWr& wr) {
  if (state_ == State::kTerminated) {
    return Status(Code::kCancelled, "iwarp queue pair terminated: " + error_);
  }
  if (wr.sge.length != 0) {
    uint8_t* at = nullptr;
    if (registry_.CheckLocal(wr.sge, cfg_.pd, kAccessLocalWrite, &at) != AccessViolation::kNone) {
      return Status(Code::kInvalidArgument, "receive SGE fails its lkey, bounds or access check");
    }
  }
  rq_.posted.push_back(wr);
  return Status();
}

std::vector<WorkCompletion> IwarpQp::TakeCompletions() {
  std::vector<WorkCompletion> out;
  out.swap(completions_);
  return out;
}

void IwarpQp::Pump() {
  if (state_ != State::kRts || rtr_ != Rtr::kNone) return;
  for (Wqe& w : sq_) {
    if (w.emitted) continue;
    if (w.wr.opcode == WrOpcode::kRdmaRead &&
        reads_.size() >= std::min<size_t>(peer_ird_, std::max<uint16_t>(1, cfg_.ord))) {
      break;  // READs beyond the peer's IRD wait; later requests keep their order behind them
    }
    EmitWqe(w);
    if (state_ != State::kRts) return;
  }
  CompleteInOrder();
}

void IwarpQp::EmitWqe(Wqe& w) {
  w.emitted = true;
  const SendWr& wr = w.wr;
  const uint32_t len = wr.sge.length;
  if (wr.opcode == WrOpcode::kRdmaRead) {
    reads_.push_back({&w, wr.sge.lkey, wr.sge.addr, len, 0});
    EmitReadRequest(wr.sge.lkey, wr.sge.addr, len, wr.rkey, wr.remote_addr);
    return;
  }
  const bool send = wr.opcode == WrOpcode::kSend;
  uint32_t off = 0;
  do {
    uint32_t n = std::min(cfg_.max_segment, len - off);
    const bool last = off + n == len;
    RdmaCommand c;
    if (send) {
      c.opcode = Compose(OpcodeFamily::kSend, off == 0, last);
      c.msn = send_msn_;
      c.message_offset = off;
    } else {
      c.opcode = last ? RdmaOpcode::kWriteLast : RdmaOpcode::kWriteMiddle;
      c.rkey = wr.rkey;
      c.va = wr.remote_addr + off;
    }
    c.payload = {w.local + off, n};
    if (n == 0) c.payload = {};
    EmitCommand(c);
    off += n;
  } while (off < len);
  if (send) ++send_msn_;
  w.done = true;  // handed to the stream: TCP delivers it or the connection dies
}

void IwarpQp::EmitReadRequest(uint32_t sink_stag, uint64_t sink_to, uint32_t len, uint32_t src_stag,
                              uint64_t src_to) {
  RdmaCommand c;
  c.opcode = RdmaOpcode::kReadRequest;
  c.msn = read_msn_++;
  c.sink_stag = sink_stag;
  c.sink_to = sink_to;
  c.dma_length = len;
  c.rkey = src_stag;
  c.va = src_to;
  EmitCommand(c);
}

void IwarpQp::EmitCommand(const RdmaCommand& cmd) {
  Result<std::vector<uint8_t>> u = EncodeUlpdu(cmd);
  // Callers hold references into sq_, so a failure here only marks the queue pair; the flush
  // happens once they have returned (FinishStep).
  if (!u.ok()) return MarkFailed("encode: " + u.status().ToString());
  Result<std::vector<uint8_t>> f = mpa::EncodeFpdu(*u, crc_);
  if (!f.ok()) return MarkFailed("encode: " + f.status().ToString());
  out_.insert(out_.end(), f->begin(), f->end());
  ++stats_.fpdus_sent;
}

void IwarpQp::Terminate(TermInfo t, std::span<const uint8_t> offending, const std::string& why) {
  if (state_ == State::kTerminated) return;
  std::vector<uint8_t> hdrs;
  uint8_t hdrct = 0;
  if (!offending.empty()) {
    // M: the segment's length as its FPDU carried it; D: its DDP header; R: a read request's
    // RDMAP header (RFC 5040 4.8).
    hdrct |= kHdrCtSegmentLength;
    hdrs.push_back(static_cast<uint8_t>(offending.size() >> 8));
    hdrs.push_back(static_cast<uint8_t>(offending.size()));
    const bool tagged = offending[0] & 0x80;
    const size_t ddp = tagged ? kTaggedHeaderLen : kUntaggedHeaderLen;
    if (offending.size() >= ddp) {
      hdrct |= kHdrCtDdpHeader;
      hdrs.insert(hdrs.end(), offending.begin(), offending.begin() + ddp);
      const bool read_req = !tagged && (offending[1] & 0x0F) == U(RdmapOpcode::kReadRequest);
      if (read_req && offending.size() >= ddp + kReadRequestLen) {
        hdrct |= kHdrCtRdmapHeader;
        hdrs.insert(hdrs.end(), offending.begin() + ddp, offending.begin() + ddp + kReadRequestLen);
      }
    }
  }
  RdmaCommand c;
  c.opcode = RdmaOpcode::kTerminate;
  c.msn = 1;  // the only message on the terminate queue
  c.term_layer = t.layer;
  c.term_etype = t.etype;
  c.term_code = t.code;
  c.term_hdrct = hdrct;
  c.payload = hdrs;
  EmitCommand(c);
  ++stats_.terminates_sent;
  term_sent_ = true;
  sent_term_ = t;
  error_ = why;
  state_ = State::kTerminated;
  FlushAll(WcStatus::kFlushed);
}

void IwarpQp::Fail(const std::string& why) {
  if (state_ == State::kTerminated) return;
  error_ = why;
  state_ = State::kTerminated;
  FlushAll(WcStatus::kFlushed);
}

void IwarpQp::MarkFailed(const std::string& why) {
  if (state_ == State::kTerminated) return;
  error_ = why;
  state_ = State::kTerminated;
}

void IwarpQp::FinishStep() {
  if (state_ == State::kTerminated && !flushed_) FlushAll(WcStatus::kFlushed);
}

void IwarpQp::FlushAll(WcStatus front_status) {
  flushed_ = true;
  bool front = true;
  for (Wqe& w : sq_) {
    if (w.done) continue;
    w.done = true;
    w.status = front ? front_status : WcStatus::kFlushed;
    front = false;
  }
  CompleteInOrder();
  reads_.clear();
  if (rstate_.in == ResponderState::In::kSend) {
    WorkCompletion wc;
    wc.wr_id = rstate_.recv.wr_id;
    wc.opcode = WcOpcode::kRecv;
    wc.status = WcStatus::kFlushed;
    completions_.push_back(wc);
    rstate_.in = ResponderState::In::kNone;
  }
  for (const RecvWr& r : rq_.posted) {
    WorkCompletion wc;
    wc.wr_id = r.wr_id;
    wc.opcode = WcOpcode::kRecv;
    wc.status = WcStatus::kFlushed;
    completions_.push_back(wc);
  }
  rq_.posted.clear();
}

void IwarpQp::CompleteInOrder() {
  while (!sq_.empty() && sq_.front().done) {
    const Wqe& w = sq_.front();
    WorkCompletion wc;
    wc.wr_id = w.wr.wr_id;
    wc.status = w.status;
    wc.opcode = WcOpcodeOf(w.wr.opcode);
    wc.byte_len = w.wr.sge.length;
    completions_.push_back(wc);
    sq_.pop_front();
  }
}

}  // namespace opensrd::rdma::iwarp

// Writes what opensrd's RoCEv2 and iWARP encoders put on the wire as pcap files for tshark to
// judge (tests/rdma_tshark_test.sh), with a line of expected header values per frame derived
// from the commands (not from the bytes), so the check can fail.
//   roce.pcap   Ethernet/IPv4/UDP:4791 frames, one per RC opcode (every pad count), then the
//               same over IPv6
//   iwarp.pcap  Ethernet/IPv4/TCP: handshake, MPA request and reply (revision 2, enhanced),
//               then one FPDU per segment for every RDMAP opcode and send position
//   *.expect    "frame=N key=value ..." lines
// Usage: rdma_wire_pcap OUTDIR
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "rdma/iwarp.h"
#include "rdma/mpa.h"
#include "rdma/roce.h"
#include "rdma/samples.h"

using namespace opensrd;
using namespace opensrd::rdma;

namespace {

class Pcap {
 public:
  explicit Pcap(const std::string& path) : f_(std::fopen(path.c_str(), "wb")) {
    if (f_ == nullptr) {
      std::perror(path.c_str());
      std::exit(1);
    }
    uint32_t hdr[6] = {0xA1B2C3D4, 0x00040002, 0, 0, 65535, 1};  // v2.4, Ethernet
    std::fwrite(hdr, sizeof(hdr), 1, f_);
  }
  ~Pcap() { std::fclose(f_); }
  // Writes an Ethernet frame around an IPv4 packet; returns its frame number (from 1).
  int Write(const std::vector<uint8_t>& ip) {
    uint8_t kEth[14] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00};
    if ((ip[0] >> 4) == 6) {  // IPv6: ethertype 0x86DD
      kEth[12] = 0x86;
      kEth[13] = 0xDD;
    }
    uint32_t len = static_cast<uint32_t>(ip.size() + sizeof(kEth));
    uint32_t rec[4] = {1700000000u + static_cast<uint32_t>(n_), 0, len, len};
    std::fwrite(rec, sizeof(rec), 1, f_);
    std::fwrite(kEth, sizeof(kEth), 1, f_);
    std::fwrite(ip.data(), ip.size(), 1, f_);
    return ++n_;
  }

 private:
  std::FILE* f_;
  int n_ = 0;
};

// IBTA RC opcode numbers, written here independently of roce.cc's tables.
int IbOpcode(RdmaOpcode op) {
  switch (op) {
    case RdmaOpcode::kSendFirst:
      return 0;
    case RdmaOpcode::kSendMiddle:
      return 1;
    case RdmaOpcode::kSendLast:
      return 2;
    case RdmaOpcode::kSendLastImm:
      return 3;
    case RdmaOpcode::kSendOnly:
      return 4;
    case RdmaOpcode::kSendOnlyImm:
      return 5;
    case RdmaOpcode::kWriteFirst:
      return 6;
    case RdmaOpcode::kWriteMiddle:
      return 7;
    case RdmaOpcode::kWriteLast:
      return 8;
    case RdmaOpcode::kWriteLastImm:
      return 9;
    case RdmaOpcode::kWriteOnly:
      return 10;
    case RdmaOpcode::kWriteOnlyImm:
      return 11;
    case RdmaOpcode::kReadRequest:
      return 12;
    case RdmaOpcode::kReadResponseFirst:
      return 13;
    case RdmaOpcode::kReadResponseMiddle:
      return 14;
    case RdmaOpcode::kReadResponseLast:
      return 15;
    case RdmaOpcode::kReadResponseOnly:
      return 16;
    case RdmaOpcode::kAck:
    case RdmaOpcode::kRnrNak:
    case RdmaOpcode::kNak:
      return 17;
    case RdmaOpcode::kAtomicAck:
      return 18;
    case RdmaOpcode::kCompareSwap:
      return 19;
    case RdmaOpcode::kFetchAdd:
      return 20;
    case RdmaOpcode::kSendLastInv:
      return 22;
    case RdmaOpcode::kSendOnlyInv:
      return 23;
    case RdmaOpcode::kTerminate:
      break;
  }
  return -1;
}

std::string Hex(uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof(b), "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

void WriteRoce(const std::string& dir) {
  Pcap pcap(dir + "/roce.pcap");
  std::FILE* exp = std::fopen((dir + "/roce.expect").c_str(), "w");
  uint16_t id = 0;
  std::vector<RdmaCommand> all = SampleCommands(ProtocolIndex::kRoce);
  size_t n_v4 = all.size();
  all.insert(all.end(), all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n_v4));
  for (size_t i = 0; i < all.size(); ++i) {
    const RdmaCommand& c = all[i];
    roce::Ipv4Udp ip;
    ip.src_ip = 0x7F000001;
    ip.dst_ip = 0x7F000002;
    ip.src_port = static_cast<uint16_t>(49152 + c.dest_qp);  // a source port per QP, as rxe
    ip.ip_id = id;
    id = static_cast<uint16_t>(id * 31 + 7);
    // The second round goes over IPv6 (fd00::1 -> fd00::2, a flow label per QP).
    roce::Ipv6Udp ip6;
    ip6.src_ip = {0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    ip6.dst_ip = {0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    ip6.src_port = ip.src_port;
    ip6.flow_label = c.dest_qp;
    Result<std::vector<uint8_t>> p =
        i < n_v4 ? roce::BuildPacket(ip, c) : roce::BuildPacket6(ip6, c);
    if (!p.ok()) {
      std::fprintf(stderr, "%s: %s\n", OpcodeName(c.opcode), p.status().ToString().c_str());
      std::exit(1);
    }
    int frame = pcap.Write(*p);
    std::string line = "frame=" + std::to_string(frame) + " name=" + OpcodeName(c.opcode) +
                       " opcode=" + std::to_string(IbOpcode(c.opcode)) +
                       " destqp=" + Hex(c.dest_qp) + " psn=" + std::to_string(c.psn) +
                       " a=" + std::to_string((c.flags & kFlagAckRequest) ? 1 : 0) +
                       " se=" + std::to_string((c.flags & kFlagSolicited) ? 1 : 0) +
                       " padcnt=" + std::to_string((4 - c.payload.size() % 4) % 4) +
                       " payload=" + std::to_string(c.payload.size());
    int op = IbOpcode(c.opcode);
    if (op == 6 || op == 10 || op == 11 || op == 12) {
      line +=
          " va=" + Hex(c.va) + " rkey=" + Hex(c.rkey) + " dmalen=" + std::to_string(c.dma_length);
    }
    if (op == 19 || op == 20) {
      line += " va=" + Hex(c.va) + " rkey=" + Hex(c.rkey) + " swap=" + Hex(c.swap_add) +
              " cmp=" + Hex(c.compare);
    }
    if (op == 13 || op == 15 || op == 16 || op == 17 || op == 18) {
      line += " syndrome=" + Hex(c.syndrome) + " msn=" + std::to_string(c.msn);
    }
    if (op == 18) line += " orig=" + Hex(c.atomic_orig);
    if (HasImmediate(c.opcode)) line += " imm=" + Hex(c.imm);
    if (IsInvalidate(c.opcode)) line += " ieth=" + Hex(c.invalidate_rkey);
    std::fprintf(exp, "%s\n", line.c_str());
  }
  std::fclose(exp);
}

// A TCP connection between two loopback addresses with correct sequence numbers, acks and
// checksums, one segment per call.
class TcpFlow {
 public:
  TcpFlow(Pcap& pcap) : pcap_(pcap) {}
  int Send(bool from_a, const std::vector<uint8_t>& payload, uint8_t flags = 0x18) {
    uint32_t src = from_a ? 0x7F000001 : 0x7F000002;
    uint32_t dst = from_a ? 0x7F000002 : 0x7F000001;
    uint16_t sport = from_a ? 40001 : 19321;
    uint16_t dport = from_a ? 19321 : 40001;
    uint32_t& seq = from_a ? seq_a_ : seq_b_;
    uint32_t ack = from_a ? seq_b_ : seq_a_;
    std::vector<uint8_t> p(40 + payload.size());
    uint8_t* h = p.data();
    h[0] = 0x45;
    Put16(h + 2, static_cast<uint16_t>(p.size()));
    Put16(h + 4, id_++);
    Put16(h + 6, 0x4000);
    h[8] = 64;
    h[9] = 6;
    Put32(h + 12, src);
    Put32(h + 16, dst);
    Put16(h + 10, Checksum(h, 20, 0));
    uint8_t* t = h + 20;
    Put16(t, sport);
    Put16(t + 2, dport);
    Put32(t + 4, seq);
    Put32(t + 8, (flags & 0x10) ? ack : 0);
    t[12] = 5 << 4;
    t[13] = flags;
    Put16(t + 14, 65535);
    if (!payload.empty()) std::memcpy(t + 20, payload.data(), payload.size());
    uint32_t pseudo = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + 6 +
                      static_cast<uint32_t>(20 + payload.size());
    Put16(t + 16, Checksum(t, 20 + payload.size(), pseudo));
    seq += static_cast<uint32_t>(payload.size()) + ((flags & 0x02) ? 1 : 0);
    return pcap_.Write(p);
  }

 private:
  static void Put16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
  }
  static void Put32(uint8_t* p, uint32_t v) {
    Put16(p, static_cast<uint16_t>(v >> 16));
    Put16(p + 2, static_cast<uint16_t>(v));
  }
  static uint16_t Checksum(const uint8_t* b, size_t n, uint32_t sum) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(b[i] << 8 | b[i + 1]);
    if (n & 1) sum += static_cast<uint32_t>(b[n - 1] << 8);
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
  }
  Pcap& pcap_;
  uint32_t seq_a_ = 1000, seq_b_ = 900000;
  uint16_t id_ = 1;
};

int RdmapOpcode(const RdmaCommand& c) {  // RFC 5040 4.3, independently of iwarp.cc
  switch (Family(c.opcode)) {
    case OpcodeFamily::kWrite:
      return 0;
    case OpcodeFamily::kReadResponse:
      return 2;
    case OpcodeFamily::kSend: {
      bool inv = IsInvalidate(c.opcode) || (c.flags & kFlagInvalidate);
      bool se = c.flags & kFlagSolicited;
      return se ? (inv ? 6 : 5) : (inv ? 4 : 3);
    }
    case OpcodeFamily::kSingle:
      break;
  }
  return c.opcode == RdmaOpcode::kReadRequest ? 1 : 7;
}

void WriteIwarp(const std::string& dir) {
  Pcap pcap(dir + "/iwarp.pcap");
  std::FILE* exp = std::fopen((dir + "/iwarp.expect").c_str(), "w");
  TcpFlow tcp(pcap);
  tcp.Send(true, {}, 0x02);   // SYN
  tcp.Send(false, {}, 0x12);  // SYN+ACK
  tcp.Send(true, {}, 0x10);   // ACK
  mpa::StartFrame req;
  req.enhanced = mpa::Enhanced{true, false, false, true, 16, 16};
  req.private_data = {'o', 'p', 'e', 'n', 's', 'r', 'd'};
  int f = tcp.Send(true, *mpa::EncodeStartFrame(req));
  std::fprintf(exp, "frame=%d kind=req rev=2 pdlength=11\n", f);
  mpa::StartFrame rep = req;
  rep.reply = true;
  f = tcp.Send(false, *mpa::EncodeStartFrame(rep));
  std::fprintf(exp, "frame=%d kind=rep rev=2 pdlength=11\n", f);
  for (const RdmaCommand& c : SampleCommands(ProtocolIndex::kIwarp)) {
    Result<std::vector<uint8_t>> u = iwarp::EncodeUlpdu(c);
    if (!u.ok()) {
      std::fprintf(stderr, "%s: %s\n", OpcodeName(c.opcode), u.status().ToString().c_str());
      std::exit(1);
    }
    bool from_a = Family(c.opcode) != OpcodeFamily::kReadResponse;
    f = tcp.Send(from_a, *mpa::EncodeFpdu(*u));
    bool tagged =
        Family(c.opcode) == OpcodeFamily::kWrite || Family(c.opcode) == OpcodeFamily::kReadResponse;
    std::string line = "frame=" + std::to_string(f) + " kind=fpdu name=" + OpcodeName(c.opcode) +
                       " ulpdulength=" + std::to_string(u->size()) +
                       " opcode=" + std::to_string(RdmapOpcode(c)) +
                       " tagged=" + std::to_string(tagged ? 1 : 0) +
                       " last=" + std::to_string(IsLast(c.opcode) ? 1 : 0);
    if (tagged) {
      line += " stag=" + Hex(c.rkey) + " to=" + Hex(c.va);
    } else {
      int qn = c.opcode == RdmaOpcode::kReadRequest ? 1
               : c.opcode == RdmaOpcode::kTerminate ? 2
                                                    : 0;
      line += " qn=" + std::to_string(qn) + " msn=" + std::to_string(c.msn) +
              " mo=" + std::to_string(c.message_offset);
    }
    if (c.opcode == RdmaOpcode::kReadRequest) {
      line += " sinkstag=" + Hex(c.sink_stag) + " sinkto=" + Hex(c.sink_to) +
              " rdmardsz=" + std::to_string(c.dma_length) + " srcstag=" + Hex(c.rkey) +
              " srcto=" + Hex(c.va);
    }
    std::fprintf(exp, "%s\n", line.c_str());
  }
  std::fclose(exp);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  WriteRoce(argv[1]);
  WriteIwarp(argv[1]);
  return 0;
}

#include "rdma/ib_cm.h"

#include <algorithm>
#include <cstring>

namespace opensrd::rdma::cm {
namespace {

// Big-endian field access relative to the start of the MAD's data (after its 24-byte header).
class Writer {
 public:
  explicit Writer(uint8_t* data) : d_(data) {}
  void U8(size_t off, uint8_t v) { d_[off] = v; }
  void U16(size_t off, uint16_t v) {
    d_[off] = uint8_t(v >> 8);
    d_[off + 1] = uint8_t(v);
  }
  void U24(size_t off, uint32_t v) {  // the top three bytes of a 32-bit word
    d_[off] = uint8_t(v >> 16);
    d_[off + 1] = uint8_t(v >> 8);
    d_[off + 2] = uint8_t(v);
  }
  void U32(size_t off, uint32_t v) {
    U16(off, uint16_t(v >> 16));
    U16(off + 2, uint16_t(v));
  }
  void U64(size_t off, uint64_t v) {
    U32(off, uint32_t(v >> 32));
    U32(off + 4, uint32_t(v));
  }
  template <size_t N>
  void Bytes(size_t off, const std::array<uint8_t, N>& b) {
    std::memcpy(d_ + off, b.data(), N);
  }

 private:
  uint8_t* d_;
};

class Reader {
 public:
  explicit Reader(const uint8_t* data) : d_(data) {}
  uint8_t U8(size_t off) const { return d_[off]; }
  uint16_t U16(size_t off) const { return uint16_t(d_[off] << 8 | d_[off + 1]); }
  uint32_t U24(size_t off) const {
    return uint32_t{d_[off]} << 16 | uint32_t{d_[off + 1]} << 8 | d_[off + 2];
  }
  uint32_t U32(size_t off) const { return uint32_t{U16(off)} << 16 | U16(off + 2); }
  uint64_t U64(size_t off) const { return uint64_t{U32(off)} << 32 | U32(off + 4); }
  template <size_t N>
  void Bytes(size_t off, std::array<uint8_t, N>* b) const {
    std::memcpy(b->data(), d_ + off, N);
  }

 private:
  const uint8_t* d_;
};

Status Malformed(const char* token) {
  return Status(Code::kMalformed, token);
}

void Put(const Req& m, Writer& w) {
  w.U32(0, m.local_comm_id);
  w.U64(8, m.service_id);
  w.U64(16, m.local_ca_guid);
  w.U32(28, m.local_qkey);
  w.U24(32, m.local_qpn);
  w.U8(35, m.responder_resources);
  w.U8(39, m.initiator_depth);  // local EECN (36-38) stays zero: no EE contexts on RC
  w.U8(43, uint8_t((m.remote_cm_response_timeout & 0x1F) << 3 |
                   (m.transport_service_type & 3) << 1 | (m.end_to_end_flow_control ? 1 : 0)));
  w.U24(44, m.starting_psn);
  w.U8(47, uint8_t((m.local_cm_response_timeout & 0x1F) << 3 | (m.retry_count & 7)));
  w.U16(48, m.pkey);
  w.U8(50, uint8_t((m.path_mtu & 0xF) << 4 | (m.rnr_retry_count & 7)));  // RDC exists: 0
  w.U8(51, uint8_t((m.max_cm_retries & 0xF) << 4 | (m.srq ? 0x08 : 0)));
  w.U16(52, m.primary_local_lid);
  w.U16(54, m.primary_remote_lid);
  w.Bytes(56, m.primary_local_gid);
  w.Bytes(72, m.primary_remote_gid);
  w.U32(88, (m.primary_flow_label & 0xFFFFF) << 12 | (m.primary_packet_rate & 0x3F));
  w.U8(92, m.primary_traffic_class);
  w.U8(93, m.primary_hop_limit);
  w.U8(94, uint8_t((m.primary_sl & 0xF) << 4 | (m.primary_subnet_local ? 0x08 : 0)));
  w.U8(95, uint8_t((m.primary_local_ack_timeout & 0x1F) << 3));
  w.Bytes(140, m.private_data);
}

Req GetReq(const Reader& r) {
  Req m;
  m.local_comm_id = r.U32(0);
  m.service_id = r.U64(8);
  m.local_ca_guid = r.U64(16);
  m.local_qkey = r.U32(28);
  m.local_qpn = r.U24(32);
  m.responder_resources = r.U8(35);
  m.initiator_depth = r.U8(39);
  m.remote_cm_response_timeout = r.U8(43) >> 3;
  m.transport_service_type = (r.U8(43) >> 1) & 3;
  m.end_to_end_flow_control = r.U8(43) & 1;
  m.starting_psn = r.U24(44);
  m.local_cm_response_timeout = r.U8(47) >> 3;
  m.retry_count = r.U8(47) & 7;
  m.pkey = r.U16(48);
  m.path_mtu = r.U8(50) >> 4;
  m.rnr_retry_count = r.U8(50) & 7;
  m.max_cm_retries = r.U8(51) >> 4;
  m.srq = (r.U8(51) & 0x08) != 0;
  m.primary_local_lid = r.U16(52);
  m.primary_remote_lid = r.U16(54);
  r.Bytes(56, &m.primary_local_gid);
  r.Bytes(72, &m.primary_remote_gid);
  m.primary_flow_label = r.U32(88) >> 12;
  m.primary_packet_rate = r.U8(91) & 0x3F;
  m.primary_traffic_class = r.U8(92);
  m.primary_hop_limit = r.U8(93);
  m.primary_sl = r.U8(94) >> 4;
  m.primary_subnet_local = (r.U8(94) & 0x08) != 0;
  m.primary_local_ack_timeout = r.U8(95) >> 3;
  r.Bytes(140, &m.private_data);
  return m;
}

void Put(const Rep& m, Writer& w) {
  w.U32(0, m.local_comm_id);
  w.U32(4, m.remote_comm_id);
  w.U32(8, m.local_qkey);
  w.U24(12, m.local_qpn);
  w.U24(20, m.starting_psn);
  w.U8(24, m.responder_resources);
  w.U8(25, m.initiator_depth);
  w.U8(26, uint8_t((m.target_ack_delay & 0x1F) << 3 | (m.failover_accepted & 3) << 1 |
                   (m.end_to_end_flow_control ? 1 : 0)));
  w.U8(27, uint8_t((m.rnr_retry_count & 7) << 5 | (m.srq ? 0x10 : 0)));
  w.U64(28, m.local_ca_guid);
  w.Bytes(36, m.private_data);
}

Rep GetRep(const Reader& r) {
  Rep m;
  m.local_comm_id = r.U32(0);
  m.remote_comm_id = r.U32(4);
  m.local_qkey = r.U32(8);
  m.local_qpn = r.U24(12);
  m.starting_psn = r.U24(20);
  m.responder_resources = r.U8(24);
  m.initiator_depth = r.U8(25);
  m.target_ack_delay = r.U8(26) >> 3;
  m.failover_accepted = (r.U8(26) >> 1) & 3;
  m.end_to_end_flow_control = r.U8(26) & 1;
  m.rnr_retry_count = r.U8(27) >> 5;
  m.srq = (r.U8(27) & 0x10) != 0;
  m.local_ca_guid = r.U64(28);
  r.Bytes(36, &m.private_data);
  return m;
}

}  // namespace

const char* AttrName(AttrId id) {
  switch (id) {
    case AttrId::kReq:
      return "REQ";
    case AttrId::kMra:
      return "MRA";
    case AttrId::kRej:
      return "REJ";
    case AttrId::kRep:
      return "REP";
    case AttrId::kRtu:
      return "RTU";
    case AttrId::kDreq:
      return "DREQ";
    case AttrId::kDrep:
      return "DREP";
  }
  return "?";
}

AttrId Message::attr() const {
  static constexpr AttrId kIds[] = {AttrId::kReq,  AttrId::kRep, AttrId::kRtu, AttrId::kDreq,
                                    AttrId::kDrep, AttrId::kMra, AttrId::kRej};
  return kIds[body.index()];
}

std::array<uint8_t, kMadLen> EncodeMad(const Message& m) {
  std::array<uint8_t, kMadLen> mad{};
  Writer h(mad.data());
  h.U8(0, 1);  // base version
  h.U8(1, kMgmtClassCm);
  h.U8(2, kCmClassVersion);
  h.U8(3, kMethodSend);
  h.U64(8, m.transaction_id);
  h.U16(16, static_cast<uint16_t>(m.attr()));
  Writer w(mad.data() + kMadHeaderLen);
  std::visit(
      [&w](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, Req> || std::is_same_v<T, Rep>) {
          Put(b, w);
        } else if constexpr (std::is_same_v<T, Rtu> || std::is_same_v<T, Drep>) {
          w.U32(0, b.local_comm_id);
          w.U32(4, b.remote_comm_id);
          w.Bytes(8, b.private_data);
        } else if constexpr (std::is_same_v<T, Dreq>) {
          w.U32(0, b.local_comm_id);
          w.U32(4, b.remote_comm_id);
          w.U24(8, b.remote_qpn);
          w.Bytes(12, b.private_data);
        } else if constexpr (std::is_same_v<T, Mra>) {
          w.U32(0, b.local_comm_id);
          w.U32(4, b.remote_comm_id);
          w.U8(8, uint8_t((b.message_mraed & 3) << 6));
          w.U8(9, uint8_t((b.service_timeout & 0x1F) << 3));
          w.Bytes(10, b.private_data);
        } else {  // Rej
          w.U32(0, b.local_comm_id);
          w.U32(4, b.remote_comm_id);
          w.U8(8, uint8_t((b.message_rejected & 3) << 6));
          w.U8(9, uint8_t((b.reject_info_length & 0x7F) << 1));
          w.U16(10, b.reason);
          w.Bytes(12, b.ari);
          w.Bytes(84, b.private_data);
        }
      },
      m.body);
  return mad;
}

Result<Message> DecodeMad(std::span<const uint8_t> mad) {
  if (mad.size() != kMadLen) return Malformed("bad_length");
  Reader h(mad.data());
  if (h.U8(0) != 1 || h.U8(1) != kMgmtClassCm || h.U8(2) != kCmClassVersion ||
      h.U8(3) != kMethodSend) {
    return Malformed("bad_mad_header");
  }
  Message m;
  m.transaction_id = h.U64(8);
  Reader r(mad.data() + kMadHeaderLen);
  switch (static_cast<AttrId>(h.U16(16))) {
    case AttrId::kReq: {
      Req q = GetReq(r);
      // Only RC (0) is served; MTU codes 1-5 are the defined ones.
      if (q.transport_service_type != 0 || q.path_mtu < 1 || q.path_mtu > 5) {
        return Malformed("bad_field");
      }
      m.body = q;
      break;
    }
    case AttrId::kRep:
      m.body = GetRep(r);
      break;
    case AttrId::kRtu: {
      Rtu b;
      b.local_comm_id = r.U32(0);
      b.remote_comm_id = r.U32(4);
      r.Bytes(8, &b.private_data);
      m.body = b;
      break;
    }
    case AttrId::kDreq: {
      Dreq b;
      b.local_comm_id = r.U32(0);
      b.remote_comm_id = r.U32(4);
      b.remote_qpn = r.U24(8);
      r.Bytes(12, &b.private_data);
      m.body = b;
      break;
    }
    case AttrId::kDrep: {
      Drep b;
      b.local_comm_id = r.U32(0);
      b.remote_comm_id = r.U32(4);
      r.Bytes(8, &b.private_data);
      m.body = b;
      break;
    }
    case AttrId::kMra: {
      Mra b;
      b.local_comm_id = r.U32(0);
      b.remote_comm_id = r.U32(4);
      b.message_mraed = r.U8(8) >> 6;
      b.service_timeout = r.U8(9) >> 3;
      r.Bytes(10, &b.private_data);
      m.body = b;
      break;
    }
    case AttrId::kRej: {
      Rej b;
      b.local_comm_id = r.U32(0);
      b.remote_comm_id = r.U32(4);
      b.message_rejected = r.U8(8) >> 6;
      b.reject_info_length = r.U8(9) >> 1;
      b.reason = r.U16(10);
      r.Bytes(12, &b.ari);
      r.Bytes(84, &b.private_data);
      m.body = b;
      break;
    }
    default:
      return Malformed("unknown_attribute");
  }
  return m;
}

std::vector<uint8_t> EncodeGsiPacket(const Message& m, uint32_t psn) {
  std::vector<uint8_t> p(kGsiPacketLen, 0);
  Writer w(p.data());
  w.U8(0, kUdSendOnly);
  w.U8(1, 0);  // SE 0, M 0, PadCnt 0 (256 bytes), TVer 0
  w.U16(2, 0xFFFF);
  w.U24(5, kGsiQpn);
  w.U24(9, psn & 0xFFFFFF);  // AckReq 0: UD is never acknowledged
  w.U32(12, kGsiQkey);
  w.U24(17, kGsiQpn);  // DETH byte 16 reserved
  auto mad = EncodeMad(m);
  std::memcpy(p.data() + 20, mad.data(), kMadLen);
  return p;
}

bool LooksLikeGsi(std::span<const uint8_t> b) {
  return b.size() >= 12 && b[0] == kUdSendOnly && b[5] == 0 && b[6] == 0 && b[7] == kGsiQpn;
}

Result<Message> DecodeGsiPacket(std::span<const uint8_t> b) {
  if (b.size() != kGsiPacketLen) return Malformed("bad_length");
  Reader r(b.data());
  if (!LooksLikeGsi(b) || (r.U8(1) & 0x30) != 0 || r.U32(12) != kGsiQkey || r.U24(17) != kGsiQpn) {
    return Malformed("not_gsi");
  }
  return DecodeMad(b.subspan(20));
}

void EncodeCmaHeader(const CmaHeader& h, std::span<uint8_t> out) {
  std::fill(out.begin(), out.begin() + kCmaHeaderLen, 0);
  Writer w(out.data());
  w.U8(0, 0x00);  // CMA_VERSION
  w.U8(1, 4 << 4);
  w.U16(2, h.src_port);
  w.U32(16, h.src_ip);  // 4-byte IPv4 at the end of each 16-byte address
  w.U32(32, h.dst_ip);
}

Result<CmaHeader> DecodeCmaHeader(std::span<const uint8_t> in) {
  if (in.size() < kCmaHeaderLen) return Malformed("bad_length");
  Reader r(in.data());
  if (r.U8(0) != 0x00) return Malformed("bad_cma_version");
  if ((r.U8(1) >> 4) != 4) return Malformed("bad_cma_ip_version");
  CmaHeader h;
  h.src_port = r.U16(2);
  h.src_ip = r.U32(16);
  h.dst_ip = r.U32(32);
  return h;
}

}  // namespace opensrd::rdma::cm

// The InfiniBand connection manager's wire format (IBTA vol. 1 chapter 12, as Linux's
// drivers/infiniband/core/cm.c speaks it), for RoCEv2 peers that connect through rdma_cm
// (rping, librdmacm programs): CM messages are 256-byte MADs (management class 0x07, class
// version 2, method Send) carried in unreliable-datagram SEND ONLY packets to QP1 (BTH opcode
// 0x64 + DETH with the GSI Q_Key 0x80010000, source QP 1) on UDP 4791.
//
// Every multi-bit field is big-endian and numbered from the most significant bit, as the
// IBTA tables are ("byte 47 bits 0-4: local CM response timeout" is the top five bits). The
// REQ's private data starts with rdma_cm's 36-byte header (CmaHeader) naming the IP addresses
// and port, so a Linux listener finds its rdma_cm id; the other messages' private data is the
// application's. Pure functions over untrusted bytes; thread-safe.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "common/status.h"

namespace opensrd::rdma::cm {

inline constexpr size_t kMadLen = 256;
inline constexpr size_t kMadHeaderLen = 24;
inline constexpr uint32_t kGsiQpn = 1;
inline constexpr uint32_t kGsiQkey = 0x80010000;
inline constexpr uint8_t kUdSendOnly = 0x64;               // BTH opcode: UD class (0x60) SEND ONLY
inline constexpr size_t kGsiPacketLen = 12 + 8 + kMadLen;  // BTH + DETH + MAD, before ICRC
inline constexpr uint8_t kMgmtClassCm = 0x07;
inline constexpr uint8_t kCmClassVersion = 2;
inline constexpr uint8_t kMethodSend = 0x03;

enum class AttrId : uint16_t {
  kReq = 0x0010,
  kMra = 0x0011,
  kRej = 0x0012,
  kRep = 0x0013,
  kRtu = 0x0014,
  kDreq = 0x0015,
  kDrep = 0x0016,
};
const char* AttrName(AttrId id);

// REJ reasons (IBTA table 112) this code sends or names.
inline constexpr uint16_t kRejInvalidServiceId = 8;
inline constexpr uint16_t kRejTimeout = 1;
inline constexpr uint16_t kRejConsumer = 28;
inline constexpr uint16_t kRejStaleConn = 10;

using Gid = std::array<uint8_t, 16>;

// IBTA table 106 (byte offsets after the MAD header). Alternate-path fields are sent as zero
// (no alternate path) and not kept.
struct Req {
  uint32_t local_comm_id = 0;
  uint64_t service_id = 0;
  uint64_t local_ca_guid = 0;
  uint32_t local_qkey = 0;
  uint32_t local_qpn = 0;  // 24 bits
  uint8_t responder_resources = 0;
  uint8_t initiator_depth = 0;
  uint8_t remote_cm_response_timeout = 20;  // 5 bits: 4.096 us * 2^n
  uint8_t transport_service_type = 0;       // 2 bits: 0 RC
  bool end_to_end_flow_control = false;
  uint32_t starting_psn = 0;  // 24 bits
  uint8_t local_cm_response_timeout = 20;
  uint8_t retry_count = 7;  // 3 bits
  uint16_t pkey = 0xFFFF;
  uint8_t path_mtu = 3;  // 4 bits: 1 256, 2 512, 3 1024, 4 2048, 5 4096
  uint8_t rnr_retry_count = 7;
  uint8_t max_cm_retries = 15;  // 4 bits
  bool srq = false;
  uint16_t primary_local_lid = 0xFFFF;  // RoCE: the permissive LID, as Linux sends
  uint16_t primary_remote_lid = 0xFFFF;
  Gid primary_local_gid{};
  Gid primary_remote_gid{};
  uint32_t primary_flow_label = 0;  // 20 bits
  uint8_t primary_packet_rate = 0;  // 6 bits
  uint8_t primary_traffic_class = 0;
  uint8_t primary_hop_limit = 64;
  uint8_t primary_sl = 0;  // 4 bits
  bool primary_subnet_local = false;
  uint8_t primary_local_ack_timeout = 14;  // 5 bits
  std::array<uint8_t, 92> private_data{};
};

// IBTA table 110.
struct Rep {
  uint32_t local_comm_id = 0;
  uint32_t remote_comm_id = 0;
  uint32_t local_qkey = 0;
  uint32_t local_qpn = 0;  // 24 bits
  uint32_t starting_psn = 0;
  uint8_t responder_resources = 0;
  uint8_t initiator_depth = 0;
  uint8_t target_ack_delay = 0;   // 5 bits
  uint8_t failover_accepted = 0;  // 2 bits
  bool end_to_end_flow_control = false;
  uint8_t rnr_retry_count = 7;  // 3 bits
  bool srq = false;
  uint64_t local_ca_guid = 0;
  std::array<uint8_t, 196> private_data{};
};

// IBTA table 111 (RTU), 119 (DREQ), 120 (DREP), 108 (MRA), 112 (REJ).
struct Rtu {
  uint32_t local_comm_id = 0;
  uint32_t remote_comm_id = 0;
  std::array<uint8_t, 224> private_data{};
};
struct Dreq {
  uint32_t local_comm_id = 0;
  uint32_t remote_comm_id = 0;
  uint32_t remote_qpn = 0;  // 24 bits: the receiver's QP
  std::array<uint8_t, 220> private_data{};
};
struct Drep {
  uint32_t local_comm_id = 0;
  uint32_t remote_comm_id = 0;
  std::array<uint8_t, 224> private_data{};
};
struct Mra {
  uint32_t local_comm_id = 0;
  uint32_t remote_comm_id = 0;
  uint8_t message_mraed = 0;    // 2 bits: 0 REQ, 1 REP, 2 LAP
  uint8_t service_timeout = 0;  // 5 bits
  std::array<uint8_t, 222> private_data{};
};
struct Rej {
  uint32_t local_comm_id = 0;
  uint32_t remote_comm_id = 0;
  uint8_t message_rejected = 0;    // 2 bits: 0 REQ, 1 REP, 2 other
  uint8_t reject_info_length = 0;  // 7 bits
  uint16_t reason = 0;
  std::array<uint8_t, 72> ari{};
  std::array<uint8_t, 148> private_data{};
};

struct Message {
  uint64_t transaction_id = 0;
  std::variant<Req, Rep, Rtu, Dreq, Drep, Mra, Rej> body;
  AttrId attr() const;
};

// The 256-byte MAD: common MAD header (base version 1, class 0x07, version 2, method Send,
// status 0) and the message.
std::array<uint8_t, kMadLen> EncodeMad(const Message& m);
// Errors (kMalformed): "bad_length", "bad_mad_header" (version, class or method),
// "unknown_attribute", "bad_field" (a reserved transport type or MTU).
Result<Message> DecodeMad(std::span<const uint8_t> mad);

// The UD packet that carries a MAD to QP1: BTH (SEND ONLY 0x64, P_Key 0xFFFF, dest QP 1, `psn`)
// + DETH (GSI Q_Key, source QP 1) + MAD; the shell appends the ICRC.
std::vector<uint8_t> EncodeGsiPacket(const Message& m, uint32_t psn);
// BTH onward without the ICRC. Errors: "not_gsi" (opcode, dest QP, Q_Key, source QP, pad),
// "bad_length", and DecodeMad's.
Result<Message> DecodeGsiPacket(std::span<const uint8_t> bytes);
// True if a UDP payload's BTH names the UD SEND ONLY opcode and QP1 (cheap test for the shell).
bool LooksLikeGsi(std::span<const uint8_t> udp_payload);

// rdma_cm's header at the front of a REQ's private data (librdmacm and Linux's cma.c):
// version 0, IP version in the high nibble, the active side's port, then the source and
// destination addresses as 16 bytes each (IPv4: in the last 4).
inline constexpr size_t kCmaHeaderLen = 36;
struct CmaHeader {
  uint16_t src_port = 0;
  uint32_t src_ip = 0;  // host byte order
  uint32_t dst_ip = 0;
};
void EncodeCmaHeader(const CmaHeader& h, std::span<uint8_t> out);  // out: >= 36 bytes
// Errors: "bad_cma_version", "bad_cma_ip_version" (only IPv4 is spoken here).
Result<CmaHeader> DecodeCmaHeader(std::span<const uint8_t> in);

// rdma_cm's service ID for an RDMA_PS_TCP port (rping's default port is 7174).
inline constexpr uint64_t ServiceIdForTcpPort(uint16_t port) {
  return 0x0000000001060000ull | port;
}

}  // namespace opensrd::rdma::cm

// Writes seed inputs for fuzz/roce_fuzz.cc and fuzz/iwarp_fuzz.cc from the encoders (one per
// opcode, in each input shape the harnesses take), as files OUTDIR/{roce,iwarp}/seed-N.
// fuzz/make_rdma_corpus.sh renames them by content hash into fuzz/corpus/.
#include <cstdio>
#include <string>
#include <vector>

#include "rdma/iwarp.h"
#include "rdma/mpa.h"
#include "rdma/native.h"
#include "rdma/roce.h"
#include "rdma/samples.h"

using namespace opensrd::rdma;

namespace {

int n_written = 0;

void Write(const std::string& dir, uint8_t mode, const std::vector<uint8_t>& body) {
  std::string path = dir + "/seed-" + std::to_string(n_written++);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    std::perror(path.c_str());
    std::exit(1);
  }
  std::fputc(mode, f);
  std::fwrite(body.data(), 1, body.size(), f);
  std::fclose(f);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTDIR (with roce/, iwarp/ and rdma_exec/ in it)\n", argv[0]);
    return 2;
  }
  std::string out = argv[1];
  roce::Ipv4Udp ip;
  ip.src_ip = 0x0A000001;
  ip.dst_ip = 0x0A000002;
  ip.src_port = 0xC000;
  for (const RdmaCommand& c : SampleCommands(ProtocolIndex::kRoce)) {
    Write(out + "/roce", 0x03, *roce::EncodeTransport(c));  // sealed over IPv6 by the harness
    std::vector<uint8_t> pkt = *roce::BuildPacket(ip, c);
    Write(out + "/roce", 0x00, pkt);
    Write(out + "/roce", 0x01, *roce::EncodeTransport(c));
    roce::Ipv6Udp ip6;
    ip6.src_ip[15] = 1;
    ip6.dst_ip[15] = 2;
    ip6.src_port = 0xC000;
    Write(out + "/roce", 0x00, *roce::BuildPacket6(ip6, c));
  }
  std::vector<uint8_t> stream_req = *mpa::EncodeStartFrame(
      {false, mpa::kFlagCrc, 2, mpa::Enhanced{true, false, false, true, 16, 16}, {1, 2, 3}});
  std::vector<uint8_t> stream_rep = *mpa::EncodeStartFrame({true, mpa::kFlagCrc, 1, {}, {}});
  for (const RdmaCommand& c : SampleCommands(ProtocolIndex::kIwarp)) {
    std::vector<uint8_t> u = *iwarp::EncodeUlpdu(c);
    Write(out + "/iwarp", 0x02, u);
    std::vector<uint8_t> f = *mpa::EncodeFpdu(u);
    stream_req.insert(stream_req.end(), f.begin(), f.end());
    stream_rep.insert(stream_rep.end(), f.begin(), f.end());
  }
  Write(out + "/iwarp", 0x00 | (63 << 2), stream_req);  // 64-byte chunks
  Write(out + "/iwarp", 0x00 | (6 << 2), stream_req);   // 7-byte chunks
  Write(out + "/iwarp", 0x01 | (15 << 2), stream_rep);  // 16-byte chunks
  // rdma_exec: records [ctl][len16][unit]; each sample with a real rkey and an in-region VA,
  // with a receive posted, and once unchanged (wrong key); plus a WRITE First/Middle/Last run.
  for (ProtocolIndex p : {ProtocolIndex::kNative, ProtocolIndex::kRoce, ProtocolIndex::kIwarp}) {
    for (const RdmaCommand& c : SampleCommands(p)) {
      std::vector<uint8_t> u = p == ProtocolIndex::kNative ? *native::Encode(c)
                               : p == ProtocolIndex::kRoce ? *roce::EncodeTransport(c)
                                                           : *iwarp::EncodeUlpdu(c);
      const uint8_t idx = static_cast<uint8_t>(p);
      for (uint8_t ctl : {uint8_t(idx | 4 | 16 | 32), idx}) {
        std::vector<uint8_t> rec = {static_cast<uint8_t>(u.size() >> 8),
                                    static_cast<uint8_t>(u.size())};
        rec.insert(rec.end(), u.begin(), u.end());
        Write(out + "/rdma_exec", ctl, rec);
      }
    }
  }
  std::printf("%d seeds\n", n_written);
  return 0;
}

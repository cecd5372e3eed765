// Writes seed inputs for fuzz/ib_cm_fuzz.cc from the CM encoders: every message as a GSI
// packet (mode 0) and as a MAD (mode 1), rdma_cm's header (mode 2), and agent runs (mode 3):
// a REQ to the listened service, the REP answering the agent's own REQ, then RTU, DREQ and DREP.
// fuzz/make_ib_cm_corpus.sh renames them by content hash into fuzz/corpus/ib_cm.
#include <cstdio>
#include <string>
#include <vector>

#include "rdma/ib_cm.h"

using namespace opensrd::rdma::cm;

namespace {

int n = 0;

void Write(const std::string& dir, uint8_t mode, const std::vector<uint8_t>& body) {
  const std::string path = dir + "/seed-" + std::to_string(n++);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    std::perror(path.c_str());
    std::exit(1);
  }
  std::fputc(mode, f);
  std::fwrite(body.data(), 1, body.size(), f);
  std::fclose(f);
}

std::vector<uint8_t> Mad(const Message& m) {
  auto a = EncodeMad(m);
  return {a.begin(), a.end()};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  const std::string out = argv[1];
  Req req;
  req.local_comm_id = 0x1111;
  req.service_id = ServiceIdForTcpPort(7174);
  req.local_qpn = 0x42;
  req.starting_psn = 0x777;
  EncodeCmaHeader(CmaHeader{40000, 0x0A000002, 0x0A000001}, req.private_data);
  Rep rep;
  rep.local_comm_id = 0x2222;
  rep.local_qpn = 0x43;
  Rtu rtu{0x2222, 0, {}};
  Dreq dreq{0x2222, 0, 0x123, {}};
  Drep drep{0x2222, 0, {}};
  Mra mra{0x2222, 0, 0, 20, {}};
  Rej rej;
  rej.local_comm_id = 0x2222;
  rej.reason = kRejConsumer;
  const std::vector<Message> all = {Message{1, req},  Message{2, rep},  Message{3, rtu},
                                    Message{4, dreq}, Message{5, drep}, Message{6, mra},
                                    Message{7, rej}};
  for (const Message& m : all) {
    Write(out, 0, EncodeGsiPacket(m, 0x10));
    Write(out, 1, Mad(m));
  }
  uint8_t cma[kCmaHeaderLen];
  EncodeCmaHeader(CmaHeader{7174, 0x0A000001, 0x0A000002}, cma);
  Write(out, 2, std::vector<uint8_t>(cma, cma + kCmaHeaderLen));
  // Agent run: a REQ (accept), its RTU, then a DREQ; and a REQ answered by rejection.
  std::vector<uint8_t> run;
  auto add = [&run](uint8_t ctl, const Message& m) {
    run.push_back(ctl);
    auto a = EncodeMad(m);
    run.insert(run.end(), a.begin(), a.end());
  };
  add(2, Message{1, req});
  add(0, Message{3, rtu});
  add(1, Message{4, dreq});
  add(0, Message{5, drep});
  Write(out, 3, run);
  run.clear();
  add(0, Message{1, req});
  add(9, Message{7, rej});
  add(1, Message{6, mra});
  Write(out, 3, run);
  std::printf("%d seeds\n", n);
  return 0;
}

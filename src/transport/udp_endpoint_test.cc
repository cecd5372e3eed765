// UdpEndpoint over real loopback sockets, driven from one thread: multi-homed paths given as
// explicit (local address, remote address) pairs carry verified messages, and bad options are
// refused with clear errors.
#include "transport/udp_endpoint.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "common/pattern.h"
#include "common/pcap_writer.h"

namespace opensrd {
namespace {

constexpr uint32_t Ip(uint8_t last) {
  return 0x7F000000u | last;
}  // 127.0.0.x

// Moves 200 verified messages over two multi-homed paths; `cork_us` is the client's gso_cork_us.
void TransferOverTwoHomes(Micros cork_us) {
  // Server: two addresses (127.0.0.1 and 127.0.0.2, both on loopback), ephemeral ports.
  UdpEndpointOptions so;
  so.endpoint = {.node_id = 2, .seed = 2};
  so.local = {{Ip(1), 0}, {Ip(2), 0}};
  auto server = UdpEndpoint::Create(so);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  // Client: two addresses of its own; path i goes from its address i to the server's address i.
  UdpEndpointOptions co;
  co.endpoint = {.node_id = 1, .seed = 1};
  co.local = {{Ip(3), 0}, {Ip(4), 0}};
  co.gso_cork_us = cork_us;
  auto client = UdpEndpoint::Create(co);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  UdpEndpoint& s = *server.value();
  UdpEndpoint& c = *client.value();

  Endpoint& se = s.endpoint();
  Endpoint& ce = c.endpoint();
  CqId scq = se.CreateCompletionQueue(), ccq = ce.CreateCompletionQueue();
  SqId sq = ce.CreateSendQueue({.cq = ccq}).value();
  PeerId peer = ce.AddPeer({{0, s.local_address(0)}, {1, s.local_address(1)}}, c.NowNs()).value();
  constexpr int kMessages = 200;
  constexpr size_t kSize = 20000;
  std::vector<std::vector<uint8_t>> rbufs(16, std::vector<uint8_t>(kSize));
  for (size_t i = 0; i < rbufs.size(); ++i)
    ASSERT_TRUE(se.PostRecv(scq, rbufs[i].data(), kSize, i).ok());
  std::vector<std::vector<uint8_t>> msgs(kMessages, std::vector<uint8_t>(kSize));
  for (int i = 0; i < kMessages; ++i) {
    FillPattern(i, msgs[i].data(), kSize);
    Sge sge{msgs[i].data(), kSize};
    ASSERT_TRUE(ce.PostSend(sq, peer, {&sge, 1}, i, c.NowNs()).ok());
  }
  int sent = 0, received = 0, bad = 0;
  const Micros deadline = c.Now() + 10'000'000;
  while ((sent < kMessages || received < kMessages) && c.Now() < deadline) {
    ASSERT_TRUE(c.Poll(0).ok());
    ASSERT_TRUE(s.Poll(0).ok());
    Completion done[16];
    size_t n;
    while ((n = ce.PollCompletions(ccq, done)) > 0) {
      for (size_t k = 0; k < n; ++k) sent += done[k].status == Code::kOk;
    }
    while ((n = se.PollCompletions(scq, done)) > 0) {
      for (size_t k = 0; k < n; ++k) {
        const Completion& d = done[k];
        if (d.status != Code::kOk || d.length != kSize ||
            !CheckPattern(d.sq_seq, static_cast<const uint8_t*>(d.buffer), kSize)) {
          ++bad;
        }
        ++received;
        ASSERT_TRUE(se.PostRecv(scq, d.buffer, kSize, d.tag).ok());
      }
    }
  }
  EXPECT_EQ(sent, kMessages);
  EXPECT_EQ(received, kMessages);
  EXPECT_EQ(bad, 0);
  // Both paths carried data, and the server saw each from its own client address.
  for (const PathStats& p : ce.path_stats(peer)) EXPECT_GT(p.sent, 0u) << "path " << p.id;
  ASSERT_EQ(se.peers().size(), 1u);
  const auto learned = se.path_stats(se.peers()[0]);
  ASSERT_EQ(learned.size(), 2u);
  EXPECT_EQ(learned[0].spec.remote.ip, Ip(3));
  EXPECT_EQ(learned[1].spec.remote.ip, Ip(4));
  EXPECT_EQ(learned[0].spec.local_socket, 0);
  EXPECT_EQ(learned[1].spec.local_socket, 1);
}

TEST(UdpEndpoint, MultiHomedPathsCarryVerifiedMessages) {
  TransferOverTwoHomes(0);
}

// Corked GSO sends (bulk senders) hold full-size datagrams for a while; nothing may be lost or
// stuck, including each message's short last packet and the acks.
TEST(UdpEndpoint, CorkedGsoSendsCarryVerifiedMessages) {
  TransferOverTwoHomes(40);
}

TEST(UdpEndpoint, BadOptionsAreRefused) {
  UdpEndpointOptions none;
  auto r = UdpEndpoint::Create(none);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);

  UdpEndpointOptions bad_cfg;
  bad_cfg.local = {{Ip(1), 0}};
  bad_cfg.endpoint.window_packets = 1000;  // not a power of two
  r = UdpEndpoint::Create(bad_cfg);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("window_packets"), std::string::npos)
      << r.status().ToString();

  // Two sockets on one address and port: the second bind fails with a clear error.
  UdpEndpointOptions first;
  first.local = {{Ip(1), 0}};
  auto a = UdpEndpoint::Create(first);
  ASSERT_TRUE(a.ok());
  UdpEndpointOptions clash;
  clash.local = {a.value()->local_address(0)};
  r = UdpEndpoint::Create(clash);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kIoError);
  EXPECT_NE(r.status().message().find("bind"), std::string::npos) << r.status().ToString();
}

// Source ports of the records in a pcap file written by PcapWriter (IPv4, LINKTYPE_RAW).
std::vector<uint16_t> CapturedSourcePorts(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<uint16_t> ports;
  for (size_t at = 24; at + 16 <= b.size();) {
    uint32_t incl;
    std::memcpy(&incl, &b[at + 8], 4);
    at += 16;
    if (at + incl > b.size() || incl < 28) break;
    ports.push_back(static_cast<uint16_t>((b[at + 20] << 8) | b[at + 21]));
    at += incl;
  }
  return ports;
}

// --pcap records what crosses the sockets: sends after the fault injector, receives before it.
// With every datagram duplicated on the client's path, each of its sends is recorded twice and
// each datagram it receives once (although its core sees two copies).
TEST(UdpEndpoint, CaptureRecordsSendsAfterTheInjectorAndReceivesBeforeIt) {
  const std::string path = testing::TempDir() + "udp_endpoint_capture_" +
                           std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
                           ".pcap";
  auto writer = PcapWriter::Open({.path = path});
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  UdpEndpointOptions so;
  so.endpoint = {.node_id = 2, .seed = 2};
  so.local = {{Ip(1), 0}};
  auto server = UdpEndpoint::Create(so);
  ASSERT_TRUE(server.ok());
  UdpEndpointOptions co;
  co.endpoint = {.node_id = 1, .seed = 1};
  co.local = {{Ip(1), 0}};
  co.inject_faults = true;
  co.fault.paths[0].dup = 1.0;
  co.pcap = (*writer)->NewSource();
  auto client = UdpEndpoint::Create(co);
  ASSERT_TRUE(client.ok());
  UdpEndpoint& s = *server.value();
  UdpEndpoint& c = *client.value();
  Endpoint& se = s.endpoint();
  Endpoint& ce = c.endpoint();
  CqId scq = se.CreateCompletionQueue(), ccq = ce.CreateCompletionQueue();
  SqId sq = ce.CreateSendQueue({.cq = ccq}).value();
  PeerId peer = ce.AddPeer({{0, s.local_address(0)}}, c.NowNs()).value();
  std::vector<uint8_t> rbuf(4096), msg(3000, 7);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(se.PostRecv(scq, rbuf.data(), rbuf.size(), i).ok());
  for (int i = 0; i < 4; ++i) {
    Sge sge{msg.data(), msg.size()};
    ASSERT_TRUE(ce.PostSend(sq, peer, {&sge, 1}, i, c.NowNs()).ok());
  }
  int sent = 0;
  const Micros deadline = c.Now() + 5'000'000;
  while (sent < 4 && c.Now() < deadline) {
    ASSERT_TRUE(c.Poll(0).ok());
    ASSERT_TRUE(s.Poll(0).ok());
    Completion done[8];
    sent += static_cast<int>(ce.PollCompletions(ccq, done));
    while (se.PollCompletions(scq, done) > 0) {
    }
  }
  ASSERT_EQ(sent, 4);
  (*writer)->Close();
  EXPECT_EQ((*writer)->stats().dropped, 0u);

  const uint16_t client_port = c.local_address(0).port;
  size_t sends = 0, receives = 0;
  for (uint16_t p : CapturedSourcePorts(path)) ++(p == client_port ? sends : receives);
  const EndpointStats st = ce.stats();
  EXPECT_GT(st.datagrams_out, 0u);
  EXPECT_EQ(sends, c.stats().datagrams_sent);
  EXPECT_EQ(sends, 2 * st.datagrams_out) << "every send recorded as it left the injector";
  EXPECT_EQ(2 * receives, st.datagrams_in) << "every receive recorded before the injector";
  std::remove(path.c_str());
}

}  // namespace
}  // namespace opensrd

namespace opensrd {
namespace {

// An idle endpoint blocks in Poll; a wake fd (here an eventfd another thread writes, as the
// bridge's io_uring does) ends that wait long before its timeout, and the shell's poll fd
// reports readiness to an outside poll loop.
TEST(UdpEndpoint, WakeFdEndsTheWaitAndPollFdIsReadable) {
  UdpEndpointOptions o;
  o.endpoint = {.node_id = 5, .seed = 5};
  o.local = {{Ip(1), 0}};
  o.spin_us = 0;
  auto ep = UdpEndpoint::Create(o);
  ASSERT_TRUE(ep.ok()) << ep.status().ToString();
  UdpEndpoint& u = *ep.value();
  const int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(efd, 0);
  ASSERT_TRUE(u.AddWakeFd(efd).ok());
  ASSERT_TRUE(u.Poll(0).ok());
  std::thread waker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const uint64_t one = 1;
    ASSERT_EQ(write(efd, &one, sizeof one), 8);
  });
  const Micros start = u.Now();
  ASSERT_TRUE(u.Poll(5'000'000).ok());
  const Micros waited = u.Now() - start;
  waker.join();
  EXPECT_LT(waited, 2'000'000u) << "the wake fd must end the 5 s wait";
  pollfd p{u.poll_fd(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 1) << "undrained wake fd: the poll fd is readable";
  uint64_t v;
  ASSERT_EQ(read(efd, &v, sizeof v), 8);
  EXPECT_EQ(poll(&p, 1, 0), 0);
  EXPECT_FALSE(u.AddWakeFd(-1).ok());
  close(efd);
}

}  // namespace
}  // namespace opensrd

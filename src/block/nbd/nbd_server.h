// NbdServer: the socket shell around NbdSession. It listens on `unix:PATH` or `HOST:PORT`
// ([V6ADDR]:PORT), serves one export (one BlockDevice) to any number of connections, and hands
// each connection's requests to the device and its completions back to the session.
//
// Shape: one epoll loop thread owns every socket and every NbdSession. The alternative, a thread
// per connection, needs a reader and a writer thread per connection (device completions arrive
// on the device's threads and `done` must not block on a socket), and a lock around each session;
// the loop keeps each session single-threaded, takes backpressure from the session (a connection
// at its in-flight or buffer limit is simply not read), and a single thread is not the limit: the
// device does the I/O on its own threads, and qemu-nbd, the anchor, is single-threaded too.
// Completions from other threads are queued under a mutex and wake the loop through an eventfd;
// completions that run inside Submit (devices that complete inline) take the same path.
//
// Thread-safety: Start, Stop and the accessors may be called from any one owning thread. The
// device must outlive the server; Stop (and the destructor) waits for every request the device
// holds before returning.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "block/nbd/nbd_session.h"
#include "common/status.h"
#include "opensrd/block.h"

namespace opensrd::block::nbd {

class NbdServer {
 public:
  // A file descriptor the loop also watches, such as a device's completion eventfd: when it is
  // readable the loop calls `ready` on its own thread (FileDevice::Reap, say), so the device's
  // completions and the NBD sessions share one thread.
  struct WatchFd {
    int fd;
    std::function<void()> ready;
  };

  // Binds and listens on `listen` (`unix:PATH` — an existing socket file at PATH is replaced —
  // or `HOST:PORT`, port 0 for any) and starts the loop thread.
  static Result<std::unique_ptr<NbdServer>> Start(BlockDevice& device, const std::string& listen,
                                                  NbdExportConfig config,
                                                  std::vector<WatchFd> watch = {});
  ~NbdServer();
  NbdServer(const NbdServer&) = delete;
  NbdServer& operator=(const NbdServer&) = delete;

  // Stops accepting, ends every connection (their in-flight requests finish first), joins.
  void Stop();
  // The bound address, in the form Start took (`unix:PATH` or `HOST:PORT` with the real port).
  const std::string& address() const { return address_; }

  struct Counters {
    uint64_t connections = 0;  // accepted so far
    uint64_t active = 0;       // open now
    uint64_t requests = 0;     // device submissions
  };
  Counters counters() const;

 private:
  class Loop;
  NbdServer() = default;

  std::string address_;
  std::string unix_path_;  // removed on Stop
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
};

}  // namespace opensrd::block::nbd

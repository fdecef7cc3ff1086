#pragma once
// A TCP forwarder on 127.0.0.1 that stands for the network between two nodes, for process tests
// and benchmarks: what a port forward or a NAT's mapping is to a node started with --advertise,
// and, with a delay, what a WAN link is (this project's machines have no netem). It listens on a
// free port at once; the port it forwards to may be given later (a node prints its bound port
// only once it runs), and connections accepted before then wait for it (up to 20 s). Every byte
// is delivered `delay` after it arrived, in order, each direction on its own — and, with a
// bandwidth, no sooner than the bytes before it take to cross at that rate (a link's
// serialization: propagation delay plus size / bandwidth, queueing behind earlier bytes). It
// counts what it
// carries; what it holds for delivery is not bounded (a test and benchmark aid, not a relay).
// Everything stops (and every thread is joined) in the destructor.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace px::swarm {

class LinkEmulator {
 public:
  // `bits_per_second` 0: no limit.
  explicit LinkEmulator(std::chrono::milliseconds delay = std::chrono::milliseconds(0), double bits_per_second = 0);
  ~LinkEmulator();
  LinkEmulator(const LinkEmulator&) = delete;
  LinkEmulator& operator=(const LinkEmulator&) = delete;

  std::string address() const;  // 127.0.0.1:PORT, what a node behind it advertises
  // Where accepted connections go: a port on 127.0.0.1.
  void forward_to(int port);
  int64_t bytes_carried() const { return bytes_; }
  int connections() const { return connections_; }

 private:
  void accept_loop();
  void pump(int client);
  // One direction of a connection; either side closing ends both.
  void carry(int from, int to, std::atomic<bool>& open);

  const std::chrono::milliseconds delay_;
  const double bits_per_second_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> bytes_{0};
  std::atomic<int> connections_{0};
  std::mutex mutex_;
  std::condition_variable target_ready_;
  int target_port_ = 0;
  std::vector<std::thread> pumps_;
  std::thread acceptor_;
};

}  // namespace px::swarm

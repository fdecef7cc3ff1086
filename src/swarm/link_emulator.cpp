#include "swarm/link_emulator.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>

#include "core/error.h"

namespace px::swarm {

LinkEmulator::LinkEmulator(std::chrono::milliseconds delay, double bits_per_second)
    : delay_(delay), bits_per_second_(bits_per_second) {
  if (!(bits_per_second >= 0)) fail("link emulator: a bandwidth of {} bit/s", bits_per_second);
  listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (listener_ < 0) fail("link emulator: no socket: {}", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listener_, 64) != 0 ||
      ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    const std::string why = std::strerror(errno);
    ::close(listener_);
    fail("link emulator: cannot listen on 127.0.0.1: {}", why);
  }
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

LinkEmulator::~LinkEmulator() {
  stopping_ = true;
  target_ready_.notify_all();
  ::shutdown(listener_, SHUT_RDWR);
  acceptor_.join();
  ::close(listener_);
  std::vector<std::thread> pumps;
  {
    std::lock_guard lock(mutex_);
    pumps.swap(pumps_);  // joined unlocked: a pump waiting for its target takes the mutex
  }
  for (std::thread& t : pumps) t.join();
}

std::string LinkEmulator::address() const { return "127.0.0.1:" + std::to_string(port_); }

void LinkEmulator::forward_to(int port) {
  std::lock_guard lock(mutex_);
  target_port_ = port;
  target_ready_.notify_all();
}

void LinkEmulator::accept_loop() {
  while (!stopping_) {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int client = ::accept(listener_, nullptr, nullptr);
    if (client < 0) continue;
    std::lock_guard lock(mutex_);
    pumps_.emplace_back([this, client] { pump(client); });
  }
}

void LinkEmulator::pump(int client) {
  int port = 0;
  {
    std::unique_lock lock(mutex_);
    target_ready_.wait_for(lock, std::chrono::seconds(20), [&] { return target_port_ > 0 || stopping_; });
    port = target_port_;
  }
  const int server = port > 0 ? ::socket(AF_INET, SOCK_STREAM, 0) : -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(uint16_t(port));
  if (server >= 0 && ::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    // Bytes leave as they come due, each write on its own: no Nagle holding a small write for the
    // ACK of the one before (which a one-way stream gets only after the receiver's delayed-ACK
    // timer, adding tens of ms a frame that no real link adds).
    const int one = 1;
    ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ++connections_;
    std::atomic<bool> open{true};
    std::thread back([&] { carry(server, client, open); });
    carry(client, server, open);
    back.join();
  }
  if (server >= 0) ::close(server);
  ::close(client);
}

void LinkEmulator::carry(int from, int to, std::atomic<bool>& open) {
  using Clock = std::chrono::steady_clock;
  std::mutex m;
  std::condition_variable due;
  std::deque<std::pair<Clock::time_point, std::string>> queue;
  std::thread writer([&] {
    std::unique_lock lock(m);
    while (open && !stopping_) {
      if (queue.empty()) {
        due.wait_for(lock, std::chrono::milliseconds(50));
        continue;
      }
      if (Clock::now() < queue.front().first) {
        due.wait_until(lock, queue.front().first);
        continue;
      }
      std::string bytes = std::move(queue.front().second);
      queue.pop_front();
      lock.unlock();
      for (size_t sent = 0; sent < bytes.size();) {
        const ssize_t n = ::send(to, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
          open = false;
          break;
        }
        sent += size_t(n);
      }
      lock.lock();
    }
  });
  char buf[65536];
  Clock::time_point link_free = Clock::now();  // when the link has sent what is queued
  while (open && !stopping_) {
    pollfd p{from, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::recv(from, buf, sizeof buf, 0);
    if (n <= 0) break;
    bytes_ += n;
    Clock::time_point at = Clock::now() + delay_;
    if (bits_per_second_ > 0) {
      // Serialization: these bytes leave once the link has sent the ones before, at its rate.
      link_free = std::max(link_free, Clock::now()) +
                  std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(double(n) * 8 / bits_per_second_));
      at = std::max(at, link_free + delay_);
    }
    std::lock_guard lock(m);
    queue.emplace_back(at, std::string(buf, size_t(n)));
    due.notify_all();
  }
  // What arrived before the close is still delivered (a peer's last frames), then both stop.
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard lock(m);
      if (queue.empty() || !open) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  open = false;
  due.notify_all();
  writer.join();
  ::shutdown(to, SHUT_RDWR);
}

}  // namespace px::swarm

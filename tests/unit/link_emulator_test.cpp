// swarm/link_emulator.h: bytes cross in order, in both directions, never sooner than the delay
// (and, with a bandwidth, than their size at that rate) — lower bounds only, which no load on
// the machine can break; the emulator stops cleanly with connections open.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "swarm/link_emulator.h"

namespace px::swarm {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(uint16_t(port));
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

// An echo server on a free port: answers one connection with what it reads until it closes.
class Echo {
 public:
  Echo() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listener_, 4);
    socklen_t len = sizeof a;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      const int c = ::accept(listener_, nullptr, nullptr);
      char buf[65536];
      for (ssize_t n; (n = ::recv(c, buf, sizeof buf, 0)) > 0;) ::send(c, buf, size_t(n), MSG_NOSIGNAL);
      ::close(c);
    });
  }
  ~Echo() {
    thread_.join();
    ::close(listener_);
  }
  int port = 0;

 private:
  int listener_ = -1;
  std::thread thread_;
};

std::string read_exactly(int fd, size_t n) {
  std::string out;
  char buf[65536];
  while (out.size() < n) {
    const ssize_t got = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (got <= 0) break;
    out.append(buf, size_t(got));
  }
  return out;
}

int port_of(const std::string& address) { return std::stoi(address.substr(address.rfind(':') + 1)); }

TEST(LinkEmulator, BytesComeBackInOrderNoSoonerThanTwiceTheDelay) {
  Echo echo;
  LinkEmulator link(60ms);
  const int fd = connect_to(port_of(link.address()));  // accepted before the target is known: it waits
  link.forward_to(echo.port);
  std::string message;
  for (int i = 0; i < 1000; ++i) message += char('a' + i % 26);
  const auto start = Clock::now();
  ASSERT_EQ(::send(fd, message.data(), message.size(), 0), ssize_t(message.size()));
  EXPECT_EQ(read_exactly(fd, message.size()), message);
  EXPECT_GE(Clock::now() - start, 120ms);  // there and back
  EXPECT_EQ(link.connections(), 1);
  EXPECT_EQ(link.bytes_carried(), 2 * int64_t(message.size()));
  ::close(fd);
}

TEST(LinkEmulator, ABandwidthSpacesTheBytesOut) {
  Echo echo;
  LinkEmulator link(0ms, 8e6);  // 1 MB/s each way
  link.forward_to(echo.port);
  const int fd = connect_to(port_of(link.address()));
  const std::string message(200000, 'x');
  const auto start = Clock::now();
  std::thread writer([&] { ::send(fd, message.data(), message.size(), 0); });
  EXPECT_EQ(read_exactly(fd, message.size()).size(), message.size());
  writer.join();
  EXPECT_GE(Clock::now() - start, 190ms);  // 200 kB at 1 MB/s, at least once
  ::close(fd);
}

TEST(LinkEmulator, StopsWithAConnectionOpenAndNoTarget) {
  auto link = std::make_unique<LinkEmulator>(10ms);
  const int fd = connect_to(port_of(link->address()));
  link.reset();  // joins its threads: must not hang on the connection waiting for a target
  ::close(fd);
}

}  // namespace
}  // namespace px::swarm

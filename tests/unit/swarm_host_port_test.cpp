// "host:port" parsing, shared by announcement validation and discovery's bootstrap list.
#include "swarm/host_port.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace px::swarm {
namespace {

TEST(AnnouncementHostPort, ParsesNamesIPv4AndBracketedIPv6) {
  HostPort hp = parse_host_port("127.0.0.1:4000");
  EXPECT_EQ(hp.host, "127.0.0.1");
  EXPECT_EQ(hp.port, 4000);
  hp = parse_host_port("node-7.example_net:65535");
  EXPECT_EQ(hp.host, "node-7.example_net");
  EXPECT_EQ(hp.port, 65535);
  hp = parse_host_port("[::1]:1");
  EXPECT_EQ(hp.host, "::1");
  EXPECT_EQ(hp.port, 1);
}

TEST(AnnouncementHostPort, RejectsMalformedEndpoints) {
  for (const char* text : {"", "localhost", ":80", "host:", "host:0", "host:65536", "host:-1", "host:+80",
                           "host:8o", "host:000080", "host: 80", "ho st:80", "host\n:80", "::1:80", "[::1]80",
                           "[::1:80", "[]:80", "[::g]:80", "a:b:80"}) {
    EXPECT_THROW(parse_host_port(text), Error) << "'" << text << "'";
  }
  EXPECT_THROW(parse_host_port(std::string(254, 'a') + ":80"), Error);
  EXPECT_NO_THROW(parse_host_port(std::string(253, 'a') + ":80"));
}

TEST(AnnouncementHostPort, ErrorsQuoteABoundedPrintablePrefix) {
  try {
    parse_host_port(std::string("\x01\xff") + std::string(500, 'x'));
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_LT(message.size(), 200u);
    EXPECT_NE(message.find("'??xxx"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace px::swarm

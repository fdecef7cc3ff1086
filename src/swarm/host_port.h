#pragma once
// "host:port" endpoints as peers announce and users give them (bootstrap peers): parsed and
// checked in one place so the announcement codec and discovery agree on what is valid.
#include <string>
#include <string_view>

namespace px::swarm {

struct HostPort {
  std::string host;  // a DNS name or IPv4 address; an IPv6 address without its brackets
  int port = 0;      // 1..65535
};

// Parses "host:port" or "[ipv6]:port". Throws px::Error naming the text when the host is empty
// or has characters no host name or address has, or the port is not 1..65535.
HostPort parse_host_port(std::string_view text);

}  // namespace px::swarm

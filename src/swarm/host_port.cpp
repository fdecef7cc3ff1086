#include "swarm/host_port.h"

#include <charconv>

#include "core/error.h"

namespace px::swarm {
namespace {

constexpr size_t kMaxHostLength = 253;  // the longest DNS name

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
         c == '_';
}

bool is_ipv6_char(char c) {
  return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' || c == '.';
}

// The text is untrusted (it may come from a peer's announcement), so the message quotes a bounded
// prefix of it with anything unprintable replaced.
std::string quoted(std::string_view text) {
  constexpr size_t kShown = 64;
  std::string shown = "'";
  for (const char c : text.substr(0, kShown)) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
  shown += text.size() > kShown ? "...'" : "'";
  return shown;
}

int parse_port(std::string_view digits, std::string_view text) {
  int port = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (digits.empty() || digits.size() > 5 || ec != std::errc() || end != digits.data() + digits.size() || port < 1 ||
      port > 65535)
    fail("address {}: the port must be a number in 1..65535", quoted(text));
  return port;
}

}  // namespace

HostPort parse_host_port(std::string_view text) {
  std::string_view host;
  std::string_view port;
  bool ipv6 = false;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      fail("address {}: expected [ipv6]:port", quoted(text));
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    ipv6 = true;
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) fail("address {}: expected host:port", quoted(text));
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty() || host.size() > kMaxHostLength)
    fail("address {}: the host must be 1..{} characters", quoted(text), kMaxHostLength);
  for (const char c : host)
    if (!(ipv6 ? is_ipv6_char(c) : is_name_char(c)))
      fail("address {}: the host has a character no host name or address has", quoted(text));
  return {std::string(host), parse_port(port, text)};
}

}  // namespace px::swarm

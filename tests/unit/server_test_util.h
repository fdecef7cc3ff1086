#pragma once
// Shared by the server tests: a Server on an ephemeral 127.0.0.1 port with a FakeEngine,
// always stopped, and helpers to read SSE bodies and talk raw HTTP.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "server/server.h"
#include "unit/eventually.h"
#include "server_fake_engine.h"

namespace px::test {

struct RunningServer {
  std::shared_ptr<FakeEngine> engine = std::make_shared<FakeEngine>();
  std::unique_ptr<server::Server> server;
  int port = 0;

  explicit RunningServer(server::ServerOptions options = {}, bool loaded = true) {
    options.host = "127.0.0.1";
    options.port = 0;
    options.keep_alive_timeout_s = 1;
    options.poll_interval = std::chrono::milliseconds(10);
    server = std::make_unique<server::Server>(options);
    if (loaded) server->set_engine(engine);
    port = server->start();
  }
  ~RunningServer() { server->stop(); }

  httplib::Client client(int timeout_s = 10) const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(timeout_s, 0);
    c.set_write_timeout(timeout_s, 0);
    c.set_connection_timeout(timeout_s, 0);
    return c;
  }
  httplib::Result post(const std::string& path, const std::string& body, const httplib::Headers& headers = {}) const {
    return client().Post(path.c_str(), headers, body, "application/json");
  }
  httplib::Result post(const std::string& path, const nlohmann::json& body, const httplib::Headers& headers = {}) const {
    return post(path, body.dump(), headers);
  }
  httplib::Result get(const std::string& path, const httplib::Headers& headers = {}) const {
    return client().Get(path.c_str(), headers);
  }
};

// The JSON payloads of an SSE body; `done` tells whether it ended with "data: [DONE]".
// Fails the test on any frame that is not "data: ...\n\n".
struct SseBody {
  std::vector<nlohmann::json> chunks;
  bool done = false;
  bool well_framed = true;
};

inline SseBody parse_sse(const std::string& body) {
  SseBody out;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t end = body.find("\n\n", pos);
    if (end == std::string::npos || body.compare(pos, 6, "data: ") != 0 || out.done) {
      out.well_framed = false;
      break;
    }
    const std::string data = body.substr(pos + 6, end - pos - 6);
    if (data == "[DONE]") out.done = true;
    else out.chunks.push_back(nlohmann::json::parse(data));
    pos = end + 2;
  }
  return out;
}

// A connected TCP socket to 127.0.0.1:port (-1 on failure).
inline int connect_raw(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline std::string raw_post(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace px::test

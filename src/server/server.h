#pragma once
// The OpenAI-compatible HTTP server:
//   POST /v1/chat/completions, POST /v1/completions  (JSON or SSE with stream: true)
//   GET  /v1/models, /v1/models/{id}
//   GET  /health   503 {"status":"loading"} until set_engine(), then 200 {"status":"ok"}
//   GET  /metrics  Prometheus text
//   GET  /v1/cluster  the swarm's nodes, pipelines and recent routes (JSON), on swarm nodes
// It talks to the runtime only through px::Engine. The HTTP thread pool is separate from the
// engine, so a slow or vanished client holds one HTTP thread, never the engine or the others.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace px {
class Engine;
}

namespace px::server {

class ServerMetrics;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                          // 0: any free port (see port())
  std::string api_key;                      // non-empty: /v1/* need "Authorization: Bearer <key>"
  std::string model_name;                   // the id clients use; empty: the engine's model_id()
  std::vector<std::string> model_aliases;   // other accepted "model" values (e.g. the file name)
  size_t max_body_bytes = 8u << 20;         // larger bodies get 413
  int http_threads = 64;                    // concurrent connections served
  int keep_alive_timeout_s = 5;             // idle keep-alive connections are closed after this
  int read_timeout_s = 30;                  // a client that stalls while sending its request
  int write_timeout_s = 30;                 // a client that stops reading its response
  std::chrono::milliseconds poll_interval{50};  // how often a waiting response checks its client
  int retry_after_s = 1;                    // Retry-After of a 429 / 503
  std::chrono::milliseconds request_timeout{0};  // > 0: generation ends ("length") after this
  std::function<std::string()> cluster_info;  // JSON text for GET /v1/cluster; empty: 404
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Ends the loading state: requests go to `engine` from now on.
  void set_engine(std::shared_ptr<Engine> engine);

  // Binds host:port (port 0: a free one); returns the bound port. Throws px::Error when the
  // address cannot be bound (in use, no permission, bad host).
  int bind();
  // Serves until stop(); call after bind(). Returns false when the listener failed.
  bool listen();
  // bind() and listen() on a background thread; returns the port once connections are accepted.
  int start();
  // Stops accepting, ends streams in flight and joins the background thread (idempotent).
  void stop();

  int port() const;
  ServerMetrics& metrics();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace px::server

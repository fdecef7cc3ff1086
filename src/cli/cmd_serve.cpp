// `parallax serve`: the OpenAI-compatible HTTP API over one model on this machine.
// The listener starts first (GET /health answers 503 "loading"), then the model loads;
// SIGINT / SIGTERM stop the server cleanly.
#include <spdlog/spdlog.h>

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <thread>

#include "cli/api_options.h"
#include "cli/commands.h"
#include "cli/swarm_command.h"
#include "core/error.h"
#include "runtime/batch_engine.h"
#include "server/server.h"

namespace px::cli {
namespace {

struct ServeArgs {
  std::string model;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string api_key;
  int threads = 0;
  int ctx = 4096;
  int max_queue = 64;
  std::string model_name;
  int http_threads = 64;
  double timeout_s = 0;
  int max_batch_tokens = 512;
  int max_running = 16;
  int64_t kv_cache_mb = 1024;
  bool no_prefix_cache = false;
  // Swarm mode: a worker pinned to these layers, joining through these peers.
  std::string layers;
  std::vector<std::string> peers;
  int p2p_port = 7000;
  ReachArgs reach;
  std::string wire_dtype = "f32";
  int heartbeat_ms = 500;
  int expire_ms = 4000;
  int64_t kv_cache_tokens = 16384;
  std::string credentials;
  bool open = false;
  VerifyArgs verify;
};

// `serve --layers B:E --peer HOST:P2P`: this node joins a swarm holding layers [B, E); it
// serves the API too only when --port is given.
void run_serve_in_swarm(const ServeArgs& args, bool api) {
  SwarmArgs s;
  s.model = args.model;
  s.host = args.host;
  s.port = args.port;
  s.api = api;
  s.p2p_port = args.p2p_port;
  s.reach = args.reach;
  s.peers = args.peers;
  s.layers = args.layers;
  s.threads = args.threads;
  s.ctx = args.ctx;
  s.max_batch_tokens = args.max_batch_tokens;
  s.max_running = args.max_running;
  s.max_queue = args.max_queue;
  s.wire_dtype = args.wire_dtype;
  s.heartbeat_ms = args.heartbeat_ms;
  s.expire_ms = args.expire_ms;
  s.kv_cache_tokens = args.kv_cache_tokens;
  s.api_key = args.api_key;
  s.model_name = args.model_name;
  s.credentials = args.credentials;
  s.open = args.open;
  s.verify = args.verify;
  run_swarm_node(s);
}

void run_serve(const ServeArgs& args) {
  if (args.port < 0 || args.port > 65535) fail("--port {} is not a TCP port (0..65535)", args.port);
  if (args.max_queue < 1) fail("--max-queue {} must be >= 1", args.max_queue);
  if (args.ctx < 2) fail("--ctx {} must be >= 2", args.ctx);
  if (!(args.timeout_s >= 0)) fail("--timeout {} must be >= 0 seconds", args.timeout_s);

  // Signals go to a dedicated thread: block them here before any thread starts (threads
  // inherit the mask), then wait for them with sigwait.
  sigset_t signals = block_stop_signals();

  server::ServerOptions options = api_options(args.host, args.port, args.api_key, args.model, args.model_name);
  options.http_threads = args.http_threads;
  options.request_timeout = std::chrono::milliseconds(static_cast<int64_t>(args.timeout_s * 1000));

  server::Server server(options);
  const int port = server.start();
  spdlog::info("listening on http://{}:{} (model '{}' loading)", args.host, port, options.model_name);

  std::atomic<bool> load_failed{false};
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (!load_failed) spdlog::info("signal {}: stopping", sig);
    server.stop();
  });

  std::shared_ptr<BatchEngine> engine;
  try {
    BatchEngineConfig engine_options;
    engine_options.context_size = args.ctx;
    engine_options.n_threads = args.threads;
    engine_options.max_queue = args.max_queue;
    engine_options.scheduler.max_batch_tokens = args.max_batch_tokens;
    engine_options.scheduler.max_running = args.max_running;
    engine_options.kv_cache_mb = args.kv_cache_mb;
    engine_options.prefix_caching = !args.no_prefix_cache;
    engine = BatchEngine::load(args.model, engine_options, options.model_name);
  } catch (...) {
    load_failed = true;
    pthread_kill(signal_thread.native_handle(), SIGTERM);  // wakes its sigwait
    signal_thread.join();
    throw;
  }
  server.set_engine(engine);
  spdlog::info("ready: model '{}', context {} tokens, up to {} running, queue {}", options.model_name,
               engine->context_size(), args.max_running, args.max_queue);
  signal_thread.join();  // returns after SIGINT / SIGTERM stopped the server
  server.stop();
}

}  // namespace

void register_serve(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve a model over an OpenAI-compatible HTTP API");
  cmd->add_option("-m,--model", args->model, "GGUF model file or Hugging Face model directory")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--host", args->host, "Address to listen on")->capture_default_str();
  auto* port = cmd->add_option("--port", args->port, "TCP port (0: any free port, logged)")->capture_default_str();
  cmd->add_option("--api-key", args->api_key, "Require 'Authorization: Bearer KEY' on /v1/*")
      ->envname("PARALLAX_API_KEY");
  cmd->add_option("-t,--threads", args->threads, "Compute threads (0 = all cores)")->capture_default_str();
  cmd->add_option("-c,--ctx", args->ctx, "Context size per request (capped by the model's)")->capture_default_str();
  cmd->add_option("--max-queue", args->max_queue, "Requests that may wait; more get 429")->capture_default_str();
  cmd->add_option("--max-batch-tokens", args->max_batch_tokens, "Tokens per forward step (decode + prefill chunks)")
      ->capture_default_str();
  cmd->add_option("--max-running", args->max_running, "Sequences decoding at once")->capture_default_str();
  cmd->add_option("--kv-cache-mb", args->kv_cache_mb, "KV cache size in MiB")->capture_default_str();
  cmd->add_flag("--no-prefix-cache", args->no_prefix_cache, "Do not reuse the KV of shared prompt prefixes");
  cmd->add_option("--model-name", args->model_name, "Model id clients use (default: the file name)");
  cmd->add_option("--http-threads", args->http_threads, "Concurrent HTTP connections")->capture_default_str();
  cmd->add_option("--timeout", args->timeout_s, "Seconds a request may generate (0 = no limit)")
      ->capture_default_str();
  cmd->add_option("--layers", args->layers, "Swarm worker holding only layers BEGIN:END (e.g. 0:8)");
  cmd->add_option("--peer", args->peers, "Swarm: host:p2p-port of a node to join through");
  cmd->add_option("--p2p-port", args->p2p_port, "Swarm: peer port (gRPC over TCP, DHT over UDP)")->capture_default_str();
  add_reach_options(cmd, args->reach);
  cmd->add_option("--wire-dtype", args->wire_dtype, "Swarm: hidden states on the wire (f32, f16, bf16, q8)")
      ->capture_default_str();
  cmd->add_option("--heartbeat-ms", args->heartbeat_ms, "Swarm: heartbeat period")->capture_default_str();
  cmd->add_option("--expire-ms", args->expire_ms, "Swarm: a peer not heard from for this long is gone")
      ->capture_default_str();
  cmd->add_option("--kv-cache-tokens", args->kv_cache_tokens, "Swarm: KV cache positions of this stage")
      ->capture_default_str();
  add_trust_options(cmd, args->credentials, args->open);
  add_verify_options(cmd, args->verify);
  cmd->callback([args, port] {
    if (!args->layers.empty() || !args->peers.empty()) return run_serve_in_swarm(*args, port->count() > 0);
    if (!args->credentials.empty() || args->open) fail("--credentials and --open are for swarm nodes (--layers or --peer)");
    run_serve(*args);
  });
}

}  // namespace px::cli

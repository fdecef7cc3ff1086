#pragma once
// What `parallax run`, `join` and `serve --layers/--peer` share: the options of a swarm node
// and the process around it (API server, signals, graceful leave).
#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <vector>

namespace px::cli {

// Verification of results in open swarms, and the test aid that plays a dishonest worker.
struct VerifyArgs {
  double verify_rate = -1;         // heads: share of requests replayed; < 0: 0.05 in open swarms, else 0
  std::string verify = "sample";   // heads: sample (replay a share) | full (two routes per request)
  std::string fault;               // test aid: corrupt | skip-layer | wrong-model
  double fault_scale = 0.01;
  int fault_layer = -1;
  std::string fault_model;
};

// How peers reach a node: --advertise (several), --no-inbound, --relay.
struct ReachArgs {
  std::vector<std::string> advertise;  // HOST:PORT peers dial, preferred first
  bool no_inbound = false;             // no listening peer socket: reached through the nodes it attaches to
  bool relay = false;                  // relays for attached nodes without the default bandwidth cap
};

struct SwarmArgs {
  std::string model;
  std::string host = "127.0.0.1";
  int port = 8000;                 // HTTP API
  bool api = true;                 // serve the API (and be a request head)
  int p2p_port = 7000;
  ReachArgs reach;
  std::vector<std::string> peers;
  bool worker = true;
  std::string layers;              // "B:E" pinned by hand
  bool scheduler = false;
  int threads = 0;
  int ctx = 4096;
  int64_t kv_cache_tokens = 16384;
  int max_batch_tokens = 512;
  int max_running = 16;
  int max_queue = 64;
  double memory_mb = 0;
  int max_layers = 0;
  std::string wire_dtype = "f32";
  int wait_nodes = 1;
  int heartbeat_ms = 500;
  int expire_ms = 4000;
  double route_wait_s = 30;
  double progress_timeout_s = -1;  // < 0: twice the heartbeat deadline
  double drain_s = 30;
  std::string api_key;
  std::string model_name;
  std::string credentials;         // node directory from `parallax swarm invite`
  bool open = false;               // an open swarm: no credentials, any address
  VerifyArgs verify;
};

// Adds the node options (model, addresses, compute, swarm timing) to a subcommand.
void add_swarm_options(CLI::App* cmd, SwarmArgs& args);
// --credentials DIR and --open (also for `status`, which takes --credentials only).
void add_trust_options(CLI::App* cmd, std::string& credentials, bool& open);
// --advertise HOST:PORT, --no-inbound, --relay (run, join, serve --layers).
void add_reach_options(CLI::App* cmd, ReachArgs& reach);
// --verify-rate and the --fault test aid (every command that starts a swarm node).
void add_verify_options(CLI::App* cmd, VerifyArgs& args);
// Runs the node until SIGINT / SIGTERM, then leaves the swarm gracefully.
void run_swarm_node(const SwarmArgs& args);

}  // namespace px::cli

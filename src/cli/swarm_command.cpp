// The process around a swarm node: parse options, start the node and (on request heads) the
// OpenAI-compatible API, wait for a signal, then drain and leave.
#include "cli/swarm_command.h"

#include "cli/api_options.h"

#include <spdlog/spdlog.h>

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>

#include "core/error.h"
#include "server/server.h"
#include "swarm/host_port.h"
#include "swarm/swarm_credentials.h"
#include "swarm/swarm_node.h"

namespace px::cli {
namespace {

swarm::WireDType parse_wire_dtype(const std::string& name) {
  if (name == "f32") return swarm::WireDType::F32;
  if (name == "f16") return swarm::WireDType::F16;
  if (name == "bf16") return swarm::WireDType::BF16;
  if (name == "q8") return swarm::WireDType::Q8;
  fail("--wire-dtype must be f32, f16, bf16 or q8, not '{}'", name);
}

std::optional<LayerRange> parse_layers(const std::string& text) {
  if (text.empty()) return std::nullopt;
  const auto colon = text.find(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument(text);
    size_t used_begin = 0, used_end = 0;
    const int begin = std::stoi(text.substr(0, colon), &used_begin);
    const int end = std::stoi(text.substr(colon + 1), &used_end);
    if (used_begin != colon || used_end != text.size() - colon - 1) throw std::invalid_argument(text);
    return LayerRange{begin, end};
  } catch (const std::logic_error&) {
    fail("--layers '{}' must be BEGIN:END, e.g. 0:16", text);
  }
}

// The test aid that makes a worker play the attacker (runtime/stage_fault.h).
void apply_fault(const VerifyArgs& args, swarm::SwarmNodeConfig& config) {
  if (args.fault.empty()) {
    if (!args.fault_model.empty()) fail("--fault-model is for --fault wrong-model");
    return;
  }
  std::string name = args.fault;
  std::replace(name.begin(), name.end(), '-', '_');
  StageFault& fault = config.stage.fault;
  fault.kind = parse_stage_fault(name);
  fault.corrupt_scale = args.fault_scale;
  fault.skip_layer = args.fault_layer;
  fault.seed = 0x5eed;
  if (!(args.fault_scale > 0)) fail("--fault-scale must be > 0, not {}", args.fault_scale);
  if ((fault.kind == StageFaultKind::WrongModel) != !args.fault_model.empty())
    fail("--fault wrong-model and --fault-model FILE go together");
  config.fault_model_path = args.fault_model;
  spdlog::warn("TEST AID: this node plays a dishonest worker (--fault {})", args.fault);
}

}  // namespace

void add_swarm_options(CLI::App* cmd, SwarmArgs& a) {
  cmd->add_option("-m,--model", a.model, "GGUF model file or Hugging Face model directory (every node has its own copy)")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--host", a.host, "Address to bind (API and peer service)")->capture_default_str();
  cmd->add_option("--p2p-port", a.p2p_port, "Peer port: gRPC over TCP and the DHT over UDP (0: any free port)")
      ->capture_default_str();
  add_reach_options(cmd, a.reach);
  cmd->add_option("-t,--threads", a.threads, "Compute threads (0 = all cores)")->capture_default_str();
  cmd->add_option("-c,--ctx", a.ctx, "Context size per request (capped by the model's)")->capture_default_str();
  cmd->add_option("--kv-cache-tokens", a.kv_cache_tokens, "KV cache positions of this node's stage")->capture_default_str();
  cmd->add_option("--max-batch-tokens", a.max_batch_tokens, "Tokens per forward step")->capture_default_str();
  cmd->add_option("--max-running", a.max_running, "Sequences decoding at once per stage")->capture_default_str();
  cmd->add_option("--memory-mb", a.memory_mb, "Memory offered for weights, in MiB (default: what the OS reports available)");
  cmd->add_option("--max-layers", a.max_layers, "Offer memory for at most this many layers (0: no limit)");
  cmd->add_option("--wire-dtype", a.wire_dtype, "Hidden states on the wire: f32 (exact), f16, bf16 or q8 (int8, a scale per 32 values)")->capture_default_str();
  cmd->add_option("--heartbeat-ms", a.heartbeat_ms, "Heartbeat period; two missed heartbeats mark a peer failed")
      ->capture_default_str();
  cmd->add_option("--expire-ms", a.expire_ms, "A peer not heard from for this long is gone")->capture_default_str();
  cmd->add_option("--route-wait", a.route_wait_s, "Seconds a request waits for a pipeline covering the model")
      ->capture_default_str();
  cmd->add_option("--progress-timeout", a.progress_timeout_s,
                  "Seconds without a token before a request is re-routed (longer when its route's estimate "
                  "says so; doubles per try; 0: off; default: twice the heartbeat deadline)");
  cmd->add_option("--drain", a.drain_s, "Seconds to finish in-flight work after SIGTERM")->capture_default_str();
  add_trust_options(cmd, a.credentials, a.open);
  add_verify_options(cmd, a.verify);
}

void add_reach_options(CLI::App* cmd, ReachArgs& reach) {
  cmd->add_option("--advertise", reach.advertise,
                  "HOST:PORT peers dial to reach this node's peer port, when it differs from --host:--p2p-port "
                  "(port forwarding, containers, a proxy); repeat for several, preferred first");
  cmd->add_flag("--no-inbound", reach.no_inbound,
                "Accept no connections from peers (behind NAT or a firewall): dial out to reachable nodes and be "
                "reached through them (needs --peer)");
  cmd->add_flag("--relay", reach.relay,
                "Relay frames for nodes that accept no connections without the default cap of 10 Mbit/s");
}

void add_verify_options(CLI::App* cmd, VerifyArgs& a) {
  cmd->add_option("--verify-rate", a.verify_rate,
                  "Share of this head's requests replayed through another route to check every stage's "
                  "commitments (0..1; default 0.05 with --open, else 0)");
  cmd->add_option("--verify", a.verify,
                  "Heads of open swarms: sample (replay a share of finished requests, --verify-rate) or full "
                  "(every request on two pipelines with no node in common; a token passes only when both agree)")
      ->check(CLI::IsMember({"sample", "full"}))
      ->capture_default_str();
  cmd->add_option("--fault", a.fault,
                  "TEST AID: play a dishonest worker: corrupt (noise on its output), skip-layer, wrong-model "
                  "(computes with --fault-model), no-commit (sends no commitments)");
  cmd->add_option("--fault-scale", a.fault_scale, "TEST AID: corrupt's noise, relative to each row's RMS")
      ->capture_default_str();
  cmd->add_option("--fault-layer", a.fault_layer, "TEST AID: the layer skip-layer leaves out (default: its range's last)");
  cmd->add_option("--fault-model", a.fault_model, "TEST AID: the file wrong-model computes with")->check(CLI::ExistingPath);
}

void add_trust_options(CLI::App* cmd, std::string& credentials, bool& open) {
  cmd->add_option("--credentials", credentials,
                  "Node credential directory (from `parallax swarm invite`): a private swarm, mutual TLS between "
                  "peers")
      ->envname("PARALLAX_CREDENTIALS");
  cmd->add_flag("--open", open,
                "An open swarm: anyone may join, no credentials (needed to bind beyond 127.0.0.1 without "
                "--credentials)");
}

void run_swarm_node(const SwarmArgs& args) {
  if (args.port < 0 || args.port > 65535) fail("--port {} is not a TCP port (0..65535)", args.port);
  if (args.p2p_port < 0 || args.p2p_port > 65535) fail("--p2p-port {} is not a port (0..65535)", args.p2p_port);
  if (args.heartbeat_ms < 10 || args.expire_ms < args.heartbeat_ms) {
    fail("--heartbeat-ms must be >= 10 and --expire-ms at least as long");
  }
  sigset_t signals = block_stop_signals();

  swarm::SwarmNodeConfig config;
  config.model_path = args.model;
  config.host = args.host;
  config.p2p_port = args.p2p_port;
  for (const std::string& a : args.reach.advertise) {
    try {
      swarm::parse_host_port(a);
    } catch (const Error& e) {
      fail("--advertise {}: {}", a, e.what());
    }
  }
  if (args.reach.advertise.size() > 8) fail("--advertise: at most 8 addresses");
  if (args.reach.no_inbound && !args.reach.advertise.empty()) fail("--no-inbound and --advertise exclude each other");
  if (args.reach.no_inbound && args.peers.empty()) fail("--no-inbound needs --peer: a node it can dial out to");
  if (args.reach.no_inbound && args.reach.relay) fail("--relay needs inbound connections (not with --no-inbound)");
  config.advertise = args.reach.advertise;
  config.no_inbound = args.reach.no_inbound;
  config.relay = args.reach.relay;
  config.peers = args.peers;
  config.worker = args.worker;
  config.layers = parse_layers(args.layers);
  config.scheduler = args.scheduler;
  config.head = args.api;
  config.threads = args.threads;
  config.stage.context_size = args.ctx;
  config.stage.kv_cache_tokens = args.kv_cache_tokens;
  config.stage.scheduler.max_batch_tokens = args.max_batch_tokens;
  config.stage.scheduler.max_running = args.max_running;
  config.memory_bytes = args.memory_mb * 1024 * 1024;
  config.max_layers = args.max_layers;
  config.wire_dtype = parse_wire_dtype(args.wire_dtype);
  config.heartbeat_period = std::chrono::milliseconds(args.heartbeat_ms);
  config.heartbeat_timeout = std::chrono::milliseconds(std::max(2 * args.heartbeat_ms, 200));
  config.expire_after = std::chrono::milliseconds(args.expire_ms);
  config.announce_period = std::chrono::milliseconds(std::max(50, args.expire_ms / 4));
  config.route_wait = std::chrono::milliseconds(int64_t(args.route_wait_s * 1000));
  // Heartbeats find dead and stalled peers within their deadline; the watchdog is for what they
  // cannot see (a message lost on a link that stayed up), so it waits twice as long.
  const auto heartbeat_deadline = config.heartbeat_failures * (config.heartbeat_period + config.heartbeat_timeout);
  config.progress_timeout =
      args.progress_timeout_s >= 0
          ? std::chrono::milliseconds(int64_t(args.progress_timeout_s * 1000))
          : std::max<std::chrono::milliseconds>(std::chrono::seconds(1), 2 * heartbeat_deadline);
  config.wait_nodes = args.wait_nodes;
  config.max_queue = args.max_queue;
  if (!args.credentials.empty() && args.open) fail("--credentials and --open exclude each other: a swarm is private or open");
  if (!args.credentials.empty()) config.credentials = swarm::SwarmCredentials::load(args.credentials);
  config.open_swarm = args.open;
  config.verify_rate = args.verify.verify_rate >= 0 ? args.verify.verify_rate : (args.open ? 0.05 : 0.0);
  if (!(config.verify_rate >= 0 && config.verify_rate <= 1))
    fail("--verify-rate {} must lie in [0, 1]", args.verify.verify_rate);
  config.verify_full = args.verify.verify == "full";
  if (config.verify_full && !args.open)
    fail("--verify full is for open swarms (--open): in a private swarm the stages send no commitments to check");
  apply_fault(args.verify, config);

  // The API listens first (503 "loading" until the node is up), so the node can announce it.
  std::unique_ptr<server::Server> api;
  std::atomic<swarm::SwarmNode*> live_node{nullptr};
  if (args.api) {
    server::ServerOptions options = api_options(args.host, args.port, args.api_key, args.model, args.model_name);
    options.cluster_info = [&live_node] {
      swarm::SwarmNode* node = live_node.load();
      return node ? node->cluster_json() : std::string("{}");
    };
    api = std::make_unique<server::Server>(options);
    config.api_address = fmt::format("{}:{}", args.host, api->start());
  }
  auto node = std::make_unique<swarm::SwarmNode>(config);
  live_node = node.get();
  if (api) api->set_engine(node->engine());
  // One line scripts and tests wait for.
  fmt::print("ready node={} p2p={}{} listen={}\n", node->id(), node->address(),
             api ? " api=" + config.api_address : std::string(), node->listen_address());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: leaving the swarm", sig);
  if (api) api->stop();
  live_node = nullptr;
  node->leave(std::chrono::milliseconds(int64_t(args.drain_s * 1000)));
  node.reset();
}

}  // namespace px::cli

// `parallax bench-swarm`: what cutting a model into a pipeline costs on one machine. It starts
// real processes on 127.0.0.1 — one `parallax serve` holding the whole model (the single node),
// then swarms of 1, 2, 3 ... pinned stages behind a head — and measures each over the same
// OpenAI API with streamed completions: decode tokens/s of one stream and of several, time to
// first token of a long prompt, and the overhead of one network hop.
#include <nlohmann/json.hpp>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <thread>

#include "cli/commands.h"
#include "cli/swarm_harness.h"
#include "core/error.h"
#include "model/model_shard.h"
#include "swarm/credential_authority.h"
#include "swarm/link_emulator.h"

namespace px::cli {
namespace {

using namespace std::chrono_literals;

struct BenchSwarmArgs {
  std::string model;
  std::vector<int> stages = {1, 2, 3};
  int threads = 2;
  int decode_tokens = 64;
  int prompt_tokens = 128;
  int concurrency = 4;
  std::string wire_dtype = "f32";
  int link_delay_ms = 0;  // > 0: every node reached through a forwarder delaying each way (a WAN link)
  double link_mbit = 0;   // > 0: and limiting each direction to this bandwidth
  bool emulated_links() const { return link_delay_ms > 0 || link_mbit > 0; }
  bool every_stage_all_threads = false;
  bool tls = false;  // each pipeline also as a private swarm (mutual TLS), in the same run
  double verify_rate = 0;  // > 0: each pipeline also as an open swarm of two replicas, with and without verification
  bool verify_full = false;  // and with --verify full (both replicas compute every request)
  bool through_relay = false;  // each pipeline also with --no-inbound workers and a --relay node
  bool json = false;
};

// How a measured swarm is run: plaintext, private (mutual TLS) or open with `replicas` of each
// stage and the head verifying a share `verify_rate` of the requests.
struct SwarmMode {
  bool tls = false;
  bool open = false;
  double verify_rate = 0;
  bool verify_full = false;
  int replicas = 1;
  bool relayed = false;  // workers --no-inbound, a --relay node between them
  std::string name() const {
    if (tls) return "+TLS";
    if (relayed) return " via relay";
    if (verify_full) return " x2 open full";
    if (open) return verify_rate > 0 ? fmt::format(" x2 open v={:g}", verify_rate) : std::string(" x2 open");
    return "";
  }
};

struct Measurement {
  std::string setup;
  int threads_per_stage = 0;
  double ttft_s = 0;            // long prompt, one stream
  double decode_tps = 0;        // one stream
  double tpot_s = 0;            // time per output token, one stream
  double aggregate_tps = 0;     // `concurrency` streams
  // Behind emulated links, 2+ stages: what the link into stage 2 (stage 1's hidden states, and
  // whatever else goes to that node) carried per token of the concurrent streams; -1: unknown.
  double hop_bytes_per_token = -1;
  double hop_request_bytes_per_token = -1;  // the same less the link's idle traffic (heartbeats)
  std::vector<double> probed_mbit;          // behind emulated links: the head's probes of its links
};

// `hop_bytes`: when set, the bytes a link has carried so far (read around the concurrent streams).
Measurement measure(const std::string& api, const BenchSwarmArgs& args, int n_vocab,
                    const std::function<int64_t()>& hop_bytes = {}) {
  std::vector<int> prompt(args.prompt_tokens);
  for (int i = 0; i < args.prompt_tokens; ++i) prompt[i] = 1 + (i * 7919) % (n_vocab - 1);
  auto request = [&](const std::vector<int>& p, int n) {
    // logprobs: every token comes as its own event, even one that is part of a character.
    const StreamResult r = stream_completion(
        api, {{"prompt", p}, {"max_tokens", n}, {"temperature", 0}, {"ignore_eos", true}, {"logprobs", 0}});
    if (r.status != 200) fail("completion against {} failed: {}", api, r.error);
    return r;
  };
  request({1, 2, 3}, 4);  // warm up: connections, first-touch of the weights
  Measurement m;
  const StreamResult one = request(prompt, args.decode_tokens);
  m.ttft_s = one.ttft_s;
  m.tpot_s = (one.last_s - one.ttft_s) / std::max(1, one.chunks - 1);
  m.decode_tps = 1.0 / m.tpot_s;
  // Decode throughput of concurrent streams: short prompts, timed from the first token of any
  // stream to the last token of all.
  std::vector<std::future<StreamResult>> streams;
  constexpr int kShortPrompt = 8;
  // What the link carries with no request (heartbeats), per second, to tell the requests' share.
  double idle_bytes_per_second = 0;
  if (hop_bytes) {
    const int64_t idle_start = hop_bytes();
    std::this_thread::sleep_for(2s);
    idle_bytes_per_second = double(hop_bytes() - idle_start) / 2.0;
  }
  const int64_t bytes_before = hop_bytes ? hop_bytes() : 0;
  const auto phase_start = std::chrono::steady_clock::now();
  for (int c = 0; c < args.concurrency; ++c) {
    std::vector<int> p = {1 + c, 2, 3, 4, 5, 6, 7, 8};  // distinct: no prefix sharing
    streams.push_back(std::async(std::launch::async, [&, p] { return request(p, args.decode_tokens); }));
  }
  double decode_start = 1e9, decode_end = 0;
  int total = 0;
  for (auto& s : streams) {
    const StreamResult r = s.get();
    decode_start = std::min(decode_start, r.ttft_s);
    decode_end = std::max(decode_end, r.last_s);
    total += r.chunks - 1;
  }
  m.aggregate_tps = total / std::max(1e-9, decode_end - decode_start);
  if (hop_bytes) {
    // Every prompt row and every decoded token but the last crosses the hop once.
    const int64_t rows = int64_t(args.concurrency) * (kShortPrompt + args.decode_tokens - 1);
    const double carried = double(hop_bytes() - bytes_before);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - phase_start).count();
    m.hop_bytes_per_token = carried / double(std::max<int64_t>(1, rows));
    m.hop_request_bytes_per_token = std::max(0.0, carried - idle_bytes_per_second * seconds) / double(std::max<int64_t>(1, rows));
    m.probed_mbit = probed_link_mbit(api);
  }
  return m;
}

void run_bench_swarm(const BenchSwarmArgs& args) {
  const std::string bin = self_binary();
  auto shard = ModelShard::load(args.model);
  const int n_layers = shard->config().n_layers;
  const int n_vocab = shard->config().n_vocab;
  shard.reset();
  std::vector<Measurement> results;
  auto measure_single_node = [&](int threads) {
    Subprocess serve({bin, "serve", "-m", args.model, "--port", "0", "-t", std::to_string(threads), "--kv-cache-mb", "256"});
    const std::string api = "127.0.0.1:" + await_output(serve, R"(listening on http://127\.0\.0\.1:(\d+))");
    wait_until_serving(api, false);
    Measurement m = measure(api, args, n_vocab);
    m.setup = "single node";
    m.threads_per_stage = threads;
    results.push_back(m);
    serve.signal(SIGTERM);
    serve.wait(20s);
  };
  measure_single_node(args.threads);
  // One stream through S stages of t/S threads each runs the stages one after another: it can
  // at best match one node with t/S threads. Measured too, that bound tells the pipeline's own
  // cost apart from the machine's (one core streams memory slower than two).
  if (!args.every_stage_all_threads && args.threads > 1) measure_single_node(std::max(1, args.threads / 2));
  // Credentials for the TLS runs: a throwaway swarm root and one node credential per process.
  std::string credentials_dir;
  if (args.tls) {
    char pattern[] = "/tmp/parallax-bench-tls-XXXXXX";
    if (!mkdtemp(pattern)) fail("cannot make a temporary directory: {}", errno_text(errno));
    credentials_dir = pattern;
    swarm::create_swarm_root(credentials_dir + "/root", "bench");
  }
  int issued = 0;
  auto trust = [&](const SwarmMode& mode) -> std::vector<std::string> {
    if (mode.open) return {"--open"};
    if (!mode.tls) return {};
    const std::string name = fmt::format("node{}", issued++);
    swarm::issue_node_credential(credentials_dir + "/root", credentials_dir + "/" + name, name, 1);
    return {"--credentials", credentials_dir + "/" + name};
  };
  auto measure_swarm = [&](int s, const SwarmMode& mode) {
    if (s < 1 || s > n_layers) fail("--stages {}: the model has {} layers", s, n_layers);
    std::vector<std::string> head_args = {"run", "-m", args.model, "--no-worker", "--port", "0", "--p2p-port", "0", "-t", "1"};
    for (const std::string& a : trust(mode)) head_args.push_back(a);
    if (mode.open) head_args.insert(head_args.end(), {"--verify-rate", fmt::format("{}", mode.verify_rate)});
    if (mode.verify_full) head_args.insert(head_args.end(), {"--verify", "full"});
    // With --link-delay-ms / --link-mbit every node is reached only through its own forwarder: a
    // token crosses s + 1 of them (head -> stage 1 -> ... -> stage s -> head).
    std::vector<std::unique_ptr<swarm::LinkEmulator>> links;
    auto behind_link = [&](std::vector<std::string>& node_args) {
      if (!args.emulated_links()) return;
      links.push_back(std::make_unique<swarm::LinkEmulator>(std::chrono::milliseconds(args.link_delay_ms),
                                                            args.link_mbit * 1e6));
      node_args.insert(node_args.end(), {"--advertise", links.back()->address()});
    };
    auto started = [&](StartedNode node) {
      if (args.emulated_links()) links.back()->forward_to(node.listen_port);
      return node;
    };
    behind_link(head_args);
    StartedNode head = started(start_node(head_args));
    const std::string p2p = head.p2p, api = head.api;
    // --through-relay: the workers accept no connections; what the head does not send them itself
    // (its own attach streams) crosses a `--relay` node, behind its own forwarder.
    std::unique_ptr<Subprocess> relay;
    if (mode.relayed) {
      std::vector<std::string> relay_args = {"join", "-m", args.model, "--no-worker", "--relay", "--peer", p2p,
                                             "--p2p-port", "0", "-t", "1"};
      behind_link(relay_args);
      relay = started(start_node(relay_args)).process;
    }
    // The same threads in total by default; with --all-threads-per-stage every stage gets them
    // all (one stream's stages run one after another, so they do not compete).
    const int per_stage = args.every_stage_all_threads ? args.threads : std::max(1, args.threads / s);
    std::vector<std::unique_ptr<Subprocess>> workers;
    for (int i = 0; i < s * mode.replicas; ++i) {
      const std::string layers = fmt::format("{}:{}", i % s * n_layers / s, (i % s + 1) * n_layers / s);
      std::vector<std::string> worker_args = {"serve", "-m", args.model, "--layers", layers, "--peer", p2p, "--p2p-port",
                                              "0", "-t", std::to_string(per_stage), "--wire-dtype", args.wire_dtype};
      for (const std::string& a : trust(mode)) worker_args.push_back(a);
      if (mode.relayed) {
        worker_args.push_back("--no-inbound");  // reached only down the streams it opens
        workers.push_back(start_node(worker_args).process);
        continue;
      }
      behind_link(worker_args);
      workers.push_back(started(start_node(worker_args)).process);
    }
    wait_until_serving(api, true);
    // links: the head's, then one per worker in stage order (links[2]: into stage 2).
    std::function<int64_t()> hop_bytes;
    if (args.emulated_links() && s >= 2 && mode.replicas == 1 && !mode.relayed) {
      hop_bytes = [&] { return links[2]->bytes_carried(); };
    }
    Measurement m = measure(api, args, n_vocab, hop_bytes);
    m.setup = fmt::format("{} stage{}{}{}", s, s > 1 ? "s" : "", mode.name(),
                          args.emulated_links() ? fmt::format(" +{}ms/{}Mbit", args.link_delay_ms, args.link_mbit) : "");
    m.threads_per_stage = per_stage;
    results.push_back(m);
    for (auto& w : workers) w->signal(SIGTERM);
    head.process->signal(SIGTERM);
    if (relay) relay->signal(SIGTERM);
    for (auto& w : workers) w->wait(20s);
    head.process->wait(20s);
    if (relay) relay->wait(20s);
    return m;
  };
  // TLS cost per hop: a token crosses s + 1 links (head -> stage 1 -> ... -> stage s -> head).
  std::vector<std::pair<int, double>> tls_hop_us;
  // Verification's cost: an open swarm of two replicas per stage with and without it (a replay
  // needs a second route), one stream and `concurrency` streams.
  std::vector<std::tuple<int, double, double>> verify_cost, full_cost, relay_cost;
  for (int s : args.stages) {
    const Measurement plain = measure_swarm(s, {});
    if (args.through_relay) {
      const Measurement relayed = measure_swarm(s, {.relayed = true});
      relay_cost.emplace_back(s, relayed.decode_tps / plain.decode_tps, relayed.aggregate_tps / plain.aggregate_tps);
    }
    if (args.tls) tls_hop_us.push_back({s, (measure_swarm(s, {.tls = true}).tpot_s - plain.tpot_s) / (s + 1) * 1e6});
    if (args.verify_rate > 0 || args.verify_full) {
      const Measurement open = measure_swarm(s, {.open = true, .replicas = 2});
      if (args.verify_rate > 0) {
        const Measurement verified = measure_swarm(s, {.open = true, .verify_rate = args.verify_rate, .replicas = 2});
        verify_cost.emplace_back(s, verified.decode_tps / open.decode_tps, verified.aggregate_tps / open.aggregate_tps);
      }
      if (args.verify_full) {
        const Measurement full = measure_swarm(s, {.open = true, .verify_full = true, .replicas = 2});
        full_cost.emplace_back(s, full.decode_tps / open.decode_tps, full.aggregate_tps / open.aggregate_tps);
      }
    }
  }
  if (!credentials_dir.empty()) std::filesystem::remove_all(credentials_dir);

  // A one-stage swarm computes what the single node does, plus two hops (head -> stage -> head).
  double hop_us = -1;
  for (const Measurement& m : results) {
    if (m.setup == "1 stage") hop_us = (m.tpot_s - results[0].tpot_s) / 2 * 1e6;
  }
  // 2 stages vs the single node with half the threads, one stream.
  const Measurement *half_node = nullptr, *two_stages = nullptr;
  for (const Measurement& m : results) {
    if (m.setup == "single node" && m.threads_per_stage * 2 == args.threads) half_node = &m;
    if (m.setup == "2 stages") two_stages = &m;
  }
  const double two_stage_bound = half_node && two_stages ? two_stages->decode_tps / half_node->decode_tps : 0;
  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const Measurement& m : results) {
      out.push_back({{"setup", m.setup}, {"threads_per_stage", m.threads_per_stage}, {"ttft_s", m.ttft_s},
                     {"decode_tps", m.decode_tps}, {"aggregate_tps", m.aggregate_tps},
                     {"vs_single", m.decode_tps / results[0].decode_tps},
                     {"hop_bytes_per_token", m.hop_bytes_per_token},
                     {"hop_request_bytes_per_token", m.hop_request_bytes_per_token},
                     {"probed_link_mbit", m.probed_mbit}});
    }
    nlohmann::json tls = nlohmann::json::object();
    for (const auto& [stages, us] : tls_hop_us) tls[std::to_string(stages)] = us;
    nlohmann::json verified = nlohmann::json::object();
    for (const auto& [stages, one, many] : verify_cost) verified[std::to_string(stages)] = {{"one_stream", one}, {"streams", many}};
    nlohmann::json relayed = nlohmann::json::object();
    for (const auto& [stages, one, many] : relay_cost) relayed[std::to_string(stages)] = {{"one_stream", one}, {"streams", many}};
    nlohmann::json full = nlohmann::json::object();
    for (const auto& [stages, one, many] : full_cost) full[std::to_string(stages)] = {{"one_stream", one}, {"streams", many}};
    fmt::print("{}\n", nlohmann::json{{"results", out},
                                      {"hop_overhead_us", hop_us},
                                      {"tls_cost_per_hop_us_by_stages", tls},
                                      {"verify_rate", args.verify_rate},
                                      {"verified_vs_unverified_by_stages", verified},
                                      {"verify_full_vs_unverified_by_stages", full},
                                      {"relayed_vs_direct_by_stages", relayed},
                                      {"two_stages_vs_half_threads_node", two_stage_bound},
                                      {"concurrency", args.concurrency}}
                           .dump(1));
    return;
  }
  fmt::print("{:<26}{:>9}{:>12}{:>16}{:>10}{:>20}{:>10}\n", "setup", "threads", "TTFT (s)", "decode tok/s", "vs 1",
             fmt::format("{} streams tok/s", args.concurrency), "vs 1");
  for (const Measurement& m : results) {
    fmt::print("{:<26}{:>9}{:>12.3f}{:>16.1f}{:>9.2f}x{:>20.1f}{:>9.2f}x\n", m.setup,
               fmt::format("{}x{}", m.setup == "single node" ? 1 : std::stoi(m.setup), m.threads_per_stage), m.ttft_s,
               m.decode_tps, m.decode_tps / results[0].decode_tps, m.aggregate_tps,
               m.aggregate_tps / results[0].aggregate_tps);
  }
  for (const Measurement& m : results) {
    if (m.hop_bytes_per_token >= 0) {
      fmt::print("{}: {:.0f} bytes per token on the link into stage 2 ({} streams; {:.0f} less its idle traffic, "
                 "the heartbeats)\n",
                 m.setup, m.hop_bytes_per_token, args.concurrency, m.hop_request_bytes_per_token);
    }
    if (!m.probed_mbit.empty()) {
      fmt::print("{}: the head's probes measured its links at {:.1f} to {:.1f} Mbit/s (emulated: {} ms each way, {})\n",
                 m.setup, m.probed_mbit.back(), m.probed_mbit.front(), args.link_delay_ms,
                 args.link_mbit > 0 ? fmt::format("{:g} Mbit/s", args.link_mbit) : std::string("no rate limit"));
    }
  }
  if (hop_us >= 0) fmt::print("per-hop overhead: {:.0f} us (1-stage swarm vs single node, two hops per token)\n", hop_us);
  for (const auto& [stages, us] : tls_hop_us) {
    fmt::print("TLS cost per hop with {} stage(s): {:.0f} us (TLS vs plaintext swarm, {} hops per token)\n", stages,
               us, stages + 1);
  }
  for (const auto& [stages, one, many] : verify_cost) {
    fmt::print("--verify-rate {:g} with {} stage(s) x 2 replicas: {:.2f}x one stream, {:.2f}x {} streams (vs the same open "
               "swarm unverified)\n",
               args.verify_rate, stages, one, many, args.concurrency);
  }
  for (const auto& [stages, one, many] : relay_cost) {
    fmt::print("--no-inbound workers through a --relay node with {} stage(s): {:.2f}x one stream, {:.2f}x {} streams "
               "(vs the same swarm with direct links)\n",
               stages, one, many, args.concurrency);
  }
  for (const auto& [stages, one, many] : full_cost) {
    fmt::print("--verify full with {} stage(s) x 2 replicas: {:.2f}x one stream, {:.2f}x {} streams (vs the same open "
               "swarm unverified)\n",
               stages, one, many, args.concurrency);
  }
  if (two_stage_bound > 0) {
    fmt::print("2 stages vs a single node with {} thread(s), their bound for one stream: {:.2f}x\n", args.threads / 2,
               two_stage_bound);
  }
}

}  // namespace

void register_bench_swarm(CLI::App& app) {
  auto args = std::make_shared<BenchSwarmArgs>();
  CLI::App* cmd = app.add_subcommand("bench-swarm", "Measure pipelines of 1, 2, 3 ... stages against the single node");
  cmd->add_option("-m,--model", args->model, "GGUF model file or Hugging Face model directory")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--stages", args->stages, "Pipeline lengths to measure")->capture_default_str();
  cmd->add_option("-t,--threads", args->threads, "Compute threads in total (split over the stages)")->capture_default_str();
  cmd->add_option("-n,--decode-tokens", args->decode_tokens, "Tokens each stream decodes")->capture_default_str();
  cmd->add_option("-p,--prompt-tokens", args->prompt_tokens, "Prompt length (TTFT)")->capture_default_str();
  cmd->add_option("--concurrency", args->concurrency, "Streams for the aggregate figure")->capture_default_str();
  cmd->add_option("--wire-dtype", args->wire_dtype, "Hidden states on the wire: f32, f16, bf16, q8")->capture_default_str();
  cmd->add_option("--link-delay-ms", args->link_delay_ms,
                  "Reach every swarm node through a forwarder delaying each direction this long (a WAN link; "
                  "0: direct)")
      ->capture_default_str()
      ->check(CLI::Range(0, 10000));
  cmd->add_option("--link-mbit", args->link_mbit,
                  "With the forwarders, limit each direction of every link to this many Mbit/s (0: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_flag("--all-threads-per-stage", args->every_stage_all_threads,
                "Give every stage all the threads instead of splitting them");
  cmd->add_flag("--tls", args->tls, "Also run every pipeline as a private swarm (mutual TLS) and report its cost");
  cmd->add_option("--verify-rate", args->verify_rate,
                  "Also run every pipeline as an open swarm of two replicas per stage, unverified and with this "
                  "--verify-rate, and report the cost");
  cmd->add_flag("--verify-full", args->verify_full,
                "Also run every pipeline as an open swarm of two replicas per stage with --verify full, and report "
                "the cost");
  cmd->add_flag("--through-relay", args->through_relay,
                "Also run every pipeline with --no-inbound workers and a --relay node, and report the cost");
  cmd->add_flag("--json", args->json, "Print one JSON object");
  cmd->callback([args] { run_bench_swarm(*args); });
}

}  // namespace px::cli

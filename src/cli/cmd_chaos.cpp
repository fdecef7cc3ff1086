// `parallax chaos`: requests must survive a swarm whose workers keep failing. It starts a head
// (`run --no-worker`) and workers that `join` (the scheduler cuts the model into pipelines of
// two stages), records every prompt's fault-free output, then runs concurrent streaming clients
// for a while as a random worker is killed (SIGKILL, restarted a moment later) or stalled
// (SIGSTOP ... SIGCONT) every few seconds. It reports requests completed, failed, outputs that
// differ from the fault-free ones, and the longest pause a client saw.
#include <nlohmann/json.hpp>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>

#include "cli/commands.h"
#include "cli/swarm_harness.h"
#include "core/error.h"
#include "model/model_shard.h"

namespace px::cli {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct ChaosArgs {
  std::string model;
  double duration_s = 120;
  int clients = 16;
  int workers = 4;
  int max_layers = 0;          // per worker; 0: half the model (pipelines of two stages)
  double fault_every_s = 5;
  double stall_s = 2;
  int max_tokens = 48;
  int prompts = 32;
  uint64_t seed = 1;
  bool json = false;
};

struct Report {
  int64_t completed = 0, failed = 0, differing = 0;
  int64_t kills = 0, stalls = 0;
  double worst_pause_s = 0;
  std::vector<std::string> failures;  // the first few, for the log
};

nlohmann::json request_body(int prompt, int max_tokens) {
  nlohmann::json body = {{"prompt", fmt::format("chaos prompt {}: the swarm keeps serving", prompt)},
                         {"max_tokens", max_tokens}};
  if (prompt % 2) {
    body["temperature"] = 0.8;
    body["seed"] = 1000 + prompt;
  } else {
    body["temperature"] = 0;
  }
  return body;
}

void run_chaos(const ChaosArgs& args) {
  if (args.workers < 2) fail("--workers must be >= 2 (faults need a second pipeline to move to)");
  const std::vector<std::string> timing = {"--heartbeat-ms", "200", "--expire-ms", "2000", "-t", "1"};
  auto with = [&](std::vector<std::string> a) {
    a.insert(a.end(), timing.begin(), timing.end());
    return a;
  };
  StartedNode head = start_node(with({"run", "-m", args.model, "--no-worker", "--port", "0", "--p2p-port", "0",
                                      "--wait-nodes", std::to_string(args.workers)}));
  // By default half the model per worker: pipelines of two stages, every stage replicated.
  const int n_layers = ModelShard::load(args.model)->config().n_layers;
  const std::string max_layers = std::to_string(args.max_layers > 0 ? args.max_layers : (n_layers + 1) / 2);
  auto worker_args = [&] {
    return with({"join", "-m", args.model, "--peer", head.p2p, "--p2p-port", "0", "--max-layers", max_layers});
  };
  std::vector<std::unique_ptr<Subprocess>> workers;
  for (int i = 0; i < args.workers; ++i) workers.push_back(start_node(worker_args()).process);
  wait_until_serving(head.api, true);

  // The fault-free outputs, from the same swarm before any fault.
  std::vector<std::string> expected(args.prompts);
  for (int p = 0; p < args.prompts; ++p) {
    const StreamResult r = stream_completion(head.api, request_body(p, args.max_tokens));
    if (r.status != 200 || !r.error.empty()) fail("fault-free request {} failed: {}", p, r.error);
    expected[p] = r.text;
  }
  spdlog::info("chaos: {} fault-free outputs recorded; {} clients for {} s", args.prompts, args.clients,
               args.duration_s);

  Report report;
  std::mutex report_mutex;
  std::atomic<bool> stop{false};
  std::atomic<int> next_prompt{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < args.clients; ++c) {
    clients.emplace_back([&] {
      while (!stop) {
        const int p = next_prompt++ % args.prompts;
        const StreamResult r = stream_completion(head.api, request_body(p, args.max_tokens), 120);
        std::lock_guard lock(report_mutex);
        report.worst_pause_s = std::max(report.worst_pause_s, r.worst_gap_s);
        if (r.status != 200 || !r.error.empty()) {
          ++report.failed;
          if (report.failures.size() < 5) report.failures.push_back(fmt::format("prompt {}: {} {}", p, r.status, r.error));
        } else if (r.text != expected[p]) {
          ++report.differing;
        } else {
          ++report.completed;
        }
      }
    });
  }

  // The clients stop and are joined however this scope is left.
  struct JoinClients {
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~JoinClients() {
      stop = true;
      for (auto& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } join_clients{stop, clients};

  std::mt19937_64 rng(args.seed);
  const auto end = Clock::now() + std::chrono::duration<double>(args.duration_s);
  while (Clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::duration<double>(args.fault_every_s));
    if (Clock::now() >= end) break;
    const size_t victim = rng() % workers.size();
    if (!workers[victim]) {
      // Its restart failed last time: try again.
      try {
        workers[victim] = start_node(worker_args()).process;
      } catch (const Error& e) {
        spdlog::warn("chaos: restarting worker {} failed again: {}", victim, e.what());
      }
      continue;
    }
    if (rng() % 3 == 0) {
      spdlog::info("chaos: SIGSTOP worker {} for {} s", victim, args.stall_s);
      workers[victim]->signal(SIGSTOP);
      std::this_thread::sleep_for(std::chrono::duration<double>(args.stall_s));
      workers[victim]->signal(SIGCONT);
      ++report.stalls;
    } else {
      spdlog::info("chaos: SIGKILL worker {}, restarting it", victim);
      workers[victim]->signal(SIGKILL);
      workers[victim]->wait(10s);
      std::this_thread::sleep_for(1s);
      ++report.kills;
      try {
        workers[victim] = start_node(worker_args()).process;  // a new node: the scheduler gives it layers
      } catch (const Error& e) {
        spdlog::warn("chaos: restarting worker {} failed: {}", victim, e.what());
        workers[victim].reset();
      }
    }
  }
  stop = true;
  for (auto& t : clients) t.join();
  for (auto& w : workers) {
    if (w) w->signal(SIGTERM);
  }
  head.process->signal(SIGTERM);
  for (auto& w : workers) {
    if (w) w->wait(20s);
  }
  head.process->wait(20s);

  const int64_t total = report.completed + report.failed + report.differing;
  if (args.json) {
    fmt::print("{}\n", nlohmann::json{{"requests", total},
                                      {"completed", report.completed},
                                      {"failed", report.failed},
                                      {"differing", report.differing},
                                      {"kills", report.kills},
                                      {"stalls", report.stalls},
                                      {"worst_pause_s", report.worst_pause_s},
                                      {"failures", report.failures}}
                           .dump(1));
    return;
  }
  fmt::print("chaos: {} s, {} clients, {} workers: {} kills (restarted), {} stalls of {} s\n", args.duration_s,
             args.clients, args.workers, report.kills, report.stalls, args.stall_s);
  fmt::print("requests {}: completed {} ({:.1f} %), failed {}, differing from the fault-free run {}\n", total,
             report.completed, total ? 100.0 * report.completed / total : 0.0, report.failed, report.differing);
  fmt::print("worst pause a client saw: {:.2f} s\n", report.worst_pause_s);
  for (const auto& f : report.failures) fmt::print("  failure: {}\n", f);
}

}  // namespace

void register_chaos(CLI::App& app) {
  auto args = std::make_shared<ChaosArgs>();
  CLI::App* cmd = app.add_subcommand("chaos", "Stream requests through a swarm while its workers are killed and stalled");
  cmd->add_option("-m,--model", args->model, "GGUF model file or Hugging Face model directory")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--duration", args->duration_s, "Seconds of chaos")->capture_default_str();
  cmd->add_option("--clients", args->clients, "Concurrent streaming clients")->capture_default_str();
  cmd->add_option("--workers", args->workers, "Worker nodes (besides the head)")->capture_default_str();
  cmd->add_option("--max-layers", args->max_layers, "Layers each worker offers to hold (0: half the model)");
  cmd->add_option("--fault-every", args->fault_every_s, "Seconds between faults")->capture_default_str();
  cmd->add_option("--stall", args->stall_s, "Seconds a stalled worker stays stopped")->capture_default_str();
  cmd->add_option("-n,--max-tokens", args->max_tokens, "Tokens per request")->capture_default_str();
  cmd->add_option("--prompts", args->prompts, "Distinct prompts (outputs checked against the fault-free run)")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Chooses the victims")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print one JSON object");
  cmd->callback([args] { run_chaos(*args); });
}

}  // namespace px::cli

// `parallax chaos`: requests must survive a swarm whose workers keep failing. It starts a head
// (`run --no-worker`) and workers that `join` (the scheduler cuts the model into pipelines),
// records every prompt's output on a plain single node (`parallax serve`), then runs concurrent
// streaming clients for a while as workers are killed (SIGKILL, restarted a moment later, on
// their old port or a new one) or stalled (SIGSTOP ... SIGCONT), in one of several patterns.
// It reports requests completed, failed, outputs that differ from the single node's, and the
// pauses clients saw (p50 / p99 / max), with and without the time no pipeline covered the
// model (watched on the head's /v1/cluster). `--runs N` repeats it with a summary.
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "cli/chaos_stats.h"
#include "cli/commands.h"
#include "cli/swarm_harness.h"
#include "core/error.h"
#include "model/model_shard.h"

namespace px::cli {
namespace {

using Clock = ChaosClock;
using namespace std::chrono_literals;

struct ChaosArgs {
  std::string model;
  double duration_s = 120;
  int runs = 1;
  int clients = 16;
  int workers = 4;
  int max_layers = 0;          // per worker; 0: half the model (pipelines of two stages)
  double fault_every_s = 5;
  double stall_s = 2;
  double restart_after_s = 1;
  std::string pattern = "mixed";
  double same_port = 0;        // share of restarts on the killed node's own port
  bool stall_sole = false;     // stalls pick a worker that is the only holder of its range
  int heartbeat_ms = 200;
  int expire_ms = 2000;
  int max_tokens = 48;
  int prompts = 32;
  uint64_t seed = 1;
  bool json = false;
  std::string logs;            // a directory: the head's output of every run that lost a request
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

// Every prompt's answer from one `parallax serve` holding the whole model.
std::vector<std::string> single_node_outputs(const ChaosArgs& args) {
  Subprocess serve({self_binary(), "serve", "-m", args.model, "--port", "0", "-t", "1"});
  const std::string api = "127.0.0.1:" + await_output(serve, R"(listening on http://127\.0\.0\.1:(\d+))");
  wait_until_serving(api, false);
  std::vector<std::string> expected(args.prompts);
  for (int p = 0; p < args.prompts; ++p) {
    const StreamResult r = stream_completion(api, request_body(p, args.max_tokens));
    if (r.status != 200 || !r.error.empty()) fail("single-node request {} failed: {}", p, r.error);
    expected[p] = r.text;
  }
  serve.signal(SIGTERM);
  serve.wait(20s);
  return expected;
}

// Polls the head's /v1/cluster: when no pipeline covered the model, and which nodes hold which
// ranges (for stalls aimed at a sole replica).
class CoverageWatch {
 public:
  explicit CoverageWatch(std::string api) : api_(std::move(api)), thread_([this] { loop(); }) {}
  ~CoverageWatch() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<Interval> uncovered() {
    std::lock_guard lock(mutex_);
    std::vector<Interval> out = uncovered_;
    if (since_) out.push_back({*since_, Clock::now()});
    return out;
  }
  // p2p addresses of ready nodes that alone hold their layer range.
  std::vector<std::string> sole_replicas() {
    std::lock_guard lock(mutex_);
    std::map<std::pair<int, int>, std::vector<std::string>> holders;
    for (const auto& n : nodes_) {
      if (n.value("state", "") != "ready") continue;
      const auto& layers = n.at("layers");
      if (layers.at(1).get<int>() > layers.at(0).get<int>()) {
        holders[{layers.at(0).get<int>(), layers.at(1).get<int>()}].push_back(n.value("address", ""));
      }
    }
    std::vector<std::string> out;
    for (const auto& [range, addresses] : holders) {
      if (addresses.size() == 1) out.push_back(addresses[0]);
    }
    return out;
  }

 private:
  void loop() {
    httplib::Client client("http://" + api_);
    client.set_connection_timeout(1);
    client.set_read_timeout(2);
    while (!stop_) {
      const auto res = client.Get("/v1/cluster");
      const auto now = Clock::now();
      if (res && res->status == 200) {
        const auto j = nlohmann::json::parse(res->body, nullptr, false);
        if (!j.is_discarded()) {
          const bool covered = j.contains("pipelines") && !j["pipelines"].empty();
          std::lock_guard lock(mutex_);
          nodes_ = j.value("nodes", nlohmann::json::array());
          if (!covered && !since_) since_ = now;
          if (covered && since_) uncovered_.push_back({*since_, now}), since_.reset();
        }
      }
      std::this_thread::sleep_for(100ms);
    }
  }

  std::string api_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<Interval> uncovered_;
  std::optional<Clock::time_point> since_;
  nlohmann::json nodes_ = nlohmann::json::array();
  std::thread thread_;
};

// The workers and the faults played on them. Faults overlap (a burst stalls one worker while
// another is down), so each is a timed event: resume a stalled worker, restart a killed one.
class Workers {
 public:
  Workers(const ChaosArgs& args, std::vector<std::string> worker_args, ChaosRunReport& report)
      : args_(args), worker_args_(std::move(worker_args)), report_(report), rng_(args.seed) {}
  ~Workers() { stop(); }

  void start(int n) {
    for (int i = 0; i < n; ++i) workers_.push_back(start_one(0));
  }
  // Plays fault number `k` of the pattern.
  void fault(int k, CoverageWatch& watch) {
    const std::string& pattern = args_.pattern;
    if (pattern == "burst") {
      kill(pick());
      stall(pick(), watch);
    } else if (pattern == "alternate" ? k % 2 == 0 : rng_() % 3 != 0) {
      kill(pick());
    } else {
      stall(pick(), watch);
    }
  }
  // Resumes and restarts whatever is due; with `all`, everything now.
  void tick(bool all = false) {
    const auto now = Clock::now();
    for (size_t i = 0; i < workers_.size(); ++i) {
      Worker& w = workers_[i];
      if (w.resume_at && (all || now >= *w.resume_at)) {
        w.process->signal(SIGCONT);
        w.resume_at.reset();
      }
      if (w.restart_at && (all || now >= *w.restart_at)) {
        w.restart_at.reset();
        const bool same = double(rng_() % 1000) < 1000 * args_.same_port;
        const int old_port = w.port;
        try {
          workers_[i] = start_one(same ? old_port : 0);
          // (A new port from the system may be the old one too: count what happened.)
          if (workers_[i].port == old_port) ++report_.same_port_restarts;
        } catch (const Error& e) {
          spdlog::warn("chaos: restarting worker {} failed: {}", i, e.what());
          w.restart_at = now + 1s;  // its port may still be taken: try again
        }
      }
    }
  }
  void stop() {
    tick(/*all=*/true);
    for (auto& w : workers_) {
      if (w.process) w.process->signal(SIGTERM);
    }
    for (auto& w : workers_) {
      if (w.process) w.process->wait(20s);
    }
    workers_.clear();
  }

 private:
  struct Worker {
    std::unique_ptr<Subprocess> process;
    int port = 0;
    std::string p2p;
    std::optional<Clock::time_point> resume_at, restart_at;
    bool up() const { return process && !resume_at && !restart_at; }
  };

  Worker start_one(int port) {
    std::vector<std::string> a = worker_args_;
    a.push_back("--p2p-port");
    a.push_back(std::to_string(port));
    StartedNode node = start_node(a);
    Worker w;
    w.process = std::move(node.process);
    w.p2p = node.p2p;
    w.port = std::stoi(node.p2p.substr(node.p2p.rfind(':') + 1));
    return w;
  }
  // A worker that is up (none: -1).
  int pick(const std::vector<std::string>& among = {}) {
    std::vector<int> up;
    for (size_t i = 0; i < workers_.size(); ++i) {
      const bool listed = among.empty() || std::find(among.begin(), among.end(), workers_[i].p2p) != among.end();
      if (workers_[i].up() && listed) up.push_back(int(i));
    }
    return up.empty() ? -1 : up[rng_() % up.size()];
  }
  void kill(int i) {
    if (i < 0) return;
    Worker& w = workers_[i];
    spdlog::info("chaos: SIGKILL worker {} ({})", i, w.p2p);
    w.process->signal(SIGKILL);
    w.process->wait(10s);
    w.restart_at = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(args_.restart_after_s));
    ++report_.kills;
  }
  void stall(int i, CoverageWatch& watch) {
    if (args_.stall_sole) {
      if (const int sole = pick(watch.sole_replicas()); sole >= 0) {
        i = sole;
        ++report_.sole_replica_stalls;
      }
    }
    if (i < 0) return;
    Worker& w = workers_[i];
    spdlog::info("chaos: SIGSTOP worker {} ({}) for {} s", i, w.p2p, args_.stall_s);
    w.process->signal(SIGSTOP);
    w.resume_at = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(args_.stall_s));
    ++report_.stalls;
  }

  const ChaosArgs& args_;
  std::vector<std::string> worker_args_;
  ChaosRunReport& report_;
  std::mt19937_64 rng_;
  std::vector<Worker> workers_;
};

ChaosRunReport run_once(const ChaosArgs& args, const std::vector<std::string>& expected, uint64_t seed, int run) {
  // (Nodes leave at the end without waiting for requests a lost release left behind.)
  const std::vector<std::string> timing = {"--heartbeat-ms", std::to_string(args.heartbeat_ms), "--expire-ms",
                                           std::to_string(args.expire_ms), "-t", "1", "--drain", "1"};
  auto with = [&](std::vector<std::string> a) {
    a.insert(a.end(), timing.begin(), timing.end());
    return a;
  };
  StartedNode head = start_node(with({"run", "-m", args.model, "--no-worker", "--port", "0", "--p2p-port", "0",
                                      "--wait-nodes", std::to_string(args.workers)}));
  // By default half the model per worker: pipelines of two stages, every stage replicated.
  const int n_layers = ModelShard::load(args.model)->config().n_layers;
  const std::string max_layers = std::to_string(args.max_layers > 0 ? args.max_layers : (n_layers + 1) / 2);
  ChaosRunReport report;
  ChaosArgs run_args = args;
  run_args.seed = seed;
  Workers workers(run_args, with({"join", "-m", args.model, "--peer", head.p2p, "--max-layers", max_layers}), report);
  workers.start(args.workers);
  wait_until_serving(head.api, true);
  CoverageWatch watch(head.api);
  spdlog::info("chaos: swarm serving; {} clients for {} s", args.clients, args.duration_s);

  std::mutex report_mutex;
  std::atomic<bool> stop{false};
  std::atomic<int> next_prompt{0};
  struct Pause {
    double seconds;
    Clock::time_point end;
  };
  std::vector<Pause> pauses;
  std::vector<std::thread> clients;
  for (int c = 0; c < args.clients; ++c) {
    clients.emplace_back([&] {
      while (!stop) {
        const int p = next_prompt++ % args.prompts;
        const StreamResult r = stream_completion(head.api, request_body(p, args.max_tokens), 120);
        std::lock_guard lock(report_mutex);
        pauses.push_back({r.worst_gap_s, r.worst_gap_end});
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

  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(args.duration_s));
  const auto every = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(args.fault_every_s));
  int k = 0;
  for (auto next = start + every; Clock::now() < end;) {
    std::this_thread::sleep_for(50ms);
    workers.tick();
    if (Clock::now() >= next && Clock::now() < end) {
      workers.fault(k++, watch);
      next += every;
    }
  }
  workers.tick(/*all=*/true);  // every worker back before the clients' last requests finish
  stop = true;
  for (auto& t : clients) t.join();
  spdlog::info("chaos: faults over, clients done; stopping the swarm");
  watch.stop();
  workers.stop();
  head.process->signal(SIGTERM);
  head.process->wait(20s);
  if (!args.logs.empty() && (report.failed > 0 || report.differing > 0)) {
    std::filesystem::create_directories(args.logs);
    const std::string path = fmt::format("{}/chaos-run-{}-head.log", args.logs, run);
    std::ofstream(path) << head.process->output();
    spdlog::info("chaos: run {} lost requests; the head's output is in {}", run, path);
  }

  report.uncovered = watch.uncovered();
  for (const Pause& p : pauses) {
    report.pauses_s.push_back(p.seconds);
    const auto begin = p.end - std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(p.seconds));
    report.covered_pauses_s.push_back(seconds_outside(begin, p.end, report.uncovered));
  }
  return report;
}

void print_run(int run, const ChaosRunReport& r) {
  fmt::print("{:>3} | {:>8} | {:>9} | {:>6} | {:>9} | {:>5} ({:>2} same port) | {:>6} ({:>2} sole) | {:>6.2f} / {:>6.2f} / {:>6.2f} | {:>8.2f} | {:>6.2f}\n",
             run, r.requests(), r.completed, r.failed, r.differing, r.kills, r.same_port_restarts, r.stalls,
             r.sole_replica_stalls, quantile(r.pauses_s, 0.5), quantile(r.pauses_s, 0.99), quantile(r.pauses_s, 1.0),
             quantile(r.covered_pauses_s, 1.0), r.longest_uncovered_s());
}

void run_chaos(const ChaosArgs& args) {
  if (args.workers < 2) fail("--workers must be >= 2 (faults need a second pipeline to move to)");
  if (args.runs < 1) fail("--runs must be >= 1");
  if (args.pattern != "mixed" && args.pattern != "alternate" && args.pattern != "burst") {
    fail("--pattern {} is not one of mixed, alternate, burst", args.pattern);
  }
  if (!(args.same_port >= 0 && args.same_port <= 1)) fail("--same-port must be a share in [0, 1]");
  const std::vector<std::string> expected = single_node_outputs(args);
  spdlog::info("chaos: {} single-node outputs recorded; {} run(s) of {} s, {} clients, pattern {}", args.prompts,
               args.runs, args.duration_s, args.clients, args.pattern);
  std::vector<ChaosRunReport> reports;
  for (int run = 0; run < args.runs; ++run) {
    reports.push_back(run_once(args, expected, args.seed + uint64_t(run), run + 1));
  }

  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : reports) out.push_back(r.to_json());
    fmt::print("{}\n", (args.runs == 1 ? out[0] : out).dump(1));
    return;
  }
  fmt::print("chaos: {} run(s) of {} s, {} clients, {} workers, pattern {}, a fault every {} s (stalls {} s, restarts "
             "after {} s, {:.0f} % on the same port{})\n",
             args.runs, args.duration_s, args.clients, args.workers, args.pattern, args.fault_every_s, args.stall_s,
             args.restart_after_s, 100 * args.same_port, args.stall_sole ? ", stalls on sole replicas" : "");
  fmt::print("run | requests | completed | failed | differing | kills              | stalls        | pause p50 / p99 / max s  | max while covered s | longest uncovered s\n");
  ChaosRunReport all;
  for (size_t i = 0; i < reports.size(); ++i) {
    print_run(int(i + 1), reports[i]);
    const auto& r = reports[i];
    all.completed += r.completed, all.failed += r.failed, all.differing += r.differing;
    all.kills += r.kills, all.same_port_restarts += r.same_port_restarts, all.stalls += r.stalls;
    all.sole_replica_stalls += r.sole_replica_stalls;
    all.pauses_s.insert(all.pauses_s.end(), r.pauses_s.begin(), r.pauses_s.end());
    all.covered_pauses_s.insert(all.covered_pauses_s.end(), r.covered_pauses_s.begin(), r.covered_pauses_s.end());
    all.uncovered.insert(all.uncovered.end(), r.uncovered.begin(), r.uncovered.end());
    for (const auto& f : r.failures) fmt::print("  run {} failure: {}\n", i + 1, f);
  }
  if (reports.size() > 1) print_run(0, all);
  fmt::print("(run 0: all runs together; pauses are each request's longest silence, its first token included; "
             "'while covered' leaves out the time /v1/cluster showed no pipeline)\n");
}

}  // namespace

void register_chaos(CLI::App& app) {
  auto args = std::make_shared<ChaosArgs>();
  CLI::App* cmd = app.add_subcommand("chaos", "Stream requests through a swarm while its workers are killed and stalled");
  cmd->add_option("-m,--model", args->model, "GGUF model file or Hugging Face model directory")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--duration", args->duration_s, "Seconds of chaos per run")->capture_default_str();
  cmd->add_option("--runs", args->runs, "Runs, each with a fresh swarm (a summary follows)")->capture_default_str();
  cmd->add_option("--clients", args->clients, "Concurrent streaming clients")->capture_default_str();
  cmd->add_option("--workers", args->workers, "Worker nodes (besides the head)")->capture_default_str();
  cmd->add_option("--max-layers", args->max_layers, "Layers each worker offers to hold (0: half the model)");
  cmd->add_option("--fault-every", args->fault_every_s, "Seconds between faults")->capture_default_str();
  cmd->add_option("--pattern", args->pattern,
                  "mixed: a random kill (2 in 3) or stall; alternate: kill, stall, kill, ...; burst: a kill and a "
                  "stall of another worker at once")
      ->capture_default_str();
  cmd->add_option("--stall", args->stall_s, "Seconds a stalled worker stays stopped")->capture_default_str();
  cmd->add_option("--restart-after", args->restart_after_s, "Seconds before a killed worker is started again")
      ->capture_default_str();
  cmd->add_option("--same-port", args->same_port, "Share of restarts on the killed worker's own port (0..1)")
      ->capture_default_str();
  cmd->add_flag("--stall-sole", args->stall_sole, "Stall a worker that alone holds its layer range, when one does");
  cmd->add_option("--heartbeat-ms", args->heartbeat_ms, "The nodes' heartbeat period")->capture_default_str();
  cmd->add_option("--expire-ms", args->expire_ms, "The nodes' announcement expiry")->capture_default_str();
  cmd->add_option("-n,--max-tokens", args->max_tokens, "Tokens per request")->capture_default_str();
  cmd->add_option("--prompts", args->prompts, "Distinct prompts (outputs checked against the single node's)")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Chooses the victims (run i uses seed + i)")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print JSON (an object per run)");
  cmd->add_option("--logs", args->logs, "Directory for the head's output of each run that lost a request");
  cmd->callback([args] { run_chaos(*args); });
}

}  // namespace px::cli

// `parallax sim`: layer allocation and routing over a simulated heterogeneous swarm, to see
// what pipelines form and how long the algorithms take at scale.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <iostream>

#include "cli/commands.h"
#include "core/error.h"
#include "sampling/sampler.h"
#include "swarm/allocation.h"
#include "swarm/routing.h"

namespace px::cli {
namespace {

struct SimArgs {
  std::vector<int> nodes = {10, 100, 1000};
  int layers = 80;
  double layer_gb = 1.75;  // a 70B model in F16
  double embedding_gb = 2.1;
  double head_gb = 2.1;
  uint64_t seed = 1;
  bool json = false;
};

using Clock = std::chrono::steady_clock;

nlohmann::json simulate(int n_nodes, const SimArgs& args) {
  // Memory 8-80 GB, speed spread 10x, positions on a plane giving RTTs of 1-200 ms.
  std::vector<swarm::NodeCapacity> nodes;
  std::vector<std::pair<double, double>> position;
  auto u = [&](uint64_t stream, uint64_t i) { return counter_uniform(args.seed, stream, i); };
  for (int i = 0; i < n_nodes; ++i) {
    nodes.push_back({"node-" + std::to_string(i), (8 + 72 * u(1, i)) * 1e9, 100 + 900 * u(2, i)});
    position.push_back({u(3, i), u(4, i)});
  }
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < nodes.size(); ++i) index[nodes[i].id] = i;
  const swarm::RttFn rtt = [&](const std::string& a, const std::string& b) {
    const auto& pa = position[index.at(a)];
    const auto& pb = position[index.at(b)];
    return 0.001 + 0.199 * std::hypot(pa.first - pb.first, pa.second - pb.second) / std::sqrt(2.0);
  };
  const swarm::ModelFootprint model{args.layers, args.layer_gb * 1e9, args.embedding_gb * 1e9, args.head_gb * 1e9};

  const auto t0 = Clock::now();
  const swarm::Allocation allocation = swarm::allocate_layers(nodes, model);
  const auto t1 = Clock::now();

  std::vector<swarm::StageState> stages;
  for (const auto& p : allocation.pipelines) {
    for (const auto& s : p.stages) stages.push_back({s.node_id, s.begin, s.end, s.seconds_per_token, 0.3, false, 1});
  }
  for (const auto& r : allocation.replicas) stages.push_back({r.node_id, r.begin, r.end, r.seconds_per_token, 0.1, false, 1});
  constexpr int kRoutes = 100;
  std::optional<swarm::Route> route;
  const auto t2 = Clock::now();
  for (int i = 0; i < kRoutes; ++i) route = swarm::find_route(stages, {args.layers}, rtt);
  const auto t3 = Clock::now();

  size_t total_stages = 0;
  for (const auto& p : allocation.pipelines) total_stages += p.stages.size();
  // The packing behind the chosen number of pipelines: its stages, the greedy packing's for the
  // same number (0: greedy formed fewer), and the lower bound on any packing's.
  const size_t k = allocation.pipelines.size();
  const swarm::PipelineOption chosen = k > 0 && k <= allocation.options.size() ? allocation.options[k - 1] : swarm::PipelineOption{};
  return {{"nodes", n_nodes},
          {"pipelines", allocation.pipelines.size()},
          {"total_stages", total_stages},
          {"greedy_stages", chosen.greedy_stages},
          {"stages_lower_bound", chosen.stages_lower_bound},
          {"stages_proven_minimal", allocation.stages_proven_minimal},
          {"average_stages", allocation.pipelines.empty() ? 0.0 : double(total_stages) / allocation.pipelines.size()},
          {"replicas", allocation.replicas.size()},
          {"unused", allocation.unused.size()},
          {"estimated_tokens_per_second", allocation.tokens_per_second},
          {"allocation_ms", std::chrono::duration<double, std::milli>(t1 - t0).count()},
          {"routing_ms", std::chrono::duration<double, std::milli>(t3 - t2).count() / kRoutes},
          {"route_hops", route ? route->stages.size() : 0},
          {"route_seconds_per_token", route ? route->cost_seconds : 0.0}};
}

void run_sim(const SimArgs& args) {
  nlohmann::json report = nlohmann::json::array();
  if (!args.json) {
    std::cout << fmt::format("{:>6} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>7} {:>11} {:>10} {:>10} {:>5} {:>9}\n",
                             "nodes", "pipelines", "stages", "greedy", "bound", "proven", "avg", "replicas", "unused",
                             "est tok/s", "alloc ms", "route ms", "hops", "route s");
  }
  for (int n : args.nodes) {
    if (n < 1 || n > 100000) fail("--nodes values must be in 1..100000, got {}", n);
    const nlohmann::json r = simulate(n, args);
    report.push_back(r);
    if (!args.json) {
      const int greedy = r["greedy_stages"];
      std::cout << fmt::format("{:>6} {:>9} {:>7} {:>7} {:>7} {:>7} {:>7.1f} {:>8} {:>7} {:>11.1f} {:>10.3f} {:>10.4f} {:>5} {:>9.3f}\n",
                               int(r["nodes"]), int(r["pipelines"]), int(r["total_stages"]),
                               greedy > 0 ? std::to_string(greedy) : "-", int(r["stages_lower_bound"]),
                               bool(r["stages_proven_minimal"]) ? "yes" : "no", double(r["average_stages"]), int(r["replicas"]),
                               int(r["unused"]), double(r["estimated_tokens_per_second"]), double(r["allocation_ms"]),
                               double(r["routing_ms"]), int(r["route_hops"]), double(r["route_seconds_per_token"]));
    }
  }
  if (args.json) std::cout << report.dump() << std::endl;
}

}  // namespace

void register_sim(CLI::App& app) {
  auto args = std::make_shared<SimArgs>();
  CLI::App* cmd = app.add_subcommand("sim", "Simulate layer allocation and routing over a heterogeneous swarm");
  cmd->add_option("--nodes", args->nodes, "Swarm sizes to simulate")->capture_default_str();
  cmd->add_option("--layers", args->layers, "Transformer layers of the model")->capture_default_str();
  cmd->add_option("--layer-gb", args->layer_gb, "Weights per layer (GB)")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Seed of the simulated swarm")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print JSON");
  cmd->callback([args] { run_sim(*args); });
}

}  // namespace px::cli

#pragma once
// Request routing: the cheapest chain of stages covering every layer, as a pure function of
// the announced stages. Stages form a DAG (an edge j -> i when stage j ends where stage i
// begins); the cost of a chain is each stage's latency estimate, growing with its load and
// infinite when it is full or its announcement is stale, plus the measured RTT between
// consecutive peers.
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace px::swarm {

struct StageState {
  std::string node_id;
  int begin = 0;                  // layers [begin, end)
  int end = 0;
  double seconds_per_token = 0;   // measured (or estimated) time for one token through the stage
  double load = 0;                // 0 idle .. 1 saturated
  bool full = false;              // no KV room / queue full: never route here
  double age_seconds = 0;         // since its last announcement
};

struct RoutingConfig {
  int n_layers = 0;
  double stale_after_seconds = 10;
};

struct Route {
  std::vector<size_t> stages;     // indices into the input, in layer order
  double cost_seconds = 0;
};

// Seconds between two peers (by node id); unknown pairs should return a pessimistic value.
using RttFn = std::function<double(const std::string& from, const std::string& to)>;

// A stage's cost: its time per token stretched by load (an M/M/1-style 1 / (1 - load)),
// infinite when full, stale or saturated.
double stage_cost(const StageState& stage, const RoutingConfig& config);

// The cheapest route from layer 0 to n_layers, or nullopt when no chain covers the model.
std::optional<Route> find_route(const std::vector<StageState>& stages, const RoutingConfig& config, const RttFn& rtt);

}  // namespace px::swarm

#pragma once
// Layer allocation: which peers form pipelines and which layers each stage holds, as a pure
// function of what the peers announced (after the Parallax paper). No networking here: the
// swarm feeds announcements in and applies the result.
//
// 1. Capacity: c_i = floor(memory_i * memory_ratio / layer_bytes) layers.
// 2. Pipelines: nodes sorted by capacity (largest first) are packed greedily into pipelines,
//    each closed by the smallest node that covers what it still needs (best fit), so early
//    pipelines use few, large nodes. With s(k) the total stages of the first k pipelines, the
//    number of pipelines k maximises k^2 / s(k): throughput grows with k, per-token latency
//    with s(k) / k stages. (Exact minimisation of s(k) is bin covering, NP-hard; the greedy
//    prefix is computed once for every k, O(n log n).)
// 3. Inside a pipeline, layers are water-filled in proportion to each stage's speed, capped by
//    its capacity (the first stage also holds the embedding, the last the output head).
// 4. Nodes left over become replicas of the slowest stages whose range they can hold, giving the
//    router alternatives where the pipelines are most loaded.
#include <cstdint>
#include <string>
#include <vector>

namespace px::swarm {

struct NodeCapacity {
  std::string id;
  double memory_bytes = 0;        // memory the node offers for weights
  double layers_per_second = 0;   // measured speed: transformer layers it runs per second (one token)
};

struct ModelFootprint {
  int n_layers = 0;
  double layer_bytes = 0;         // weights of one transformer layer
  double embedding_bytes = 0;     // held by the first stage
  double head_bytes = 0;          // held by the last stage
};

struct AllocationConfig {
  double memory_ratio = 0.9;      // share of a node's memory given to weights (the rest: KV, buffers)
};

struct StageAssignment {
  std::string node_id;
  int begin = 0;                  // layers [begin, end)
  int end = 0;
  double seconds_per_token = 0;   // (end - begin) / layers_per_second
};

struct Pipeline {
  std::vector<StageAssignment> stages;      // in layer order, covering [0, n_layers)
  double latency_seconds = 0;               // one token through every stage (no network)
  double tokens_per_second = 0;             // bottleneck stage's rate with the pipeline full
};

struct Allocation {
  std::vector<Pipeline> pipelines;
  std::vector<StageAssignment> replicas;    // extra copies of stages, on leftover nodes
  std::vector<std::string> unused;          // nodes given nothing (too small even for a replica)
  double tokens_per_second = 0;             // sum over pipelines
};

// Throws px::Error for an invalid model footprint or node (negative, NaN, zero layers).
// An empty allocation (no pipeline) means the nodes together cannot hold the model.
Allocation allocate_layers(const std::vector<NodeCapacity>& nodes, const ModelFootprint& model,
                           const AllocationConfig& config = {});

// Layers a node can hold: floor(memory * ratio / layer_bytes), never negative.
int layer_capacity(const NodeCapacity& node, const ModelFootprint& model, const AllocationConfig& config);

// Splits n_layers over stages in proportion to speed, each within [1, capacity]; returns the
// layer count per stage, or an empty vector when the capacities cannot hold n_layers.
std::vector<int> water_fill(const std::vector<double>& speeds, const std::vector<int>& capacities, int n_layers);

}  // namespace px::swarm

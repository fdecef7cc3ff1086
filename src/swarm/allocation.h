#pragma once
// Layer allocation: which peers form pipelines and which layers each stage holds, as a pure
// function of what the peers announced (after the Parallax paper). No networking here: the
// swarm feeds announcements in and applies the result.
//
// 1. Capacity: c_i = floor(memory_i * memory_ratio / layer_bytes) layers.
// 2. Pipelines: a pipeline is a set of nodes whose capacities sum to at least what one copy of
//    the model needs (its layers, plus the embedding and head). s*(k), the fewest stages that
//    realise k pipelines, is computed for every k, and the number of pipelines k maximises
//    k^2 / s*(k): throughput grows with k, per-token latency with s*(k) / k stages.
//    Nodes that hold the whole model alone are one-stage pipelines. For the others, a dynamic
//    programme (pipeline_packing.h) reads nodes largest first, carrying every reachable state
//    (what each open pipeline still needs, how many are closed); the first node count at which
//    nothing is open and k are closed is s*(k). Taking the largest nodes loses nothing (a
//    packing on any m nodes maps onto the m largest), and one pass answers every k.
//    Minimising s*(k) is bin covering, strongly NP-hard, so the states carried are capped
//    (some 10 ms of work whatever the swarm's size); when the cap never bit, the result is
//    exact and stages_proven_minimal says so. The earlier greedy packing (largest first, each
//    pipeline closed by the best-fitting node) is kept as a second candidate, the better of the
//    two is taken for each k, and on a tie the greedy one's nodes are used.
//    "Exact" is for this capacity model: a group it counts that water-filling cannot split (an
//    end stage too small for the embedding or head plus a layer, more stages than layers) is
//    dropped and its nodes are left over. And fewer stages means more layers per stage, so the
//    estimated tokens per second can fall where k^2 / s*(k) rises.
// 3. Inside a pipeline, layers are water-filled in proportion to each stage's speed, capped by
//    its capacity (the first stage also holds the embedding, the last the output head).
// 4. Nodes left over become replicas of the slowest stages whose range they can hold, giving the
//    router alternatives where the pipelines are most loaded.
// Links: hidden states cross every boundary between stages, so a node behind a slow link
// (under slow_link_ratio of the median measured link rate) holds no pipeline stage when
// the other nodes form as many pipelines without it: it becomes a replica, which the router
// uses only when the stages on fast links are busy. A node holding the whole model alone sends
// no hidden states and is never held back.
#include <cstdint>
#include <string>
#include <vector>

namespace px::swarm {

struct NodeCapacity {
  std::string id;
  double memory_bytes = 0;        // memory the node offers for weights
  double layers_per_second = 0;   // measured speed: transformer layers it runs per second (one token)
  double link_bytes_per_second = 0;  // what its link carries as measured (link_costs.h); 0: unknown
};

struct ModelFootprint {
  int n_layers = 0;
  double layer_bytes = 0;         // weights of one transformer layer
  double embedding_bytes = 0;     // held by the first stage
  double head_bytes = 0;          // held by the last stage
};

struct AllocationConfig {
  double memory_ratio = 0.9;      // share of a node's memory given to weights (the rest: KV, buffers)
  double slow_link_ratio = 0.25;  // a link under this share of the median node's is slow
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

// What k pipelines would cost, for each k that some packing reached.
struct PipelineOption {
  int pipelines = 0;            // k
  int stages = 0;               // fewest total stages found for k pipelines
  int stages_lower_bound = 0;   // no packing of k pipelines has fewer stages (== stages where proven)
  int greedy_stages = 0;        // the greedy packing's stages for k (0: it formed fewer than k)
};

struct Allocation {
  std::vector<Pipeline> pipelines;
  std::vector<StageAssignment> replicas;    // extra copies of stages, on leftover nodes
  std::vector<std::string> unused;          // nodes given nothing (too small even for a replica)
  std::vector<std::string> slow_links;      // nodes kept out of pipelines for their slow links
  double tokens_per_second = 0;             // sum over pipelines
  std::vector<PipelineOption> options;      // options[k - 1]: k pipelines, k = 1.. as far as any packing went
  // Every option's stages are the fewest possible and no more pipelines are possible, so the
  // number of pipelines maximises k^2 / s*(k) exactly (not only among the packings tried).
  bool stages_proven_minimal = false;
};

// Throws px::Error for an invalid model footprint or node (negative, NaN, zero layers).
// An empty allocation (no pipeline) means the nodes together cannot hold the model.
Allocation allocate_layers(const std::vector<NodeCapacity>& nodes, const ModelFootprint& model,
                           const AllocationConfig& config = {});

// What slow links are judged against: the median of the known link rates of the nodes that can
// hold a layer (0: none known). A median, so one exceptionally fast node makes no other slow.
double typical_link_rate(const std::vector<NodeCapacity>& nodes, const ModelFootprint& model,
                         const AllocationConfig& config);
// Whether a node whose link carries `rate` is behind a slow one: under slow_link_ratio of
// `typical` (an unknown rate, 0, never is).
bool slow_link(double rate, double typical, const AllocationConfig& config);

// Layers a node can hold: floor(memory * ratio / layer_bytes), never negative.
int layer_capacity(const NodeCapacity& node, const ModelFootprint& model, const AllocationConfig& config);

// Splits n_layers over stages in proportion to speed, each within [1, capacity]; returns the
// layer count per stage, or an empty vector when the capacities cannot hold n_layers.
std::vector<int> water_fill(const std::vector<double>& speeds, const std::vector<int>& capacities, int n_layers);

}  // namespace px::swarm

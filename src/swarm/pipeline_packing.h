#pragma once
// The fewest stages that realise k pipelines, for every k: a dynamic programme over nodes taken
// largest first (see pipeline_packing.cpp for the argument). Pure integers, no nodes or models:
// allocation.cpp maps its nodes onto this and back.
//
// A pipeline is a set of nodes whose capacities sum to at least `need`. Finding the fewest nodes
// for k pipelines is bin covering, strongly NP-hard, so the set of partial packings the
// programme carries from node to node is capped (a beam). When the cap never dropped a packing
// the answers are exact; exact() says so.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace px::swarm {

class PipelinePacking {
 public:
  // capacities: non-increasing, each in [1, need - 1] (a node that covers `need` alone is a
  // pipeline of its own and does not belong here). work_per_node caps the partial packings kept
  // after each node: their total size (in runs of equal residuals, plus a few per packing)
  // stays within it, so the whole search costs about capacities.size() * work_per_node steps.
  // Throws std::invalid_argument when a capacity is out of range.
  PipelinePacking(std::vector<int> capacities, int64_t need, size_t work_per_node);

  // The most pipelines any packing found forms (every k in 1..max_pipelines() has an answer).
  size_t max_pipelines() const { return first_layer_.size(); }
  // Fewest nodes found that form k pipelines (1 <= k <= max_pipelines(); INT32_MAX otherwise).
  // Where exact, they are the stages(k) largest capacities, every one of them used.
  int stages(size_t k) const;
  // No packing of k pipelines uses fewer nodes than this (equal to stages(k) where exact).
  // Defined for every k >= 1; INT32_MAX when k pipelines are impossible.
  int lower_bound(size_t k) const;
  // No partial packing was ever dropped: stages(k) is the minimum for every k, and no packing
  // forms more than max_pipelines() pipelines.
  bool exact() const { return first_drop_ == 0; }
  // The members (indices into capacities) of each of k pipelines using stages(k) nodes.
  std::vector<std::vector<int>> pipelines(size_t k) const;

 private:
  struct Step {
    uint32_t parent;   // state index in the previous layer's kept states
    int64_t residual;  // residual of the open pipeline this node joined; 0: it opened a new one
  };

  // Every pipeline closed on the way to state `index` after `layer` nodes, fewest stages first.
  std::vector<std::vector<int>> replay(int layer, uint32_t index) const;

  std::vector<int> capacities_;
  int64_t need_;
  std::vector<std::vector<Step>> layers_;  // layers_[i]: how each state kept after node i came about
  std::vector<int> first_layer_;           // first_layer_[k - 1]: layer (nodes used) of k's terminal
  std::vector<int> stages_;                // stages_[k - 1]: stages(k)
  std::vector<uint32_t> terminal_index_;   // terminal_index_[k - 1]: that terminal's state index
  std::vector<int> terminal_pipelines_;    // terminal_pipelines_[k - 1]: pipelines that terminal closed
  int first_drop_ = 0;                     // first layer (nodes used) whose states were capped; 0: none
  std::vector<int64_t> prefix_;            // prefix_[i]: sum of the i largest capacities
};

}  // namespace px::swarm

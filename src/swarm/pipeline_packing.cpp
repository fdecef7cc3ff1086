#include "swarm/pipeline_packing.h"

#include <algorithm>
#include <climits>
#include <map>
#include <stdexcept>
#include <utility>

// Why nodes are taken largest first, and why one pass answers every k.
//
// Dominance lemma. If some m nodes can be split into k pipelines (disjoint sets, each with
// capacities summing to at least `need`), then the m largest nodes can too. Proof: let the used
// nodes have capacities u_1 >= ... >= u_m and all nodes c_1 >= ... >= c_n. Since the used nodes
// are m of the n, c_j >= u_j for every j (the j-th largest of a set is at least the j-th largest
// of any subset). Put node j where the used node of rank j was: a bijection, so the pipelines stay
// disjoint, and no capacity shrinks, so every pipeline still covers `need`.
//
// Hence s(k), the fewest nodes forming k pipelines, is the smallest m such that the m largest
// nodes can be split into k pipelines with every one of the m used (at the minimal m no node is
// idle: dropping an idle node would give a smaller m, and the lemma brings it back to a prefix).
// The programme reads the nodes largest first; after i nodes it holds every reachable state
// (the multiset of what each open pipeline still needs, and the count f of closed ones) where
// each of the i nodes joined an open pipeline or opened a new one. s(k) is the first i at which
// a state with nothing open and f >= k is reachable (f > k at i would mean k pipelines from
// fewer nodes, found earlier, so in the exact programme f steps by one).
//
// Exact reductions (they never change s(k)):
//  - states are multisets, so pipelines with the same residual are interchangeable: a node
//    extends one pipeline per distinct residual;
//  - a node that can close several pipelines closes the one needing most: the state left behind
//    has the same counts and elementwise smaller residuals, so it does at least as well;
//  - identical multisets are merged, keeping the larger f;
//  - a state whose open pipelines need more than the remaining nodes hold (in capacity or in
//    number: each open pipeline needs one more node) can never close them.
// The "does at least as well" steps mirror the dominated state's future moves; where the mirror
// would add a node to an already closed pipeline, that node is superfluous, so that future is
// not a minimal one (a node could be removed, and the lemma gives a smaller prefix).
//
// The beam. Past a work budget per node, the states kept are half the ones that lost least
// capacity so far (what closed pipelines hold beyond `need`; fewer open pipelines break ties)
// and half the ones with the most pipelines closed (then least still needed). The first node at
// which anything was dropped is remembered: answers found up to it are still exact, later ones
// get a lower bound (capacity, pipeline size, and "not found before the drop").

namespace px::swarm {
namespace {

uint64_t mix(uint64_t x) {  // splitmix64: a fixed random 64-bit key per residual value
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A state's open pipelines are runs (residual, how many), largest residual first, in an arena;
// its hash is the sum of the keys of its residuals, so a move updates it in O(1).
struct Run {
  int64_t residual;
  int64_t count;
};

struct State {
  uint32_t offset = 0;
  uint32_t runs = 0;
  uint32_t open = 0;
  int32_t closed = 0;
  int64_t sum = 0;  // total still needed by the open pipelines
  uint64_t hash = 0;
};

struct Move {
  uint32_t parent = 0;
  int64_t residual = 0;  // the open pipeline extended (0: a new one)
  int32_t closed = 0;
  uint32_t open = 0;
  int64_t sum = 0;
  uint64_t hash = 0;
  int64_t rank = 0;      // capacity lost so far (INT64_MIN: nothing open, always kept)
  uint64_t tie = 0;      // open pipelines, then closed ones, for ranks that tie
  uint32_t cost = 0;     // the parent's runs: about the work of building and expanding the child
};

bool better(const Move& a, const Move& b) {  // least lost, then fewest open, then most closed
  if (a.rank != b.rank) return a.rank < b.rank;
  return a.tie < b.tie;
}

bool closer(const Move& a, const Move& b) {  // most closed, then least still needed
  if (a.closed != b.closed) return a.closed > b.closed;
  return a.sum < b.sum;
}

bool same_key(const Move& a, const Move& b) { return a.hash == b.hash && a.open == b.open && a.sum == b.sum; }

// Appends a child's runs: the parent's, less one pipeline of residual `removed` (0: none), plus
// one of residual `inserted` (0: none; never equal to `removed`).
void append_child(const Run* parent, uint32_t runs, int64_t removed, int64_t inserted, std::vector<Run>& out) {
  for (uint32_t j = 0; j < runs; ++j) {
    Run r = parent[j];
    if (r.residual == removed) --r.count;
    if (inserted > r.residual) {
      out.push_back({inserted, 1});
      inserted = 0;
    } else if (inserted == r.residual) {
      ++r.count;
      inserted = 0;
    }
    if (r.count > 0) out.push_back(r);
  }
  if (inserted > 0) out.push_back({inserted, 1});
}

}  // namespace

PipelinePacking::PipelinePacking(std::vector<int> capacities, int64_t need, size_t work_per_node)
    : capacities_(std::move(capacities)), need_(need) {
  const size_t n = capacities_.size();
  for (size_t i = 0; i < n; ++i) {
    if (capacities_[i] < 1 || capacities_[i] >= need_ || (i > 0 && capacities_[i] > capacities_[i - 1])) {
      throw std::invalid_argument("PipelinePacking: capacities must be non-increasing, in [1, need - 1]");
    }
  }
  work_per_node = std::max<size_t>(work_per_node, 16);
  prefix_.assign(n + 1, 0);
  for (size_t i = 0; i < n; ++i) prefix_[i + 1] = prefix_[i] + capacities_[i];
  layers_.resize(n);

  std::vector<State> states(1), next;  // layer 0: nothing open, nothing closed
  std::vector<Run> arena, next_arena, scratch_a, scratch_b;
  std::vector<Move> moves;
  std::vector<uint32_t> table;  // open addressing over moves, for merging identical states
  for (size_t i = 0; i < n; ++i) {
    const int64_t c = capacities_[i];
    const int64_t capacity_left = prefix_[n] - prefix_[i + 1];
    const size_t nodes_left = n - i - 1;
    moves.clear();
    // Rank: capacity lost so far, i.e. what closed pipelines hold beyond `need` (the nodes used
    // are the same for every state of a layer, so this is (closed + open) * need - sum, negated).
    auto emit = [&](Move m) {
      if (m.sum > capacity_left || m.open > nodes_left) return;  // cannot close what is open
      m.rank = m.open == 0 ? INT64_MIN : m.sum - int64_t(m.closed + m.open) * need_;
      m.tie = (uint64_t(m.open) << 32) | uint32_t(~uint32_t(m.closed));
      moves.push_back(m);
    };
    for (uint32_t p = 0; p < states.size(); ++p) {
      const State& s = states[p];
      const Run* run = arena.data() + s.offset;
      const int64_t opened = need_ - c;
      emit({p, 0, s.closed, s.open + 1, s.sum + opened, s.hash + mix(uint64_t(opened)), 0, 0, s.runs});
      for (uint32_t j = 0; j < s.runs; ++j) {
        const int64_t r = run[j].residual;
        if (r > c) {
          emit({p, r, s.closed, s.open, s.sum - c, s.hash - mix(uint64_t(r)) + mix(uint64_t(r - c)), 0, 0, s.runs});
        } else {  // the largest residual this node closes; smaller ones would do no better
          emit({p, r, s.closed + 1, s.open - 1, s.sum - r, s.hash - mix(uint64_t(r)), 0, 0, s.runs});
          break;
        }
      }
    }

    // Merge identical multisets, keeping the most closed. A 64-bit hash, count and total that
    // agree are checked run by run while the search is still exact.
    auto inserted = [&](const Move& m) { return m.residual == 0 ? need_ - c : std::max<int64_t>(m.residual - c, 0); };
    auto same = [&](const Move& a, const Move& b) {
      if (!same_key(a, b)) return false;
      if (first_drop_ != 0) return true;
      scratch_a.clear();
      scratch_b.clear();
      append_child(arena.data() + states[a.parent].offset, states[a.parent].runs, a.residual, inserted(a), scratch_a);
      append_child(arena.data() + states[b.parent].offset, states[b.parent].runs, b.residual, inserted(b), scratch_b);
      return std::equal(scratch_a.begin(), scratch_a.end(), scratch_b.begin(), scratch_b.end(),
                        [](const Run& x, const Run& y) { return x.residual == y.residual && x.count == y.count; });
    };
    size_t slots = 16;
    while (slots < 2 * moves.size()) slots *= 2;
    table.assign(slots, UINT32_MAX);
    size_t unique = 0;
    for (size_t m = 0; m < moves.size(); ++m) {
      size_t h = size_t(moves[m].hash ^ (uint64_t(moves[m].sum) * 0x9e3779b97f4a7c15ULL) ^ moves[m].open) & (slots - 1);
      while (table[h] != UINT32_MAX && !same(moves[table[h]], moves[m])) h = (h + 1) & (slots - 1);
      if (table[h] == UINT32_MAX) {
        table[h] = uint32_t(unique);
        moves[unique++] = moves[m];
      } else if (moves[m].closed > moves[table[h]].closed) {
        moves[table[h]] = moves[m];
      }
    }
    moves.resize(unique);
    // The beam: a kept state costs about its runs to build and its runs + 1 moves to expand at
    // the next node. Past the budget, only the best ranked are kept.
    size_t work = 0;
    for (const Move& m : moves) work += 2 * size_t(m.cost) + 3;
    if (work > work_per_node) {
      if (first_drop_ == 0) first_drop_ = int(i + 1);
      const size_t keep = std::max<size_t>(1, moves.size() * work_per_node / work);
      // Half by least capacity lost, half by most pipelines closed: ranked by loss alone the beam
      // can fill with packings that keep too many pipelines open ever to close them all.
      const size_t by_waste = keep - keep / 2;
      std::nth_element(moves.begin(), moves.begin() + by_waste, moves.end(), better);
      if (by_waste < keep) std::nth_element(moves.begin() + by_waste, moves.begin() + keep, moves.end(), closer);
      moves.resize(keep);
    }

    // Build the kept states and remember how each came about.
    next.assign(moves.size(), State{});
    std::vector<Step>& steps = layers_[i];
    steps.resize(moves.size());
    next_arena.clear();
    for (size_t m = 0; m < moves.size(); ++m) {
      const Move& mv = moves[m];
      const State& parent = states[mv.parent];
      State& s = next[m];
      s = {uint32_t(next_arena.size()), 0, mv.open, mv.closed, mv.sum, mv.hash};
      append_child(arena.data() + parent.offset, parent.runs, mv.residual, inserted(mv), next_arena);
      s.runs = uint32_t(next_arena.size() - s.offset);
      steps[m] = {mv.parent, mv.residual};
      if (s.open == 0) {
        while (first_layer_.size() < size_t(s.closed)) {
          first_layer_.push_back(int(i + 1));
          terminal_index_.push_back(uint32_t(m));
          terminal_pipelines_.push_back(s.closed);
        }
      }
    }
    states.swap(next);
    arena.swap(next_arena);
  }
  // A terminal that closed f > k pipelines at once (only once the beam dropped something) also
  // answers k, with its k smallest pipelines.
  stages_.assign(first_layer_.begin(), first_layer_.end());
  for (size_t k = 1; k <= stages_.size();) {
    const int f = terminal_pipelines_[k - 1];
    if (f == int(k)) {
      ++k;
      continue;
    }
    const std::vector<std::vector<int>> closed = replay(first_layer_[k - 1], terminal_index_[k - 1]);
    int total = 0;
    for (size_t j = 0; j < closed.size(); ++j) {
      total += int(closed[j].size());
      if (j + 1 >= k && j + 1 < size_t(f)) stages_[j] = total;  // k .. f - 1 share this terminal
    }
    k = size_t(f);
  }
}

int PipelinePacking::stages(size_t k) const {
  return k < 1 || k > stages_.size() ? INT32_MAX : stages_[k - 1];
}

int PipelinePacking::lower_bound(size_t k) const {
  if (k < 1) return 0;
  if (k <= first_layer_.size() && (first_drop_ == 0 || first_layer_[k - 1] <= first_drop_)) return stages(k);
  if (first_drop_ == 0) return INT32_MAX;  // the exact programme reached every node: impossible
  // Capacity: the m largest must hold k * need. Count: every pipeline needs at least as many
  // nodes as the largest ones take to cover need. Search: no terminal up to the first drop.
  const int64_t total_need = int64_t(k) * need_;
  const auto enough = std::lower_bound(prefix_.begin(), prefix_.end(), total_need);
  if (enough == prefix_.end()) return INT32_MAX;
  const auto one = std::lower_bound(prefix_.begin(), prefix_.end(), need_);
  const int64_t per_pipeline = one - prefix_.begin();
  const int64_t bound = std::max({int64_t(enough - prefix_.begin()), int64_t(k) * per_pipeline, int64_t(first_drop_) + 1});
  return int(std::min<int64_t>(bound, INT32_MAX));
}

std::vector<std::vector<int>> PipelinePacking::replay(int layer, uint32_t index) const {
  std::vector<int64_t> joined(static_cast<size_t>(layer));
  for (size_t l = size_t(layer); l-- > 0;) {
    joined[l] = layers_[l][index].residual;
    index = layers_[l][index].parent;
  }
  std::vector<std::vector<int>> pipelines;
  std::map<int64_t, std::vector<size_t>> open;  // residual -> pipelines with it
  for (size_t j = 0; j < joined.size(); ++j) {
    size_t p = pipelines.size();
    int64_t residual = need_;
    if (joined[j] == 0) {
      pipelines.emplace_back();
    } else {
      auto it = open.find(joined[j]);
      p = it->second.back();
      residual = it->first;
      it->second.pop_back();
      if (it->second.empty()) open.erase(it);
    }
    pipelines[p].push_back(int(j));
    residual -= capacities_[j];
    if (residual > 0) open[residual].push_back(p);
  }
  // Fewest stages first: a terminal that closed more than k at once gives its k smallest.
  std::stable_sort(pipelines.begin(), pipelines.end(), [](const auto& a, const auto& b) { return a.size() < b.size(); });
  return pipelines;
}

std::vector<std::vector<int>> PipelinePacking::pipelines(size_t k) const {
  if (k < 1 || k > first_layer_.size()) return {};
  std::vector<std::vector<int>> closed = replay(first_layer_[k - 1], terminal_index_[k - 1]);
  closed.resize(k);
  return closed;
}

}  // namespace px::swarm

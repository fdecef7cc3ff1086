#pragma once
// The swarm's layer scheduler: which node holds which layers, decided from the live nodes'
// announcements. Pure planning (plan_assignments) plus the bookkeeping of assignments sent
// and not yet announced back. It moves as few layers as possible:
//  - while ready stages cover the model, nobody moves: a node that joins gets the whole model
//    if it can hold it (a pipeline of its own), else a replica of the range with the fewest
//    replicas it can hold (the busiest among equals): it restores the pipeline a failure broke,
//    and keeps a spare of every range so one fault does not uncover a layer;
//  - when coverage is lost, the gap is repaired where it is: the ranges still in service stay,
//    and only the fewest new stages are loaded, by joining nodes or else by replicas whose range
//    another node still holds;
//  - at the start, or when no repair exists, the full allocation (allocate_layers) runs over
//    every assignable node, and only nodes whose range changes are told.
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "model/model_config.h"
#include "swarm/allocation.h"
#include "swarm/pipeline_messages.h"

namespace px::swarm {

struct SchedulerPolicy {
  ModelFootprint model;
  AllocationConfig allocation;
  int wait_nodes = 1;             // assignable nodes to wait for before the first allocation (only)
};

// New ranges for the nodes that should change, by node id. `fixed`: nodes that refused
// assignments (pinned by hand) — they count for coverage but are never moved.
std::map<std::string, LayerRange> plan_assignments(const std::vector<NodeAnnouncement>& nodes,
                                                   const std::set<std::string>& fixed, const SchedulerPolicy& policy);

// Whether ready stages among `nodes` chain from layer 0 to n_layers.
bool covers_model(const std::vector<NodeAnnouncement>& nodes, int n_layers);

}  // namespace px::swarm

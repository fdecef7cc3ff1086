#pragma once
// A ready stage's announcement for the swarm's decision tests (cluster view, scheduler, links):
// node `id` (its last two hex digits pick its port) holding layers [begin, end) of an 8-layer
// model "m", 1000 layers a second, room for weights and KV.
#include <string>

#include "swarm/pipeline_messages.h"

namespace px::swarm::test {

inline NodeAnnouncement sample_node(const std::string& id, int begin, int end, const std::string& state = "ready",
                                    uint64_t sequence = 1) {
  NodeAnnouncement n;
  n.node_id = id;
  n.address = "127.0.0.1:" + std::to_string(7000 + std::stoi(id.substr(id.size() - 2), nullptr, 16));
  n.model_id = "m";
  n.n_layers = 8;
  n.layer_begin = begin;
  n.layer_end = end;
  n.state = state;
  n.layers_per_second = 1000;
  n.free_memory = 1e9;
  n.free_kv_tokens = 1000;
  n.sequence = sequence;
  return n;
}

}  // namespace px::swarm::test

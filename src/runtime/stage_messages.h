#pragma once
// What travels along a pipeline, as plain data. A request's *head* (the node whose API took
// it) opens it on stage 0 and appends every sampled token; each stage turns the chunks it ran
// into chunks for the next stage; the last stage samples and sends the token back to the head
// (a ring). Releases follow the chunks down the pipeline, so every stage frees a request's KV
// after its last chunk. One node alone is a one-stage pipeline: the same messages, passed in
// process. The swarm's transport serialises exactly these structures.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sampling/sampler.h"

namespace px {

// A request's identity across the swarm: unique per head (the head mixes its node id in).
using RequestId = uint64_t;

// One stage of a request's route, as the head chose it: which peer (by node id, not only by
// address: a new process on a dead one's port is another peer) is to run which layers. A stage
// whose id or range is not the hop's refuses the request rather than compute on a stale plan.
struct RouteHop {
  std::string address;
  std::string node_id;
  int32_t layer_begin = 0;
  int32_t layer_end = 0;
  bool operator==(const RouteHop&) const = default;
};

// What every stage learns about a request with its first chunk: the last stage samples with
// it, the others only keep the token history.
struct StageRequestSetup {
  RequestId id = 0;
  SamplingParams sampling;
  bool logprobs = false;
  int32_t top_logprobs = 0;          // 0..20
  uint64_t stream_id = 0;            // RNG stream of the request
  bool reuse_prefix = true;          // stage 0 may skip positions its prefix cache holds
  // Where the request's rows go, which the runtime only passes along. `hops` are the stages in
  // layer order, `head` (an address) gets the sampled tokens. Empty in a single process.
  std::string head;
  std::vector<RouteHop> hops;
  // A verification replay (swarm/result_verifier.h): each stage also sends the head its output
  // rows, which the head checks against the commitments of the route that served the request.
  bool report_hidden = false;
};

// One request's rows between two stages: positions [begin, begin + tokens.size()).
struct StageChunk {
  RequestId request = 0;
  int32_t begin = 0;
  std::vector<int32_t> tokens;       // the rows' token ids (every stage keys its KV blocks by them)
  std::vector<float> hidden;         // [tokens.size(), n_embd]: the previous stage's output
  bool sample = false;               // reaches the request's newest token: the last stage samples
  // The first chunk of a request at a stage carries the setup and the tokens before `begin`
  // (the history the sampler's penalties and the prefix cache need).
  std::optional<StageRequestSetup> setup;
  std::vector<int32_t> history;      // tokens [0, begin), with setup only
  // When the sending stage commits (StageConfig::commit_top_k): serialize_commitment() of
  // commit_states(hidden) (runtime/state_commitment.h), so a verifier can replay and check it.
  std::vector<uint8_t> commitment;
};

// The last stage's answer for one request (or a stage's failure on it).
struct SampledToken {
  RequestId request = 0;
  int32_t position = 0;              // the position the token takes
  int32_t token = -1;
  SampleInfo info;                   // logprob and alternatives when the request asked
  std::string error;                 // non-empty: the request failed on some stage
  // With an error: the route was stale, not the request at fault — this node (by id) does not
  // hold what the route expected of it (its range changed, or another process has its address).
  // The head re-routes around it without counting an attempt.
  std::string stale_node;
  bool no_route = false;             // (local to a head) no pipeline could take it in time
};

}  // namespace px

#pragma once
// --verify full: two routes of one request, with no node in common, sampled different tokens at
// the same position. The head's SwarmEntry notices it and the ResultVerifier decides it
// (swarm/result_arbiter.cpp); these are what passes between them.
#include <string>
#include <vector>

#include "runtime/stage_messages.h"

namespace px::swarm {

struct TokenDispute {
  RequestId request = 0;                  // the head's id (for messages)
  StageRequestSetup setup;                // sampling and logprob options
  std::vector<int32_t> history;           // tokens [0, position): the token disputed is the next
  struct Claim {
    RequestId wire = 0;                   // the id the route's stages know the request by
    std::vector<RouteHop> hops;
    int32_t token = -1;
  };
  std::vector<Claim> claims;
};

struct TokenVerdict {
  bool decided = false;                   // false: the head could not compute it (error says why)
  int32_t token = -1;                     // the head's own
  SampleInfo info;                        // its logprobs, when the request asked
  std::string error;
};

}  // namespace px::swarm

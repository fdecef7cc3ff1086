#pragma once
// What passes between a head's SwarmEntry and its ResultVerifier: a request completed on a
// route (the verifier samples these for replays), and, with --verify full, a dispute — two routes
// of one request, with no node in common, sampled different tokens (or logprobs) at the same position — and its
// verdict (swarm/result_arbiter.cpp).
#include <string>
#include <vector>

#include "runtime/stage_messages.h"

namespace px::swarm {

struct CompletedRoute {
  RequestId wire = 0;                     // the id the route's stages knew the request by
  std::vector<RouteHop> hops;
  StageRequestSetup setup;                // its sampling, seed and stream
  // The route's last stage sampled tokens [first_sampled, sampled_end) (a token after that was
  // the head's own, decided on a dispute).
  int first_sampled = 0;
  int sampled_end = 0;
  std::vector<int32_t> tokens;            // the request's whole history
};

struct TokenDispute {
  RequestId request = 0;                  // the head's id (for messages)
  StageRequestSetup setup;                // sampling and logprob options
  std::vector<int32_t> history;           // tokens [0, position): the token disputed is the next
  struct Claim {
    RequestId wire = 0;                   // the id the route's stages know the request by
    std::vector<RouteHop> hops;
    int32_t token = -1;
    float logprob = 0;                    // of its token, when the request asked for logprobs
  };
  std::vector<Claim> claims;
};

// Two routes' logprobs of one token differ by more than honest noise (an f16 link, another SIMD
// target) moves them: then the pair's answer is in dispute although its token is not.
inline constexpr float kLogprobTolerance = 0.05f;

struct TokenVerdict {
  bool decided = false;                   // false: the head could not compute it (error says why)
  int32_t token = -1;                     // the head's own
  SampleInfo info;                        // its logprobs, when the request asked
  std::string error;
};

}  // namespace px::swarm

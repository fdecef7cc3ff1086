#pragma once
// What `parallax bench-swarm` and `parallax chaos` share: starting `parallax` nodes on
// 127.0.0.1 as child processes, waiting for a swarm to serve, and streaming completions from
// its API with the arrival time of every chunk.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/subprocess.h"

namespace px::cli {

// This executable's path (the nodes are started from the same binary).
std::string self_binary();

// Waits (60 s at most) for the pattern in the process's output; throws px::Error with the
// output when it does not appear.
std::string await_output(Subprocess& process, const std::string& pattern);

// A head started with `parallax run ... --port 0 --p2p-port 0`: its addresses once ready.
struct StartedNode {
  std::unique_ptr<Subprocess> process;
  std::string p2p;
  std::string api;  // empty for a node without the API
  int listen_port = 0;  // what it binds (differs from p2p's port when it advertises another)
};
StartedNode start_node(std::vector<std::string> args);

// Waits until `api` answers /health and, for a swarm, reports a pipeline (60 s at most).
void wait_until_serving(const std::string& api, bool swarm);

struct StreamResult {
  int status = 0;
  std::string text;
  int chunks = 0;              // SSE data events that carried tokens (text, or logprobs when asked)
  double ttft_s = 0;           // first token
  double last_s = 0;           // last token
  double worst_gap_s = 0;      // longest silence between two events (the first counted from the request)
  std::chrono::steady_clock::time_point worst_gap_end{};  // when it ended
  std::string error;           // an error frame's message, or the transport's
};

// POSTs `body` (a completions request; "stream": true is added) and reads the SSE stream.
// The link rates (Mbit/s) the head at `api` measured towards each peer (/v1/cluster's
// mbit_per_s), fastest first; empty when none is measured yet.
std::vector<double> probed_link_mbit(const std::string& api);

StreamResult stream_completion(const std::string& api, nlohmann::json body, int timeout_s = 300);

}  // namespace px::cli

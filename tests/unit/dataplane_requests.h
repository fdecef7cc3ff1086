#pragma once
// What the data-plane tests (an in-process swarm, fake_network.h) send and expect: eight
// requests of growing prompts, greedy and seeded in turn; a stream read to its end; a ready
// stage's announcement.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "swarm/pipeline_messages.h"

namespace px::swarm {

inline std::vector<std::shared_ptr<RequestStream>> submit_test_requests(Engine& engine, int max_tokens = 40) {
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (int i = 0; i < 8; ++i) {
    std::vector<int32_t> prompt;
    for (int j = 0; j < 4 + 9 * i; ++j) prompt.push_back(1 + (j * 11 + i * 17) % 200);
    RequestOptions o;
    o.max_tokens = max_tokens;
    o.ignore_eos = true;
    o.sampling.temperature = i % 2 ? 0.8f : 0.0f;
    o.sampling.seed = 7 + i;
    streams.push_back(engine.submit(prompt, o));
  }
  return streams;
}

// The stream's token ids; `finish` gets how it ended. An error or a minute without the end fails
// the test.
inline std::vector<int32_t> drain_stream(RequestStream& stream, FinishReason* finish) {
  using namespace std::chrono_literals;
  std::vector<int32_t> ids;
  StreamEvent e;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!stream.next(e, 50ms)) continue;
    for (const auto& t : e.tokens) ids.push_back(t.id);
    if (e.finish != FinishReason::None) {
      *finish = e.finish;
      if (!e.error.empty()) ADD_FAILURE() << e.error;
      return ids;
    }
  }
  ADD_FAILURE() << "stream did not finish";
  return ids;
}

// A ready stage of model "m" holding [begin, end), fast and with room.
inline NodeAnnouncement ready_stage(const std::string& id, const std::string& address, int begin, int end) {
  NodeAnnouncement n;
  n.node_id = id;
  n.address = address;
  n.model_id = "m";
  n.layer_begin = begin;
  n.layer_end = end;
  n.state = "ready";
  n.layers_per_second = 1000;
  n.free_kv_tokens = 4096;
  n.sequence = 1;
  return n;
}

}  // namespace px::swarm

// The swarm's data plane without gRPC: stage hosts and a request head exchanging the pipeline
// messages through an in-process network. Requests follow the routes the head stamps on them,
// give the single node's tokens, and survive a stage that dies mid-stream: the head reopens
// them on the other pipeline with their history and the output does not change.
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <set>
#include <thread>

#include "unit/dataplane_requests.h"
#include "unit/fake_network.h"
#include "unit/test_temp_dir.h"

#include "core/thread_pool.h"
#include "model/gguf.h"
#include "model/synth.h"
#include "runtime/batch_engine.h"
#include "swarm/stage_host.h"
#include "swarm/swarm_entry.h"

namespace px::swarm {
namespace {

using namespace std::chrono_literals;

class SwarmDataPlane : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = px::test::temp_dir() + "dataplane.gguf";
    SynthSpec spec;
    spec.arch = "qwen2";
    spec.n_layers = 6;
    spec.n_embd = 64;
    spec.type = DType::Q8_0;
    write_synthetic_model(spec, path_);
  }

  std::vector<std::shared_ptr<RequestStream>> submit_all(Engine& engine) { return submit_test_requests(engine); }
  static std::vector<int32_t> drain(RequestStream& stream, FinishReason* finish) { return drain_stream(stream, finish); }

  std::vector<std::vector<int32_t>> reference() {
    auto file = GgufFile::open(path_);
    ThreadPool pool(1);
    BatchEngine engine(ModelShard::load(path_), Tokenizer::from_gguf(*file), pool, {}, "ref");
    std::vector<std::vector<int32_t>> out;
    for (auto& s : submit_all(engine)) {
      FinishReason f;
      out.push_back(drain(*s, &f));
    }
    return out;
  }

  static NodeAnnouncement announce(const std::string& id, const std::string& address, int begin, int end) {
    return ready_stage(id, address, begin, end);
  }

  // A head over `view` and `net` that may open each request once: only refusals of stale
  // routes (which cost no attempt) and the watchdog can move it.
  struct Head {
    Head(ClusterView& view, FakeNetwork& net, std::chrono::milliseconds progress_timeout = {})
        : head(make(progress_timeout)), entry(view, net, head, entry_config("head:1", 5s)) {
      head.connect(entry);
      net.set_head("head:1", &entry);
    }
    static RequestHead make(std::chrono::milliseconds progress_timeout) {
      auto file = GgufFile::open(path_);
      HeadConfig hc;
      hc.context_size = 512;
      hc.n_vocab = ModelShard::load(path_)->config().n_vocab;
      hc.max_attempts = 1;
      hc.progress_timeout = progress_timeout;
      return RequestHead(Tokenizer::from_gguf(*file), hc, "m");
    }
    RequestHead head;
    SwarmEntry entry;
  };

  static StageConfig stage_config() {
    StageConfig stage;
    stage.context_size = 512;
    stage.kv_cache_tokens = 4096;
    return stage;
  }

  static ClusterView make_view() {
    ClusterViewConfig vc;
    vc.model_id = "m";
    vc.n_layers = 6;
    vc.max_running_per_stage = 16;
    return ClusterView(vc);
  }

  void expect_the_second_hop_refuses(const std::string& actual_id, LayerRange actual,
                                     const std::vector<std::vector<int32_t>>& want);

  // Every request gives the single node's tokens.
  void expect_reference(Engine& engine, const std::vector<std::vector<int32_t>>& want) {
    auto streams = submit_all(engine);
    for (size_t i = 0; i < streams.size(); ++i) {
      FinishReason finish = FinishReason::None;
      EXPECT_EQ(drain(*streams[i], &finish), want[i]) << "request " << i;
      EXPECT_EQ(finish, FinishReason::Length);
    }
  }

  static inline std::string path_;
};

TEST_F(SwarmDataPlane, RequestsSurviveAStageThatDiesMidStream) {
  const auto want = reference();

  FakeNetwork net;
  StageConfig stage;
  stage.context_size = 512;
  stage.kv_cache_tokens = 4096;
  // Pipeline A: [0,3) [3,6); pipeline B: [0,6) on one node.
  StageHost a1(path_, "a1:1", "00000000000000a1", 1, stage, net), a2(path_, "a2:1", "00000000000000a2", 1, stage, net),
      b(path_, "b:1", "00000000000000bb", 1, stage, net);
  a1.assign({0, 3});
  a2.assign({3, 6});
  b.assign({0, 6});
  net.add_stage("a1:1", &a1);
  net.add_stage("a2:1", &a2);
  net.add_stage("b:1", &b);

  ClusterViewConfig vc;
  vc.model_id = "m";
  vc.n_layers = 6;
  vc.max_running_per_stage = 4;
  ClusterView view(vc);
  view.update(announce("00000000000000a1", "a1:1", 0, 3));
  view.update(announce("00000000000000a2", "a2:1", 3, 6));
  view.update(announce("00000000000000bb", "b:1", 0, 6));

  auto file = GgufFile::open(path_);
  HeadConfig hc;
  hc.context_size = 512;
  hc.n_vocab = ModelShard::load(path_)->config().n_vocab;
  hc.max_attempts = 4;
  RequestHead head(Tokenizer::from_gguf(*file), hc, "m");
  SwarmEntry entry(view, net, head, entry_config("head:1", 5s));
  head.connect(entry);
  net.set_head("head:1", &entry);

  auto streams = submit_all(head);
  // Both pipelines take requests (the head spreads its own load): b at some point (its requests
  // may already be done), a2 still holding some when it dies.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  bool b_took_some = false;
  while (std::chrono::steady_clock::now() < deadline) {
    b_took_some = b_took_some || b.requests() > 0;
    if (b_took_some && a2.requests() > 0) break;
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(b_took_some);
  ASSERT_GT(a2.requests(), 0u);
  // a2 dies; the head learns it (as heartbeats would tell it) and moves its requests to b.
  net.kill("a2:1");
  view.remove("00000000000000a2");
  entry.peer_failed("00000000000000a2");

  for (size_t i = 0; i < streams.size(); ++i) {
    FinishReason finish = FinishReason::None;
    EXPECT_EQ(drain(*streams[i], &finish), want[i]) << "request " << i;
    EXPECT_EQ(finish, FinishReason::Length);
  }
  head.shutdown();
  net.stop();
}

TEST_F(SwarmDataPlane, WithoutAnyCoverSubmitWaitsThenFailsClearly) {
  FakeNetwork net;
  ClusterViewConfig vc;
  vc.model_id = "m";
  vc.n_layers = 6;
  ClusterView view(vc);
  view.update(announce("00000000000000a1", "a1:1", 0, 3));  // nobody holds [3, 6)
  auto file = GgufFile::open(path_);
  HeadConfig hc;
  hc.n_vocab = ModelShard::load(path_)->config().n_vocab;
  RequestHead head(Tokenizer::from_gguf(*file), hc, "m");
  SwarmEntry entry(view, net, head, entry_config("head:1", 300ms));
  head.connect(entry);
  RequestOptions o;
  o.max_tokens = 4;
  const auto start = std::chrono::steady_clock::now();
  try {
    head.submit({1, 2, 3}, o);
    ADD_FAILURE() << "submit without a cover should throw";
  } catch (const UnavailableError& e) {
    EXPECT_NE(std::string(e.what()).find("covers all 6 layers"), std::string::npos) << e.what();
  }
  EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);
  head.shutdown();
}


// Root cause of client errors under churn: a head's view still says a node holds the whole model
// while it was reassigned to [3, 6). The open it receives is refused as a stale route (no attempt
// counted, the node avoided) and the requests run on the other pipeline, unchanged.
TEST_F(SwarmDataPlane, AnOpenForARangeTheStageNoLongerHoldsIsReRouted) {
  const auto want = reference();
  FakeNetwork net;
  StageHost x(path_, "x:1", "00000000000000cc", 1, stage_config(), net), b(path_, "b:1", "00000000000000bb", 1, stage_config(), net);
  x.assign({3, 6});
  b.assign({0, 6});
  net.add_stage("x:1", &x);
  net.add_stage("b:1", &b);
  ClusterView view = make_view();
  NodeAnnouncement stale = announce("00000000000000cc", "x:1", 0, 6);
  stale.layers_per_second = 1e6;  // by far the cheapest route, as the head believes
  view.update(stale);
  view.update(announce("00000000000000bb", "b:1", 0, 6));
  Head h(view, net);
  expect_reference(h.head, want);
  EXPECT_EQ(x.stats().steps, 0);  // it computed nothing for a plan it is not part of
  h.head.shutdown();
  net.stop();
}

// The head believes in a fast pipeline a1 [0, 3) + a2 [3, 6) (node ids ...a1, ...a2) and a slow
// single stage b [0, 6); the host at a2's address is `actual_id` holding `actual`. Whatever it
// is, every request gives the single node's tokens and the host computes nothing.
void SwarmDataPlane::expect_the_second_hop_refuses(const std::string& actual_id, LayerRange actual,
                                                   const std::vector<std::vector<int32_t>>& want) {
  FakeNetwork net;
  StageHost a1(path_, "a1:1", "00000000000000a1", 1, stage_config(), net),
      a2(path_, "a2:1", actual_id, 1, stage_config(), net), b(path_, "b:1", "00000000000000bb", 1, stage_config(), net);
  a1.assign({0, 3});
  a2.assign(actual);
  b.assign({0, 6});
  for (auto [address, host] : {std::pair{"a1:1", &a1}, std::pair{"a2:1", &a2}, std::pair{"b:1", &b}}) net.add_stage(address, host);
  ClusterView view = make_view();
  for (NodeAnnouncement n : {announce("00000000000000a1", "a1:1", 0, 3), announce("00000000000000a2", "a2:1", 3, 6)}) {
    n.layers_per_second = 1e6;
    view.update(n);
  }
  view.update(announce("00000000000000bb", "b:1", 0, 6));
  Head h(view, net);
  expect_reference(h.head, want);
  EXPECT_EQ(a2.stats().steps, 0);
  h.head.shutdown();
  net.stop();
}

// A chunk for layers [3, 6) reaching a node that now holds [2, 6): computing it would silently
// corrupt every token (hidden states of layer 3 fed to layer 2). It is refused and re-routed.
TEST_F(SwarmDataPlane, AChunkForAnotherRangeIsRefusedNotComputed) {
  expect_the_second_hop_refuses("00000000000000a2", {2, 6}, reference());
}

// A node that died and a new one started on its port: routes naming the dead node's id are
// refused by the newcomer, so nothing meant for the dead node is computed by another (even with
// the same range).
TEST_F(SwarmDataPlane, ANewNodeOnADeadNodesAddressRefusesItsRoutes) {
  expect_the_second_hop_refuses("00000000000000d2", {3, 6}, reference());
}

// A first stage that takes messages and never answers (its link lost them while staying up, so
// no heartbeat notices): the head's progress watchdog moves the requests, output unchanged.
TEST_F(SwarmDataPlane, TheProgressWatchdogMovesRequestsOffARouteThatLostThem) {
  const auto want = reference();
  FakeNetwork net;
  StageHost b(path_, "b:1", "00000000000000bb", 1, stage_config(), net);
  b.assign({0, 6});
  net.add_stage("b:1", &b);
  net.blackhole("void:1");
  ClusterView view = make_view();
  NodeAnnouncement lost = announce("00000000000000ee", "void:1", 0, 6);
  lost.layers_per_second = 1e6;
  view.update(lost);
  view.update(announce("00000000000000bb", "b:1", 0, 6));
  Head h(view, net, 300ms);
  expect_reference(h.head, want);
  h.head.shutdown();
  net.stop();
}

}  // namespace
}  // namespace px::swarm

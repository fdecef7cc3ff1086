// Result verification on the in-process data plane, with a dishonest stage in the swarm
// (perturbed outputs on the first stage, another model's weights on the last).
// --verify full: every request runs on two routes with no node in common and a token reaches the
// client only when both sampled it; when they differ the head computes it itself: every request
// gives the single node's tokens, the attacker is banned and no honest stage is.
// Sampled replays (every request replayed): the attacker is banned after its first requests —
// a last stage too, whose tokens the head checks from the replay's rows at its input — no honest
// stage is, and afterwards every request gives the single node's tokens.
#include <gtest/gtest.h>

#include "unit/dataplane_requests.h"
#include "unit/fake_network.h"
#include "unit/test_temp_dir.h"
#include "unit/verify_test_model.h"

#include "core/thread_pool.h"
#include "model/gguf.h"
#include "model/synth.h"
#include "runtime/batch_engine.h"

namespace px::swarm {
namespace {

using namespace std::chrono_literals;

struct Attack {
  const char* name;
  bool last_stage;        // the attacker holds [3, 6) (else [0, 3))
  StageFaultKind fault;   // Corrupt, or WrongModel (computes with another file)
  bool full;              // --verify full (else every request replayed)
};

class VerifyAttack : public ::testing::TestWithParam<Attack> {
 protected:
  static void SetUpTestSuite() {
    SynthSpec spec = px::test::verify_test_spec();
    path_ = px::test::temp_dir() + "verify_full.gguf";
    write_synthetic_model(spec, path_);
    spec.seed += 1;
    other_path_ = px::test::temp_dir() + "verify_full_other.gguf";
    write_synthetic_model(spec, other_path_);
  }

  static std::vector<std::shared_ptr<RequestStream>> submit_all(Engine& engine) { return submit_test_requests(engine, 24); }
  static std::vector<int32_t> drain(RequestStream& stream) {
    FinishReason finish = FinishReason::None;
    std::vector<int32_t> ids = drain_stream(stream, &finish);
    EXPECT_EQ(finish, FinishReason::Length);
    return ids;
  }

  static inline std::string path_, other_path_;
};

TEST_P(VerifyAttack, TheAttackerAloneIsBannedAndClientsGetTheSingleNodesTokens) {
  const Attack& attack = GetParam();
  std::vector<std::vector<int32_t>> want;
  {
    auto file = GgufFile::open(path_);
    ThreadPool pool(1);
    BatchEngine engine(ModelShard::load(path_), Tokenizer::from_gguf(*file), pool, {}, "ref");
    for (auto& s : submit_all(engine)) want.push_back(drain(*s));
  }

  // Three replicas of the attacker's stage, two of the other: after the ban two routes with no
  // node in common remain.
  FakeNetwork net;
  ClusterViewConfig vc;
  vc.model_id = "m";
  vc.n_layers = 6;
  vc.max_running_per_stage = 16;
  ClusterView view(vc);
  const LayerRange attacked = attack.last_stage ? LayerRange{3, 6} : LayerRange{0, 3};
  const LayerRange other = attack.last_stage ? LayerRange{0, 3} : LayerRange{3, 6};
  struct Spec {
    std::string name;
    LayerRange range;
    bool attacker = false;
  };
  const std::vector<Spec> specs = {{"a", attacked, true}, {"b", attacked}, {"c", attacked}, {"d", other}, {"e", other}};
  std::vector<std::unique_ptr<StageHost>> hosts;
  std::string attacker_id;
  for (const Spec& s : specs) {
    StageConfig stage;
    stage.context_size = 512;
    stage.kv_cache_tokens = 4096;
    stage.commit_top_k = kDefaultCommitTopK;
    stage.prefix_caching = false;  // as in open swarms (swarm_node.cpp)
    std::string weights = path_;
    if (s.attacker) {
      stage.fault.kind = attack.fault;
      stage.fault.corrupt_scale = 1.0;  // enough to change tokens
      if (attack.fault == StageFaultKind::WrongModel) weights = other_path_;
    }
    const std::string id = std::string(15, '0') + s.name, address = s.name + ":1";
    if (s.attacker) attacker_id = id;
    hosts.push_back(std::make_unique<StageHost>(weights, address, id, 1, stage, net));
    hosts.back()->assign(s.range);
    net.add_stage(address, hosts.back().get());
    view.update(ready_stage(id, address, s.range.begin, s.range.end));
  }

  VerifierConfig vcfg;
  vcfg.rate = attack.full ? 0 : 1;  // full: only the pairs' disputes
  vcfg.model_path = path_;
  vcfg.n_embd = ModelShard::load(path_)->config().n_embd;
  vcfg.self_address = "head:1";
  vcfg.first_id = RequestId(1) << 39;
  SwarmEntry* entry_ptr = nullptr;
  ResultVerifier verifier(view, net, vcfg, [&](const std::string& node) { entry_ptr->peer_failed(node); });

  auto file = GgufFile::open(path_);
  HeadConfig hc;
  hc.context_size = 512;
  hc.n_vocab = ModelShard::load(path_)->config().n_vocab;
  hc.max_attempts = 2;
  hc.reuse_prefix = false;
  RequestHead head(Tokenizer::from_gguf(*file), hc, "m");
  SwarmEntryConfig ec = entry_config("head:1", 5s);
  ec.paired = attack.full;
  ec.first_twin_id = RequestId(1) << 38;
  ec.on_completed = [&](const CompletedRoute& done) { verifier.completed(done); };
  ec.arbitrate = [&](TokenDispute d, std::function<void(TokenVerdict)> done) {
    verifier.arbitrate(std::move(d), std::move(done));
  };
  SwarmEntry entry(view, net, head, ec);
  entry_ptr = &entry;
  head.connect(entry);
  net.set_head("head:1", &entry, &verifier);

  auto streams = submit_all(head);
  for (size_t i = 0; i < streams.size(); ++i) {
    const std::vector<int32_t> got = drain(*streams[i]);
    if (attack.full) {
      EXPECT_EQ(got, want[i]) << "request " << i;  // (replays catch the attacker after the fact)
    }
  }
  // Replays start after the grace for a request's last reports.
  for (int i = 0; i < 200 && !view.banned(attacker_id); ++i) std::this_thread::sleep_for(50ms);
  const nlohmann::json v = verifier.to_json();
  if (attack.full) {
    EXPECT_GE(v.value("token_disputes", 0), 1) << v.dump(1);
  } else if (attack.last_stage) {
    EXPECT_GE(v["last_stage"].value("tokens", 0), 1) << v.dump(1);
  } else {
    EXPECT_GE(v.value("disputes", 0), 1) << v.dump(1);
  }
  EXPECT_EQ(v.value("inexact_inputs", -1), 0) << "one machine: every input rebuilt bit for bit; " << v.dump(1);
  EXPECT_TRUE(view.banned(attacker_id)) << v.dump(1);
  ASSERT_EQ(v["bans"].size(), 1u) << v.dump(1);
  EXPECT_EQ(v["bans"][0].value("id", ""), attacker_id);
  std::cerr << "verification: " << v.dump() << "\n";

  // With the attacker gone, requests still run on two disjoint routes and give the same tokens.
  streams = submit_all(head);
  for (size_t i = 0; i < streams.size(); ++i) EXPECT_EQ(drain(*streams[i]), want[i]) << "after the ban, request " << i;
  head.shutdown();
  net.stop();
}

INSTANTIATE_TEST_SUITE_P(Attacks, VerifyAttack,
                         testing::Values(Attack{"full_corrupt_first_stage", false, StageFaultKind::Corrupt, true},
                                         Attack{"full_wrong_model_last_stage", true, StageFaultKind::WrongModel, true},
                                         Attack{"replayed_corrupt_first_stage", false, StageFaultKind::Corrupt, false},
                                         Attack{"replayed_wrong_model_last_stage", true, StageFaultKind::WrongModel, false}),
                         [](const testing::TestParamInfo<Attack>& info) { return std::string(info.param.name); });

TEST(VerifyFullRouting, WithOnlyOnePipelineRequestsWaitThenFailNamingTheCause) {
  FakeNetwork net;
  ClusterViewConfig vc;
  vc.model_id = "m";
  vc.n_layers = 6;
  ClusterView view(vc);
  view.update(ready_stage("00000000000000a1", "a1:1", 0, 6));
  const std::string path = px::test::temp_dir() + "verify_full_routing.gguf";
  SynthSpec spec;
  spec.n_layers = 6;
  write_synthetic_model(spec, path);
  auto file = GgufFile::open(path);
  HeadConfig hc;
  hc.n_vocab = ModelShard::load(path)->config().n_vocab;
  RequestHead head(Tokenizer::from_gguf(*file), hc, "m");
  SwarmEntryConfig ec = entry_config("head:1", 300ms);
  ec.paired = true;
  SwarmEntry entry(view, net, head, ec);
  head.connect(entry);
  RequestOptions o;
  o.max_tokens = 4;
  try {
    head.submit({1, 2, 3}, o);
    ADD_FAILURE() << "one pipeline cannot serve --verify full";
  } catch (const UnavailableError& e) {
    EXPECT_NE(std::string(e.what()).find("two pipelines with no node in common"), std::string::npos) << e.what();
  }
  head.shutdown();
}

}  // namespace
}  // namespace px::swarm

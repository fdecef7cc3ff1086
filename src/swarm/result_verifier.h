#pragma once
// Verification of results in an open swarm, on a request head. Every stage but the last sends
// the head a commitment to the rows it passes on (runtime/state_commitment.h, carried by
// StageReport). When a request is over the head picks it with probability `rate` and replays it
// through another route as one prefill whose stages report their output rows; at every layer
// boundary the two routes share it checks the original stage's commitment against the replayed
// rows. The first boundary that disagrees is a dispute between two replicas; the head settles it
// by computing that stage itself from its own copy of the model (it is the one party it trusts),
// and bans whichever side its result contradicts: no route goes through the node for `ban_for`,
// and its in-flight requests move elsewhere. A stage that sends no commitments for requests it
// served is banned after `missing_strikes` sampled requests. See docs/VERIFICATION.md.
//
// With --verify full the head runs every request on two routes with no node in common and
// passes a token on only when both sampled it (swarm/swarm_entry.h); when they differ it asks
// arbitrate(): the head computes the token itself from its whole model and releases its own,
// and for each route that sampled another token it follows that route's stages one by one from
// the head's own rows — each stage's commitment must match what its layers give from its input
// as any honest link could have carried it (f32, f16, bf16) — and bans the first stage that
// does not (the last stage: the token is not what its layers give).
//
// Every stage after the first also reports a digest of the input rows it received
// (swarm/input_digest.h): when the head rebuilds a stage's input (from a replay's rows, or its
// own recompute, rounded as each wire dtype rounds) the digests say whether it has it bit for bit
// — then the strict checks apply — or only closely (another SIMD target upstream): then only
// gross differences count. The last stage commits nothing; its tokens are checked from the
// replay's rows at its input (swarm/last_stage_check.h).
//
// What sampling does not cover: requests that took more than one route (retried after a
// failure), boundaries no second replica shares, and a last stage's logprobs. Stages can tell a replay from a request (report_hidden):
// that lets a cheater behave on replays, but what it committed to on the original is fixed.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/stage_messages.h"
#include "runtime/state_commitment.h"
#include "swarm/cluster_view.h"
#include "swarm/last_stage_check.h"
#include "swarm/message_sender.h"
#include "swarm/token_dispute.h"

namespace px {
class ModelShard;
class ThreadPool;
}  // namespace px

namespace px::swarm {

// `rows` [n, width] as a link of `dtype` delivers them (f16, bf16 and q8 round; f32 is exact).
// The head is not told a link's dtype, so an honest stage's input is one of these.
std::vector<float> carried_as(std::span<const float> rows, WireDType dtype, int width);
constexpr WireDType kLinkDTypes[] = {WireDType::F32, WireDType::F16, WireDType::BF16, WireDType::Q8};

struct VerifierConfig {
  double rate = 0.05;                          // share of completed requests replayed
  bool full = false;                           // --verify full (for reports: the entry pairs routes)
  uint64_t seed = 0;                           // which ones (a hash of it and the request id)
  std::string model_path;                      // the head's own copy: it settles disputes
  int n_embd = 0;                              // the model's: the width of every committed row
  std::string self_address;                    // where replays send their rows and token
  RequestId first_id = 0;                      // replay ids: first_id, first_id + 1, ...
  int threads = 1;                             // for the head's own recompute
  CommitmentThresholds thresholds;             // for every check (any CPU: the defaults)
  double token_margin = kDefaultTokenMargin;   // a last stage's near-tie (swarm/last_stage_check.h)
  int max_checked_tokens = 32;                 // of a sampled request's, at its last stage
  std::chrono::milliseconds grace{500};        // for a completed request's last reports
  std::chrono::milliseconds replay_timeout{30000};
  int route_tries = 20;                        // a replay waits for a free route this many times,
  std::chrono::milliseconds route_retry{250};  // this long each
  std::chrono::seconds ban_for{3600};
  int max_tracked = 2048;                      // requests whose commitments are kept
  int max_rows = 4096;                         // longer requests are not replayed
  int max_queued = 1024;                       // sampled requests waiting for a replay
  int max_replays = 8;                         // replays in flight at once
  int missing_strikes = 3;                     // sampled requests a stage sent no commitments for
};

class ResultVerifier {
 public:
  // `on_ban`: a node was banned (the ClusterView knows already): move its requests elsewhere.
  ResultVerifier(ClusterView& view, MessageSender& sender, VerifierConfig config,
                 std::function<void(const std::string& node_id)> on_ban);
  ~ResultVerifier();

  // From stages (any thread): commitments of served requests, rows of replays.
  void on_reports(std::vector<StageReport> reports);
  // A request of this head is over on a route.
  void completed(const CompletedRoute& done);
  // A token (or a failure) for one of this verifier's replays: taken, true. Any other: false.
  bool on_token(const SampledToken& token);

  // Decides a dispute on the verifier's thread (after up to `grace` for the routes' last
  // commitments) and calls `done` there with the verdict; bans whoever it shows wrong.
  void arbitrate(TokenDispute dispute, std::function<void(TokenVerdict)> done);

  // {"rate", counts of what was checked and found, "bans": [...]}.
  nlohmann::json to_json() const;

 private:
  // One served request's commitments, per reporting stage (layer_end, node id), by first row.
  struct Chunk {
    int32_t rows = 0;
    std::vector<uint8_t> bytes;
  };
  using StageKey = std::pair<int32_t, std::string>;
  using Chunks = std::map<int32_t, Chunk>;  // by first row
  struct Tracked {
    std::map<StageKey, Chunks> stages;  // commitments to output rows
    std::map<StageKey, Chunks> inputs;  // digests of input rows (input_digest.h)
  };
  struct Job {
    CompletedRoute route;
    std::chrono::steady_clock::time_point due;
    int route_tries = 0;
  };
  // A boundary both routes share: the original stage's commitment [first_row, rows), the
  // replayed rows [0, rows) as they arrive.
  struct Boundary {
    RouteHop original;
    RouteHop replayed;
    Chunks original_inputs;              // the original stage's input digests
    StateCommitment commitment;
    int first_row = 0;
    std::vector<float> rows;
    std::vector<bool> have;
    int missing = 0;
  };
  struct Replay {
    RequestId id = 0;
    RequestId original = 0;
    std::vector<int32_t> tokens;         // the positions replayed
    std::vector<RouteHop> hops;          // the replay's route
    std::vector<Boundary> boundaries;    // in layer order
    // The original route's last stage and what it sampled (a share of its positions).
    RouteHop last;
    Chunks last_inputs;
    std::vector<SampledClaim> claims;
    SamplingParams sampling;
    uint64_t stream_id = 0;
    int width = 0;
    bool failed = false;
    std::chrono::steady_clock::time_point deadline;
    bool all_rows_in() const {
      return std::all_of(boundaries.begin(), boundaries.end(), [](const Boundary& b) { return b.missing == 0; });
    }
  };

  struct Assembled {
    StateCommitment commitment;
    int first_row = 0;
    int end_row = 0;
    std::string error;  // a commitment that does not parse, or does not match its chunk
  };
  static Assembled assemble(const Chunks& chunks);
  // The dtype whose rounding of `rows` [>= n_rows, width] gives, bit for bit, what a stage's
  // `digests` say it received in rows [0, n_rows); none when no rounding does (or the digests do
  // not cover those rows): the head did not rebuild that input exactly.
  static std::optional<WireDType> received_as(const Chunks& digests, std::span<const float> rows, int width,
                                              int n_rows);
  struct PendingDispute {
    TokenDispute dispute;
    std::function<void(TokenVerdict)> done;
    std::chrono::steady_clock::time_point due;
  };

  void loop();
  // Whether every committing stage of the dispute's routes has reported rows [0, position).
  bool commitments_in(const TokenDispute& dispute) const;
  // result_arbiter.cpp: the verdict, and bans.
  TokenVerdict decide(const TokenDispute& dispute);
  // Follows one route that sampled `claim.token` where the head samples another: bans the
  // first stage whose output its input does not explain.
  void judge(const TokenDispute& dispute, const TokenDispute::Claim& claim, int32_t head_token);
  std::shared_ptr<const ModelShard> shard_for(int begin, int end);
  // Takes a due job's commitments and starts its replay (or records why it cannot).
  void start(Job job);
  // Checks a replay whose rows are all in; bans whoever a settled dispute shows wrong.
  void evaluate(Replay& replay);
  // After every boundary agreed: the original last stage's tokens from the replay's rows at its
  // input (swarm/last_stage_check.h). False: it was found wrong (or sent no digests).
  bool check_last_stage(const Replay& replay);
  // Runs the disputed boundary's layers on this node over the replay's positions, from the
  // replay's rows at the boundary before as they arrive over a link of `input_dtype`; empty when
  // the replay has no rows there.
  std::vector<float> recompute(const Replay& replay, size_t boundary, WireDType input_dtype);
  void ban(const RouteHop& hop, const std::string& reason);
  void strike(const RouteHop& hop, const std::string& why);
  bool sampled(RequestId request) const;

  ClusterView& view_;
  MessageSender& sender_;
  const VerifierConfig config_;
  std::function<void(const std::string&)> on_ban_;
  std::unique_ptr<ThreadPool> pool_;             // the verifier thread's own
  // Ranges recently computed on the verifier thread (a few: a dispute walks a route's stages).
  std::map<std::pair<int, int>, std::shared_ptr<const ModelShard>> shards_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::map<RequestId, Tracked> tracked_;
  std::deque<RequestId> tracked_order_;          // oldest first, for eviction
  std::deque<Job> jobs_;
  std::map<RequestId, Replay> replays_;
  std::deque<PendingDispute> disputes_;
  RequestId next_id_;
  std::map<std::string, int> strikes_;           // node id -> sampled requests without commitments
  struct BanRecord {
    std::string node_id, address, reason;
    std::chrono::system_clock::time_point at;
  };
  std::vector<BanRecord> bans_;
  struct Counts {
    int64_t completed = 0, sampled = 0, replayed = 0, passed = 0, disputes = 0, cleared = 0, unsettled = 0;
    int64_t skipped_no_route = 0, skipped_multi_route = 0, skipped_too_long = 0, skipped_busy = 0;
    int64_t missing_commitments = 0, abandoned = 0;
    int64_t replayed_rows = 0;
    int64_t token_disputes = 0, honest_differences = 0;
    int64_t inexact_inputs = 0;                  // checks from an input not rebuilt bit for bit
    int64_t last_stage_tokens = 0, last_stage_near_ties = 0, last_stage_unchecked = 0;
  } counts_;
  std::thread thread_;
};

}  // namespace px::swarm

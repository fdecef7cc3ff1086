#pragma once
// The messages peers exchange, as C++ values: the data plane of a pipeline (one ordered stream
// per neighbouring pair) and the control RPCs. The gRPC layer converts them to and from
// proto/parallax.proto and validates what arrives; nothing above it sees protobuf.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "model/model_manifest.h"
#include "runtime/stage_messages.h"

namespace px::swarm {

// Head -> stage 0: a new request and its prompt.
struct OpenMessage {
  StageRequestSetup setup;
  std::vector<int32_t> prompt;
};
// Head -> stage 0: the token sampled for `position` joins the request.
struct AppendMessage {
  RequestId request = 0;
  int32_t position = 0;
  int32_t token = 0;
};
// Stage i -> stage i + 1: the rows a step produced.
struct ChunksMessage {
  std::vector<StageChunk> chunks;
};
// Last stage -> head: sampled tokens (or failures).
struct TokensMessage {
  std::vector<SampledToken> tokens;
};
// Head -> stage 0 -> ... -> last: the request is over; free its state. Travels behind the
// request's chunks on the same streams, so no stage sees a chunk after the release.
struct ReleaseMessage {
  RequestId request = 0;
};

// Stage -> head, in open swarms: what a stage sent on for a request, so that the head can check
// it later by replay (swarm/result_verifier.h). Every chunk's commitment; in a verification
// replay (setup.report_hidden) the output rows themselves; and a digest of every chunk it
// received, which tells the head whether it rebuilt that input exactly.
struct StageReport {
  RequestId request = 0;
  std::string node_id;               // the reporting stage
  int32_t layer_end = 0;             // the boundary: the output of layer layer_end - 1
  int32_t begin = 0;                 // rows [begin, begin + rows)
  int32_t rows = 0;
  std::vector<uint8_t> commitment;   // serialize_commitment() of the rows; may be empty
  std::vector<float> hidden;         // replays only: [rows, width]
  int32_t width = 0;                 // with hidden
  // Instead of the above, from a stage after the first: SHA-256 (32 bytes) of the input rows
  // [begin, begin + rows) as it received them, f32 little-endian (input_digest()).
  std::vector<uint8_t> input_digest;
};
struct ReportsMessage {
  std::vector<StageReport> reports;
};

using PipelineMessage =
    std::variant<OpenMessage, AppendMessage, ChunksMessage, TokensMessage, ReleaseMessage, ReportsMessage>;

// How hidden states travel: f32 is exact; f16 and bf16 halve the bytes, q8 (int8 per value, an
// f16 scale per 32: swarm/q8_rows.h) takes 0.27x (the receiving stage widens them back to f32,
// so results then differ from a single node's).
enum class WireDType { F32, F16, BF16, Q8 };

// What a node measured on its link to a peer: the round trip of its heartbeats and the rate a
// probe crossed at (swarm/link_costs.h reads them for routing and allocation).
struct LinkMeasure {
  std::string peer_id;
  double rtt_seconds = 0;            // smoothed heartbeat round trip; 0: not measured
  double bytes_per_second = 0;       // towards the peer, from a probe; 0: not measured
  friend bool operator==(const LinkMeasure&, const LinkMeasure&) = default;
};

// What a node tells the others about itself: in its DHT announcement and its heartbeats.
struct NodeAnnouncement {
  std::string node_id;               // 16 hex digits, unique per process
  std::string address;               // host:port of its peer service (gRPC over TCP, DHT over UDP)
  std::string api_address;           // host:port of its HTTP API, empty when it serves none
  std::string model_id;              // identity hash of the model it serves
  int n_layers = 0;                  // the model's layers
  int layer_begin = 0;               // assigned range [begin, end); begin == end: none yet
  int layer_end = 0;
  std::string state = "joining";     // joining | loading | ready | draining | leaving
  bool scheduler = false;            // it runs layer allocation for the swarm
  double layers_per_second = 0;      // measured compute: layers one token passes per second
  double memory_bandwidth = 0;       // bytes per second, measured
  double free_memory = 0;            // bytes it offers for weights
  double load = 0;                   // 0 idle .. 1 saturated
  int64_t free_kv_tokens = 0;
  uint64_t sequence = 0;             // grows with every announcement from the node
  // Every address it is reached at, preferred first (swarm/peer_address.h: "host:port" or
  // "<node id>@<relay host:port>"); `address` is one of them. Empty: `address` only.
  std::vector<std::string> addresses;
  bool relay = false;                // --relay: forwards frames for others without a cap
  std::vector<LinkMeasure> links;    // its measured links to peers (at most wire::kMaxAnnouncedLinks)
};

// Scheduler -> node: hold layers [begin, end) of the model (begin == end: hold nothing).
struct Assignment {
  std::string model_id;
  int layer_begin = 0;
  int layer_end = 0;
  uint64_t epoch = 0;                // allocation round; a node ignores older ones
};

struct AssignReply {
  bool ok = false;
  std::string error;
};

// Scheduler -> joining node: whether it was admitted, and where the swarm's scheduler is.
struct JoinReplyData {
  bool ok = false;
  std::string error;
  std::string scheduler_address;
  std::optional<ModelDigest> swarm_model;  // with a refusal for another model: what the swarm serves
  std::string revocations;           // private swarms: the newest signed revocation list (may be empty)
};

// A node's answer to a revocation list passed on by a peer.
struct RevocationReplyData {
  bool adopted = false;              // newer than what it had
  std::string error;                 // refused: why
};

}  // namespace px::swarm

#pragma once
// Conversion between the swarm's C++ messages (pipeline_messages.h) and their protobuf form
// (proto/parallax.proto). Encoding trusts its input only as far as the representation needs;
// decoding treats every field as hostile and throws px::Error naming the field, its value and
// the allowed range, so a peer can never make this node index out of bounds, allocate without
// limit or run the sampler with nonsense parameters.
//
// What decoding does not check: whether hidden values are finite (garbage from a peer only
// spoils that peer's own requests, and a NaN ends in the sampler's own error) and whether the
// width matches the model (the stage executor knows the model, the codec does not).
#include <cstddef>
#include <cstdint>

#include "proto/parallax.pb.h"
#include "swarm/pipeline_messages.h"

namespace px::swarm {
namespace v1 = ::parallax::v1;  // the generated protobuf types
}

namespace px::swarm::wire {

// Bounds on what a peer may send (beyond them a frame is rejected).
inline constexpr int32_t kMaxWidth = 65536;               // values per hidden row
inline constexpr size_t kMaxChunkTokens = size_t(1) << 20;  // rows per chunk, tokens per prompt
inline constexpr size_t kMaxChunksPerFrame = 65536;
inline constexpr size_t kMaxTokensPerFrame = 65536;       // sampled tokens in one Tokens frame
inline constexpr int32_t kMaxTopLogprobs = 20;
inline constexpr size_t kMaxHops = 256;
inline constexpr size_t kMaxAddressLength = 256;          // host:port strings
inline constexpr size_t kMaxAnnouncedAddresses = 8;        // NodeAnnouncement::addresses
inline constexpr size_t kMaxAnnouncedLinks = 16;           // NodeAnnouncement::links
inline constexpr size_t kMaxProbeBytes = size_t(1) << 20;  // a heartbeat's probe padding
inline constexpr size_t kMaxIdLength = 256;               // node and model ids, node states
inline constexpr size_t kMaxErrorLength = 4096;           // error texts
inline constexpr int32_t kMaxLayers = 65536;
inline constexpr size_t kMaxRevocationListLength = size_t(1) << 20;  // a signed revocation list
inline constexpr size_t kMaxDigestLayers = 4096;         // layer digests in a join reply (GGUF's limit too)
inline constexpr size_t kMaxConfigText = 4096;           // a model digest's canonical config

// Bytes of one hidden row of `width` values on the wire.
size_t wire_row_bytes(WireDType dtype, int width);
const char* wire_dtype_name(WireDType dtype);

// Pipeline frames. Hidden states are packed as `dtype`; decoding always yields f32.
// Encoding throws px::Error when a chunk's hidden size is not a whole number of rows.
void encode(const PipelineMessage& message, WireDType dtype, v1::PipelineFrame& out);
PipelineMessage decode(const v1::PipelineFrame& frame);

// Control messages.
void encode(const NodeAnnouncement& node, v1::NodeAnnouncement& out);
NodeAnnouncement decode(const v1::NodeAnnouncement& node);
void encode(const Assignment& assignment, v1::Assignment& out);
Assignment decode(const v1::Assignment& assignment);
void encode(const AssignReply& reply, v1::AssignReply& out);
AssignReply decode(const v1::AssignReply& reply);
void encode(const JoinReplyData& reply, v1::JoinReply& out);
JoinReplyData decode(const v1::JoinReply& reply);
void encode(const RevocationReplyData& reply, v1::RevocationReply& out);
RevocationReplyData decode(const v1::RevocationReply& reply);

// `text` as valid UTF-8 (invalid bytes become U+FFFD) of at most max_bytes, cut at a character
// boundary. Every string this node sends goes through it: a proto3 string that is not UTF-8
// makes the whole message unparseable for the receiver.
std::string wire_text(const std::string& text, size_t max_bytes = kMaxErrorLength);

}  // namespace px::swarm::wire

#pragma once
// The input format of wire_codec_fuzz.cpp, shared with the seed writer: one byte choosing the
// message kind (modulo the number of kinds), then that message's protobuf bytes.
//
// The kinds of a PipelineFrame's oneof come twice: a whole frame (the fuzzer also mutates the
// oneof's tag and length) and each inner message alone, which the entry wraps into a frame, so
// mutations land on the fields rather than on the framing. To cover a new message, add its kind
// at the end (the seeds keep their meaning), its name below, a case in the entry and a seed.
#include <cstdint>

namespace px::fuzz {

enum class WireKind : uint8_t {
  Frame,             // PipelineFrame, any kind
  Open,              // OpenRequest, wrapped in a frame
  Append,            // AppendToken
  Chunks,            // Chunks (hidden states, setups, histories)
  Tokens,            // Tokens (sampled tokens, errors, stale nodes)
  Release,           // ReleaseRequest
  HeartbeatRequest,  // the Heartbeat RPC's request (the sender's announcement)
  HeartbeatReply,    // its reply (the receiver's announcement)
  Join,              // NodeAnnouncement, the Join RPC's request
  Assignment,        // the Assign RPC's request
  AssignReply,
  JoinReply,
  Text,              // wire_text: one byte of max_bytes, then the text (every string this node sends)
  Reports,           // Reports (stage commitments and replay rows for the verifier)
  Count
};

inline constexpr const char* kWireKindNames[] = {
    "frame",           "open",           "append", "chunks",     "tokens",       "release",
    "heartbeat_request", "heartbeat_reply", "join",   "assignment", "assign_reply", "join_reply",
    "text",            "reports",
};
static_assert(sizeof(kWireKindNames) / sizeof(kWireKindNames[0]) == size_t(WireKind::Count));

}  // namespace px::fuzz

#pragma once
// Limits both ends of the peer service agree on by default.

namespace px::swarm {

// The largest protobuf message either end accepts. A frame is dominated by hidden states
// (rows x width x 2 or 4 bytes): 64 MiB holds a 2048-row prefill chunk of an 8192-wide model
// in f32, and bounds what a hostile peer can make this node buffer per message.
inline constexpr int kDefaultMaxMessageBytes = 64 << 20;

}  // namespace px::swarm

#pragma once
// NodeAnnouncement <-> JSON, the bytes a node publishes in the DHT. Announcements arrive from
// anyone who can reach the DHT, so decoding checks every field and throws px::Error on anything
// out of range; encoding checks the same rules, so a node never publishes what its peers reject.
#include <cstddef>
#include <string>
#include <string_view>

#include "swarm/pipeline_messages.h"

namespace px::swarm {

inline constexpr size_t kMaxAnnouncementBytes = 8192;  // the whole JSON text
inline constexpr size_t kMaxAnnouncementString = 256;  // each string field
inline constexpr int kMaxAnnouncedLayers = 4096;

// Throws px::Error saying which field breaks which rule:
//   node_id: 16 lowercase hex digits; address: host:port (port 1..65535); api_address: empty or
//   host:port; model_id: 1..256 printable ASCII characters, no spaces; state: joining | loading |
//   ready | draining | leaving; 0 <= layer_begin <= layer_end <= n_layers <= 4096; measured
//   numbers finite and >= 0; load in [0, 1]; free_kv_tokens >= 0.
void validate_announcement(const NodeAnnouncement& announcement);

// A JSON object with one member per field (named as in the struct). Throws px::Error when the
// announcement is invalid.
std::string announcement_to_json(const NodeAnnouncement& announcement);

// Parses and validates. Members may come in any order and unknown ones are ignored (newer peers
// may add fields); every known member must be present with its JSON type (integers for the int
// fields). Throws px::Error on anything else, including text over kMaxAnnouncementBytes.
NodeAnnouncement announcement_from_json(std::string_view text);

}  // namespace px::swarm

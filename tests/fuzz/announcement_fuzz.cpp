// libFuzzer entry point for the DHT value parser (src/swarm/announcement_json.h): anyone who
// can reach the DHT can publish bytes under the swarm key, so any input must either parse into
// a valid announcement or throw px::Error. What it accepts must then travel on unchanged: it
// encodes to JSON (never refused: encoding checks the same rules), that JSON parses to the same
// announcement, and the same node passes the wire codec (heartbeats and Join carry it) as is.
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <tuple>

#include "core/error.h"
#include "swarm/announcement_json.h"
#include "swarm/wire_codec.h"

namespace px::swarm {
namespace {

[[noreturn]] void broken(const char* what, const std::string& detail) {
  std::fprintf(stderr, "\nannouncement_fuzz: %s\n%s\n", what, detail.c_str());
  std::abort();
}

auto fields(const NodeAnnouncement& n) {
  return std::tie(n.node_id, n.address, n.api_address, n.model_id, n.n_layers, n.layer_begin, n.layer_end, n.state,
                  n.scheduler, n.layers_per_second, n.memory_bandwidth, n.free_memory, n.load, n.free_kv_tokens,
                  n.sequence);
}

void check_accepted(const NodeAnnouncement& announcement) {
  const std::string json = announcement_to_json(announcement);
  const NodeAnnouncement again = announcement_from_json(json);
  if (fields(again) != fields(announcement)) broken("the announcement changes on a JSON round trip", json);

  v1::NodeAnnouncement proto;
  wire::encode(announcement, proto);
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) broken("the announcement does not serialize", json);
  v1::NodeAnnouncement received;
  if (!received.ParseFromString(bytes)) broken("the serialized announcement does not parse", json);
  if (fields(wire::decode(received)) != fields(announcement))
    broken("the announcement changes on its way through the wire codec", json + "\n" + received.ShortDebugString());
}

}  // namespace
}  // namespace px::swarm

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);  // a protobuf complaint is reported by the checks, not logged
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  px::swarm::NodeAnnouncement announcement;
  try {
    announcement = px::swarm::announcement_from_json(text);
  } catch (const px::Error&) {
    return 0;  // rejecting a malformed value is the expected outcome
  }
  try {
    px::swarm::check_accepted(announcement);
  } catch (const px::Error& e) {
    px::swarm::broken("an accepted announcement is refused on its way out again", e.what());
  }
  return 0;
}

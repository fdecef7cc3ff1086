#include "swarm/announcement_json.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "swarm/peer_address.h"

namespace px::swarm {
namespace {

using nlohmann::json;

constexpr size_t kMaxListedAddresses = 8;  // NodeAnnouncement::addresses
constexpr size_t kMaxListedLinks = 16;     // NodeAnnouncement::links
constexpr double kMaxLinkRttSeconds = 3600;
constexpr std::array<std::string_view, 5> kStates = {"joining", "loading", "ready", "draining", "leaving"};

void check_length(std::string_view field, const std::string& value) {
  if (value.size() > kMaxAnnouncementString)
    fail("announcement: {} is {} bytes, over the limit of {}", field, value.size(), kMaxAnnouncementString);
}

void check_address(std::string_view field, const std::string& value) {
  check_length(field, value);
  try {
    parse_peer_address(value);
  } catch (const Error& e) {
    fail("announcement: {}: {}", field, e.what());
  }
}

void check_measure(std::string_view field, double value) {
  if (!std::isfinite(value) || value < 0) fail("announcement: {} must be finite and >= 0", field);
}

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// Members of the parsed object, each checked for presence and JSON type; values are range
// checked afterwards by validate_announcement, on the struct.
class Members {
 public:
  explicit Members(const json& object) : object_(object) {}

  const json& get(const char* name) const {
    const auto it = object_.find(name);
    if (it == object_.end()) fail("announcement: missing member '{}'", name);
    return *it;
  }
  std::string string(const char* name) const {
    const json& value = get(name);
    if (!value.is_string()) fail("announcement: '{}' must be a string", name);
    return value.get<std::string>();
  }
  int integer(const char* name) const {
    const json& value = get(name);
    if (!value.is_number_integer()) fail("announcement: '{}' must be an integer", name);
    const bool in_range = value.is_number_unsigned()
                              ? value.get<uint64_t>() <= uint64_t(std::numeric_limits<int>::max())
                              : value.get<int64_t>() >= std::numeric_limits<int>::min() &&
                                    value.get<int64_t>() <= std::numeric_limits<int>::max();
    if (!in_range) fail("announcement: '{}' is out of range", name);
    return value.get<int>();
  }
  int64_t integer64(const char* name) const {
    const json& value = get(name);
    if (!value.is_number_integer()) fail("announcement: '{}' must be an integer", name);
    if (value.is_number_unsigned() && value.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      fail("announcement: '{}' is out of range", name);
    return value.get<int64_t>();
  }
  uint64_t unsigned64(const char* name) const {
    const json& value = get(name);
    if (!value.is_number_unsigned()) fail("announcement: '{}' must be a non-negative integer", name);
    return value.get<uint64_t>();
  }
  double number(const char* name) const {
    const json& value = get(name);
    if (!value.is_number()) fail("announcement: '{}' must be a number", name);
    return value.get<double>();
  }
  bool has(const char* name) const { return object_.contains(name); }
  std::vector<std::string> strings(const char* name, size_t max) const {
    const json& value = get(name);
    if (!value.is_array() || value.size() > max) fail("announcement: '{}' must be an array of at most {} strings", name, max);
    std::vector<std::string> out;
    for (const json& item : value) {
      if (!item.is_string()) fail("announcement: '{}' must hold strings", name);
      out.push_back(item.get<std::string>());
    }
    return out;
  }
  bool boolean(const char* name) const {
    const json& value = get(name);
    if (!value.is_boolean()) fail("announcement: '{}' must be true or false", name);
    return value.get<bool>();
  }

 private:
  const json& object_;
};

// The "links" member: an array of {peer_id, rtt_seconds, bytes_per_second}.
std::vector<LinkMeasure> links(const json& value) {
  if (!value.is_array() || value.size() > kMaxListedLinks)
    fail("announcement: 'links' must be an array of at most {} objects", kMaxListedLinks);
  std::vector<LinkMeasure> out;
  for (const json& item : value) {
    if (!item.is_object()) fail("announcement: 'links' must hold objects");
    const Members m(item);
    out.push_back({m.string("peer_id"), m.number("rtt_seconds"), m.number("bytes_per_second")});
  }
  return out;
}

}  // namespace

void validate_announcement(const NodeAnnouncement& a) {
  if (a.node_id.size() != 16 || !std::all_of(a.node_id.begin(), a.node_id.end(), is_lower_hex))
    fail("announcement: node_id must be 16 lowercase hex digits");
  check_address("address", a.address);
  if (!a.api_address.empty()) check_address("api_address", a.api_address);
  check_length("model_id", a.model_id);
  if (a.model_id.empty() ||
      !std::all_of(a.model_id.begin(), a.model_id.end(), [](char c) { return c > 0x20 && c < 0x7f; }))
    fail("announcement: model_id must be printable ASCII without spaces");
  check_length("state", a.state);
  if (std::find(kStates.begin(), kStates.end(), a.state) == kStates.end())
    fail("announcement: state must be one of joining, loading, ready, draining, leaving");
  if (!(0 <= a.layer_begin && a.layer_begin <= a.layer_end && a.layer_end <= a.n_layers &&
        a.n_layers <= kMaxAnnouncedLayers))
    fail("announcement: layers [{}, {}) of {} break 0 <= begin <= end <= n_layers <= {}", a.layer_begin,
         a.layer_end, a.n_layers, kMaxAnnouncedLayers);
  check_measure("layers_per_second", a.layers_per_second);
  check_measure("memory_bandwidth", a.memory_bandwidth);
  check_measure("free_memory", a.free_memory);
  if (!(a.load >= 0 && a.load <= 1)) fail("announcement: load must be in [0, 1]");
  if (a.free_kv_tokens < 0) fail("announcement: free_kv_tokens must be >= 0");
  if (a.addresses.size() > kMaxListedAddresses)
    fail("announcement: {} addresses, over the limit of {}", a.addresses.size(), kMaxListedAddresses);
  for (const std::string& address : a.addresses) check_address("addresses", address);
  if (a.links.size() > kMaxListedLinks)
    fail("announcement: {} links, over the limit of {}", a.links.size(), kMaxListedLinks);
  for (const LinkMeasure& link : a.links) {
    if (!is_node_id(link.peer_id))
      fail("announcement: a link's peer must be a node id (16 lowercase hex digits)");
    check_measure("a link's rtt_seconds", link.rtt_seconds);
    check_measure("a link's bytes_per_second", link.bytes_per_second);
    if (link.rtt_seconds > kMaxLinkRttSeconds) fail("announcement: a link's rtt_seconds is over {}", kMaxLinkRttSeconds);
  }
}

std::string announcement_to_json(const NodeAnnouncement& a) {
  validate_announcement(a);
  json object = {
      {"node_id", a.node_id},
      {"address", a.address},
      {"api_address", a.api_address},
      {"model_id", a.model_id},
      {"n_layers", a.n_layers},
      {"layer_begin", a.layer_begin},
      {"layer_end", a.layer_end},
      {"state", a.state},
      {"scheduler", a.scheduler},
      {"layers_per_second", a.layers_per_second},
      {"memory_bandwidth", a.memory_bandwidth},
      {"free_memory", a.free_memory},
      {"load", a.load},
      {"free_kv_tokens", a.free_kv_tokens},
      {"sequence", a.sequence},
      {"addresses", a.addresses},
      {"relay", a.relay},
      {"links", json::array()},
  };
  json& links = object["links"];
  for (const LinkMeasure& link : a.links) {
    links.push_back({{"peer_id", link.peer_id}, {"rtt_seconds", link.rtt_seconds}, {"bytes_per_second", link.bytes_per_second}});
  }
  std::string text = object.dump();
  // Only reachable when the limits above grow without this one.
  if (text.size() > kMaxAnnouncementBytes)
    fail("announcement: {} bytes of JSON, over the limit of {}", text.size(), kMaxAnnouncementBytes);
  return text;
}

NodeAnnouncement announcement_from_json(std::string_view text) {
  if (text.size() > kMaxAnnouncementBytes)
    fail("announcement: {} bytes, over the limit of {}", text.size(), kMaxAnnouncementBytes);
  // No exceptions from the parser: a malformed text is reported as such, whatever the cause.
  const json object = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded()) fail("announcement: not valid JSON");
  if (!object.is_object()) fail("announcement: not a JSON object");

  const Members m(object);
  NodeAnnouncement a;
  a.node_id = m.string("node_id");
  a.address = m.string("address");
  a.api_address = m.string("api_address");
  a.model_id = m.string("model_id");
  a.n_layers = m.integer("n_layers");
  a.layer_begin = m.integer("layer_begin");
  a.layer_end = m.integer("layer_end");
  a.state = m.string("state");
  a.scheduler = m.boolean("scheduler");
  a.layers_per_second = m.number("layers_per_second");
  a.memory_bandwidth = m.number("memory_bandwidth");
  a.free_memory = m.number("free_memory");
  a.load = m.number("load");
  a.free_kv_tokens = m.integer64("free_kv_tokens");
  a.sequence = m.unsigned64("sequence");
  // Absent from the announcements of nodes older than relaying.
  if (m.has("addresses")) a.addresses = m.strings("addresses", kMaxListedAddresses);
  if (m.has("relay")) a.relay = m.boolean("relay");
  if (m.has("links")) a.links = links(m.get("links"));
  validate_announcement(a);
  return a;
}

}  // namespace px::swarm

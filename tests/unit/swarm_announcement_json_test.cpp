// NodeAnnouncement <-> JSON: round trips, and every way a hostile or broken peer's announcement
// is refused (px::Error, never a crash).
#include "swarm/announcement_json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace px::swarm {
namespace {

using nlohmann::json;

NodeAnnouncement sample() {
  NodeAnnouncement a;
  a.node_id = "0123456789abcdef";
  a.address = "127.0.0.1:7000";
  a.api_address = "127.0.0.1:8080";
  a.model_id = "sha256:9f86d081884c7d65";
  a.n_layers = 32;
  a.layer_begin = 8;
  a.layer_end = 24;
  a.state = "ready";
  a.scheduler = true;
  a.layers_per_second = 1234.5678901234567;
  a.memory_bandwidth = 5.5e10;
  a.free_memory = 8.0 * (1ull << 30);
  a.load = 0.25;
  a.free_kv_tokens = 123456789012;
  a.sequence = std::numeric_limits<uint64_t>::max();
  return a;
}

void expect_same(const NodeAnnouncement& x, const NodeAnnouncement& y) {
  EXPECT_EQ(x.node_id, y.node_id);
  EXPECT_EQ(x.address, y.address);
  EXPECT_EQ(x.api_address, y.api_address);
  EXPECT_EQ(x.model_id, y.model_id);
  EXPECT_EQ(x.n_layers, y.n_layers);
  EXPECT_EQ(x.layer_begin, y.layer_begin);
  EXPECT_EQ(x.layer_end, y.layer_end);
  EXPECT_EQ(x.state, y.state);
  EXPECT_EQ(x.scheduler, y.scheduler);
  EXPECT_EQ(x.layers_per_second, y.layers_per_second);  // exact: doubles survive JSON
  EXPECT_EQ(x.memory_bandwidth, y.memory_bandwidth);
  EXPECT_EQ(x.free_memory, y.free_memory);
  EXPECT_EQ(x.load, y.load);
  EXPECT_EQ(x.free_kv_tokens, y.free_kv_tokens);
  EXPECT_EQ(x.sequence, y.sequence);
}

// Decoding `text` fails with a message that mentions `what`.
void expect_rejected(const std::string& text, const std::string& what) {
  try {
    announcement_from_json(text);
    ADD_FAILURE() << "accepted: " << text.substr(0, 200);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

// The sample's JSON with one change applied.
std::string edited(const std::function<void(json&)>& edit) {
  json object = json::parse(announcement_to_json(sample()));
  edit(object);
  return object.dump();
}

TEST(AnnouncementJson, RoundTripsEveryField) {
  const NodeAnnouncement a = sample();
  expect_same(announcement_from_json(announcement_to_json(a)), a);

  NodeAnnouncement minimal;  // the defaults, with the fields that have no valid default set
  minimal.node_id = "ffffffffffffffff";
  minimal.address = "[::1]:1";
  minimal.model_id = "m";
  expect_same(announcement_from_json(announcement_to_json(minimal)), minimal);
  for (const char* state : {"joining", "loading", "ready", "draining", "leaving"}) {
    minimal.state = state;
    EXPECT_EQ(announcement_from_json(announcement_to_json(minimal)).state, state);
  }
}

TEST(AnnouncementJson, AcceptsAnyMemberOrderAndIgnoresUnknownMembers) {
  json object = json::parse(announcement_to_json(sample()));
  object["added_by_a_newer_peer"] = {{"nested", {1, 2, 3}}};
  // nlohmann writes members sorted by name; write them in reverse order instead.
  std::vector<std::string> members;
  for (const auto& item : object.items()) members.push_back(json(item.key()).dump() + ":" + item.value().dump());
  std::string reordered;
  for (auto it = members.rbegin(); it != members.rend(); ++it) reordered += (reordered.empty() ? "{" : ",") + *it;
  reordered += "}";
  expect_same(announcement_from_json(reordered), sample());
}

TEST(AnnouncementJson, RejectsTextThatIsNotAnAnnouncementObject) {
  expect_rejected("", "not valid JSON");
  expect_rejected(std::string("\0\x01\x02garbage", 10), "not valid JSON");
  expect_rejected("{\"node_id\": ", "not valid JSON");
  expect_rejected("[1,2,3]", "not a JSON object");
  expect_rejected("\"text\"", "not a JSON object");
  expect_rejected("null", "not a JSON object");
  expect_rejected("{}", "missing member 'node_id'");
  expect_rejected(std::string(kMaxAnnouncementBytes + 1, ' '), "over the limit");
  // Deep nesting inside an unknown member stays within the size limit and is merely ignored or
  // refused, never a stack overflow.
  const std::string deep = std::string(2000, '[') + std::string(2000, ']');
  expect_rejected("{\"x\":" + deep + "}", "missing member");
  expect_rejected(std::string(4000, '['), "not valid JSON");
}

TEST(AnnouncementJson, RejectsMissingMembersAndWrongTypes) {
  for (const char* member : {"node_id", "address", "api_address", "model_id", "n_layers", "layer_begin", "layer_end",
                             "state", "scheduler", "layers_per_second", "memory_bandwidth", "free_memory", "load",
                             "free_kv_tokens", "sequence"}) {
    expect_rejected(edited([&](json& o) { o.erase(member); }), std::string("missing member '") + member + "'");
    expect_rejected(edited([&](json& o) { o[member] = nullptr; }), member);
    expect_rejected(edited([&](json& o) { o[member] = json::array(); }), member);
  }
  expect_rejected(edited([](json& o) { o["node_id"] = 123; }), "'node_id' must be a string");
  expect_rejected(edited([](json& o) { o["n_layers"] = 32.0; }), "'n_layers' must be an integer");
  expect_rejected(edited([](json& o) { o["n_layers"] = "32"; }), "'n_layers' must be an integer");
  expect_rejected(edited([](json& o) { o["scheduler"] = 1; }), "'scheduler' must be true or false");
  expect_rejected(edited([](json& o) { o["load"] = "0.5"; }), "'load' must be a number");
  expect_rejected(edited([](json& o) { o["sequence"] = -1; }), "'sequence' must be a non-negative integer");
  expect_rejected(edited([](json& o) { o["sequence"] = 1.5; }), "'sequence' must be a non-negative integer");
}

TEST(AnnouncementJson, RejectsIntegersOutsideTheirType) {
  expect_rejected(edited([](json& o) { o["n_layers"] = int64_t(1) << 40; }), "'n_layers' is out of range");
  expect_rejected(edited([](json& o) { o["layer_begin"] = -(int64_t(1) << 40); }), "'layer_begin' is out of range");
  expect_rejected(edited([](json& o) { o["free_kv_tokens"] = std::numeric_limits<uint64_t>::max(); }),
                  "'free_kv_tokens' is out of range");
  // Beyond 64 bits the parser yields a floating-point number.
  std::string text = announcement_to_json(sample());
  const std::string max_sequence = std::to_string(std::numeric_limits<uint64_t>::max());
  text.replace(text.find(max_sequence), max_sequence.size(), "184467440737095516150");
  expect_rejected(text, "'sequence' must be a non-negative integer");
}

TEST(AnnouncementJson, RejectsFieldsOutOfRange) {
  const auto rejected = [](const std::function<void(json&)>& edit, const std::string& what) {
    expect_rejected(edited(edit), what);
  };
  for (const char* id : {"0123456789abcde", "0123456789abcdef0", "0123456789ABCDEF", "0123456789abcdeg", "",
                         "0123456789abcd\xc3\xa9"})
    rejected([&](json& o) { o["node_id"] = id; }, "node_id must be 16 lowercase hex digits");
  for (const char* address : {"", "host", "host:0", "host:65536", "host:http", "bad host:80", "[::1]"})
    rejected([&](json& o) { o["address"] = address; }, "address");
  rejected([](json& o) { o["address"] = "x:" + std::string(300, '1'); }, "address is 302 bytes");
  rejected([](json& o) { o["api_address"] = "localhost"; }, "api_address");
  rejected([](json& o) { o["model_id"] = ""; }, "model_id");
  rejected([](json& o) { o["model_id"] = "has space"; }, "model_id");
  rejected([](json& o) { o["model_id"] = "tab\there"; }, "model_id");
  rejected([](json& o) { o["model_id"] = std::string(257, 'm'); }, "model_id is 257 bytes");
  for (const char* state : {"", "READY", "ready ", "crashed", "leaving\n"})
    rejected([&](json& o) { o["state"] = state; }, "state must be one of");
  rejected([](json& o) { o["state"] = std::string(1000, 'r'); }, "state is 1000 bytes");
  rejected([](json& o) { o["layer_begin"] = -1; }, "layers [-1, 24) of 32");
  rejected([](json& o) { o["layer_begin"] = 25; }, "layers [25, 24) of 32");
  rejected([](json& o) { o["layer_end"] = 33; }, "layers [8, 33) of 32");
  rejected([](json& o) { o["n_layers"] = -1; }, "layers");
  rejected(
      [](json& o) {
        o["n_layers"] = 5000;
        o["layer_end"] = 4097;
      },
      "<= 4096");
  for (const char* measure : {"layers_per_second", "memory_bandwidth", "free_memory"}) {
    rejected([&](json& o) { o[measure] = -0.5; }, std::string(measure) + " must be finite and >= 0");
    rejected([&](json& o) { o[measure] = std::numeric_limits<double>::infinity(); }, measure);  // written as null
  }
  rejected([](json& o) { o["load"] = 1.0000001; }, "load must be in [0, 1]");
  rejected([](json& o) { o["load"] = -0.1; }, "load must be in [0, 1]");
  rejected([](json& o) { o["free_kv_tokens"] = -5; }, "free_kv_tokens must be >= 0");

  // An overflowing literal, typed in as nlohmann would never write it: the parser refuses it.
  std::string text = announcement_to_json(sample());
  const std::string lps = json(sample().layers_per_second).dump();
  text.replace(text.find(lps), lps.size(), "1e400");
  expect_rejected(text, "not valid JSON");
}

TEST(AnnouncementJson, EncodingRefusesWhatDecodingWouldReject) {
  NodeAnnouncement a = sample();
  a.load = std::nan("");
  EXPECT_THROW(announcement_to_json(a), Error);
  a = sample();
  a.layers_per_second = std::numeric_limits<double>::infinity();
  EXPECT_THROW(announcement_to_json(a), Error);
  a = sample();
  a.node_id = "not-hex";
  EXPECT_THROW(announcement_to_json(a), Error);
  a = sample();
  a.model_id = "\xff\xfe";  // also invalid UTF-8, which the JSON writer would throw on
  EXPECT_THROW(announcement_to_json(a), Error);
  a = sample();
  a.layer_end = 40;
  EXPECT_THROW(validate_announcement(a), Error);
}

TEST(AnnouncementJson, LargestValidAnnouncementFitsTheSizeLimit) {
  NodeAnnouncement a = sample();
  a.address = std::string(250, 'a') + ":65535";
  a.api_address = a.address;
  a.model_id = std::string(kMaxAnnouncementString, 'm');
  a.state = "draining";
  a.layers_per_second = a.memory_bandwidth = a.free_memory = std::numeric_limits<double>::max();
  a.load = 0.12345678901234567;
  a.n_layers = a.layer_end = kMaxAnnouncedLayers;
  a.layer_begin = 0;
  a.free_kv_tokens = std::numeric_limits<int64_t>::max();
  a.addresses = std::vector<std::string>(8, a.address);
  a.links = std::vector<LinkMeasure>(16, {"0123456789abcdef", 3599.123456789012, std::numeric_limits<double>::max()});
  const std::string text = announcement_to_json(a);
  EXPECT_LE(text.size(), kMaxAnnouncementBytes);
  expect_same(announcement_from_json(text), a);
}

}  // namespace
}  // namespace px::swarm

namespace px::swarm {
namespace {

TEST(AnnouncementJson, CarriesEveryAddressAndTheRelayFlagAndChecksThem) {
  NodeAnnouncement a = sample();
  a.addresses = {"0123456789abcdef@10.0.0.1:7000", "0123456789abcdef@relay.example:7001", "127.0.0.1:7000"};
  a.relay = true;
  const NodeAnnouncement back = announcement_from_json(announcement_to_json(a));
  EXPECT_EQ(back.addresses, a.addresses);
  EXPECT_TRUE(back.relay);
  // A node older than relaying sends neither: its one address, no relaying.
  json old = json::parse(announcement_to_json(sample()));
  old.erase("addresses");
  old.erase("relay");
  const NodeAnnouncement from_old = announcement_from_json(old.dump());
  EXPECT_TRUE(from_old.addresses.empty());
  EXPECT_FALSE(from_old.relay);
  auto rejected = [&](const json& addresses, const std::string& why) {
    json object = json::parse(announcement_to_json(sample()));
    object["addresses"] = addresses;
    try {
      announcement_from_json(object.dump());
      ADD_FAILURE() << "accepted " << addresses.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  rejected(json::array({"not-an-address"}), "addresses");
  rejected(json::array({"NOTHEX@10.0.0.1:7000"}), "relayed address");
  rejected(json::array({1}), "must hold strings");
  rejected("10.0.0.1:7000", "must be an array");
  rejected(json(std::vector<std::string>(9, "10.0.0.1:7000")), "at most 8");
  json relay_text = json::parse(announcement_to_json(sample()));
  relay_text["relay"] = "yes";
  EXPECT_THROW(announcement_from_json(relay_text.dump()), Error);
}

}  // namespace
}  // namespace px::swarm

namespace px::swarm {
namespace {

TEST(AnnouncementJson, CarriesTheMeasuredLinksAndChecksThem) {
  NodeAnnouncement a = sample();
  a.links = {{"00000000000000a1", 0.025, 1.25e6}, {"00000000000000a2", 0, 0}};
  EXPECT_EQ(announcement_from_json(announcement_to_json(a)).links, a.links);
  // A node older than link probes sends none.
  json old = json::parse(announcement_to_json(a));
  old.erase("links");
  EXPECT_TRUE(announcement_from_json(old.dump()).links.empty());
  auto rejected = [&](const json& links, const std::string& why) {
    expect_rejected(edited([&](json& object) { object["links"] = links; }), why);
  };
  const json good = {{"peer_id", "00000000000000a1"}, {"rtt_seconds", 0.01}, {"bytes_per_second", 1e6}};
  json bad = good;
  bad["peer_id"] = "A1";
  rejected(json::array({bad}), "a link's peer must be a node id");
  bad = good;
  bad["bytes_per_second"] = -5;
  rejected(json::array({bad}), "bytes_per_second must be finite and >= 0");
  bad = good;
  bad["rtt_seconds"] = 1e9;
  rejected(json::array({bad}), "rtt_seconds is over 3600");
  bad = good;
  bad.erase("rtt_seconds");
  rejected(json::array({bad}), "missing member 'rtt_seconds'");
  rejected(json::array({1}), "'links' must hold objects");
  rejected(json(std::vector<json>(17, good)), "at most 16 objects");
  a.links.assign(17, a.links.front());
  EXPECT_THROW(announcement_to_json(a), Error);  // never published either
}

}  // namespace
}  // namespace px::swarm

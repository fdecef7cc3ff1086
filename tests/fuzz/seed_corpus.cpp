// Writes a seed corpus for every fuzz entry into DIR/<entry>/: small valid inputs built with the
// project's own encoders, so the fuzzers start past the parsers' first checks and the seeds
// follow the formats as they change (no binary files in the repository).
//   fuzz_seed_corpus DIR
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/gguf_writer.h"
#include "model/safetensors_writer.h"
#include "swarm/announcement_json.h"
#include "swarm/wire_codec.h"
#include "wire_fuzz_input.h"

namespace px::fuzz {
namespace {

namespace fs = std::filesystem;
using swarm::WireDType;
namespace v1 = swarm::v1;

class SeedDir {
 public:
  SeedDir(const fs::path& root, const char* entry) : dir_(root / entry) { fs::create_directories(dir_); }
  void write(const std::string& name, const std::string& bytes) const {
    std::ofstream out(dir_ / name, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
    if (!out) fail("cannot write the seed {}", (dir_ / name).string());
  }
  const fs::path& path() const { return dir_; }

 private:
  fs::path dir_;
};

std::vector<uint8_t> float_bytes(const std::vector<float>& values) {
  std::vector<uint8_t> bytes(values.size() * sizeof(float));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

// ---- Model files -----------------------------------------------------------------------------

void gguf_seeds(const fs::path& root) {
  const SeedDir dir(root, "gguf_fuzz");
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_uint32("llama.block_count", 2);
  w.set_float32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_strings("tokenizer.ggml.tokens", {"a", "b", "<s>"});
  w.set_int32s("tokenizer.ggml.token_type", {1, 1, 3});
  w.add_tensor("token_embd.weight", {4, 2}, DType::F32, float_bytes({1, 2, 3, 4, 5, 6, 7, 8}));
  w.add_tensor("output_norm.weight", {4}, DType::F16, std::vector<uint8_t>(8, 0x3c));
  w.write((dir.path() / "small.gguf").string());
}

void safetensors_seeds(const fs::path& root) {
  const SeedDir dir(root, "safetensors_fuzz");
  SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.add_tensor("model.embed_tokens.weight", "F32", {2, 2}, float_bytes({1, 2, 3, 4}));
  w.add_tensor("model.norm.weight", "BF16", {4}, std::vector<uint8_t>(8, 0x3f));
  const std::vector<uint8_t> bytes = w.serialize();
  dir.write("small.safetensors", std::string(bytes.begin(), bytes.end()));
}

// ---- Swarm messages --------------------------------------------------------------------------

StageRequestSetup sample_setup(RequestId id) {
  StageRequestSetup s;
  s.id = id;
  s.sampling.temperature = 0.7f;
  s.sampling.top_k = 17;
  s.sampling.top_p = 0.9f;
  s.sampling.penalty_last_n = -1;
  s.sampling.seed = 42;
  s.logprobs = true;
  s.top_logprobs = 2;
  s.stream_id = 1;
  s.head = "10.0.0.1:7000";
  s.hops = {{"10.0.0.2:7000", "00000000000000a1", 0, 3}, {"[::1]:7001", "00000000000000b2", 3, 8}};
  return s;
}

swarm::NodeAnnouncement sample_node() {
  swarm::NodeAnnouncement n;
  n.node_id = "0123456789abcdef";
  n.address = "10.0.0.2:7000";
  n.api_address = "10.0.0.2:8000";
  n.model_id = "synth-7f3a";
  n.n_layers = 8;
  n.layer_begin = 0;
  n.layer_end = 4;
  n.state = "ready";
  n.scheduler = true;
  n.layers_per_second = 120.5;
  n.memory_bandwidth = 2.5e10;
  n.free_memory = 1e9;
  n.load = 0.25;
  n.free_kv_tokens = 4096;
  n.sequence = 7;
  return n;
}

std::vector<swarm::PipelineMessage> sample_frames() {
  StageChunk first;  // a request's first chunk at a stage: setup and history
  first.request = 5;
  first.begin = 2;
  first.tokens = {7, 8};
  first.hidden = {0.5f, -1.0f, 2.0f, 0.0f, 1e-3f, -7.5f};
  first.sample = true;
  first.setup = sample_setup(5);
  first.history = {1, 2};
  StageChunk next;
  next.request = 6;
  next.begin = 9;
  next.tokens = {3};
  next.hidden = {1.0f, 2.0f, 3.0f};
  SampledToken token;
  token.request = 5;
  token.position = 4;
  token.token = 9;
  token.info = {-0.25f, {{9, -0.25f}, {3, -2.0f}}};
  SampledToken failure;
  failure.request = 6;
  failure.position = 9;
  failure.token = -1;
  failure.error = "stage 1 does not hold layers [3, 8)";
  failure.stale_node = "00000000000000b2";
  swarm::StageReport committed;  // every chunk's commitment (k = 1, one row of width 3)
  committed.request = 5;
  committed.node_id = "00000000000000a1";
  committed.layer_end = 4;
  committed.begin = 2;
  committed.rows = 1;
  committed.commitment = {'P', 'X', 'S', 'C', 1, 1, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0x40};
  swarm::StageReport replayed = committed;  // a replay's rows
  replayed.commitment.clear();
  replayed.rows = 2;
  replayed.width = 3;
  replayed.hidden = first.hidden;
  return {swarm::OpenMessage{sample_setup(5), {1, 2, 7, 8}}, swarm::AppendMessage{5, 4, 9},
          swarm::ChunksMessage{{first, next}}, swarm::TokensMessage{{token, failure}}, swarm::ReleaseMessage{5},
          swarm::ReportsMessage{{committed, replayed}}};
}

void wire_seeds(const fs::path& root) {
  const SeedDir dir(root, "wire_codec_fuzz");
  const auto put = [&](WireKind kind, const std::string& suffix, const google::protobuf::Message& message) {
    dir.write(fmt::format("{}{}", kWireKindNames[size_t(kind)], suffix), std::string(1, char(kind)) + message.SerializeAsString());
  };
  for (const WireDType dtype : {WireDType::F32, WireDType::F16, WireDType::BF16, WireDType::Q8}) {
    for (const swarm::PipelineMessage& message : sample_frames()) {
      // Only chunks carry hidden states; the other kinds need one seed each.
      const bool chunks = std::holds_alternative<swarm::ChunksMessage>(message);
      if (dtype != WireDType::F32 && !chunks) continue;
      const std::string suffix = chunks ? std::string("-") + swarm::wire::wire_dtype_name(dtype) : "";
      v1::PipelineFrame frame;
      swarm::wire::encode(message, dtype, frame);
      swarm::wire::decode(frame);  // a seed the codec refuses would only test the first check
      const WireKind inner = frame.has_open()     ? WireKind::Open
                             : frame.has_append() ? WireKind::Append
                             : frame.has_chunks() ? WireKind::Chunks
                             : frame.has_tokens() ? WireKind::Tokens
                             : frame.has_reports() ? WireKind::Reports
                                                  : WireKind::Release;
      put(WireKind::Frame, fmt::format("-{}{}", kWireKindNames[size_t(inner)], suffix), frame);
      switch (inner) {  // the inner message alone
        case WireKind::Open: put(inner, suffix, frame.open()); break;
        case WireKind::Append: put(inner, suffix, frame.append()); break;
        case WireKind::Chunks: put(inner, suffix, frame.chunks()); break;
        case WireKind::Tokens: put(inner, suffix, frame.tokens()); break;
        case WireKind::Reports: put(inner, suffix, frame.reports()); break;
        default: put(inner, suffix, frame.release()); break;
      }
    }
  }
  v1::HeartbeatRequest heartbeat;
  swarm::wire::encode(sample_node(), *heartbeat.mutable_node());
  heartbeat.set_sent_unix_micros(1700000000000000);
  put(WireKind::HeartbeatRequest, "", heartbeat);
  v1::HeartbeatReply reply;
  swarm::wire::encode(sample_node(), *reply.mutable_node());
  reply.set_received_unix_micros(1700000000000100);
  put(WireKind::HeartbeatReply, "", reply);
  v1::NodeAnnouncement join;
  swarm::wire::encode(sample_node(), join);
  put(WireKind::Join, "", join);
  v1::Assignment assignment;
  swarm::wire::encode(swarm::Assignment{"synth-7f3a", 2, 6, 3}, assignment);
  put(WireKind::Assignment, "", assignment);
  v1::AssignReply assign_reply;
  swarm::wire::encode(swarm::AssignReply{false, "the model is not this node's"}, assign_reply);
  put(WireKind::AssignReply, "", assign_reply);
  v1::JoinReply join_reply;
  swarm::wire::encode(swarm::JoinReplyData{true, "", "10.0.0.1:7000"}, join_reply);
  put(WireKind::JoinReply, "", join_reply);
  dir.write("text", std::string(1, char(WireKind::Text)) + "\x10" + "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xff\xfe cut");
}

void announcement_seeds(const fs::path& root) {
  const SeedDir dir(root, "announcement_fuzz");
  swarm::NodeAnnouncement ready = sample_node();
  dir.write("ready.json", swarm::announcement_to_json(ready));  // to_json refuses what from_json would
  swarm::NodeAnnouncement joining = sample_node();
  joining.address = "[fe80::1]:7001";
  joining.api_address = "";
  joining.state = "joining";
  joining.scheduler = false;
  joining.layer_begin = joining.layer_end = 0;
  joining.load = 1;
  dir.write("joining.json", swarm::announcement_to_json(joining));
}

// ---- OpenAI request bodies -------------------------------------------------------------------

void openai_seeds(const fs::path& root) {
  const SeedDir dir(root, "openai_request_fuzz");
  dir.write("chat.json", R"({"model": "synth", "messages": [{"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]}],
    "temperature": 0.7, "top_p": 0.9, "max_tokens": 16, "stop": ["\n\n", "User:"], "stream": true,
    "stream_options": {"include_usage": true}, "seed": 42, "logprobs": true, "top_logprobs": 3, "n": 2,
    "chat_template_kwargs": {"enable_thinking": false}, "user": "u1"})");
  dir.write("chat-turns.json", R"({"messages": [{"role": "user", "content": "<|im_start|>hi<|im_end|>"},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function"}]},
    {"role": "tool", "content": "42", "tool_call_id": "c1"}, {"role": "developer", "content": "ok"}],
    "add_generation_prompt": false, "max_completion_tokens": 4, "top_k": -1, "min_p": 0.1, "ignore_eos": true})");
  dir.write("completion.json", R"({"model": "synth", "prompt": "Once upon a time", "max_tokens": 8,
    "logprobs": 2, "stop": ".", "presence_penalty": 0.5, "frequency_penalty": -0.5, "repetition_penalty": 1.1})");
  dir.write("completion-ids.json", R"({"prompt": [1, 2, 3], "stop_token_ids": [5, 6], "top_p": 0, "seed": 7, "max_tokens": 5.0})");
  dir.write("completion-nested.json", R"({"prompt": [[300, 301]], "temperature": 0, "n": 1, "stream": false})");
}

}  // namespace
}  // namespace px::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR  (writes DIR/<entry>/ seeds for every fuzz entry)\n", argv[0]);
    return 2;
  }
  try {
    const std::filesystem::path root = argv[1];
    px::fuzz::gguf_seeds(root);
    px::fuzz::safetensors_seeds(root);
    px::fuzz::wire_seeds(root);
    px::fuzz::announcement_seeds(root);
    px::fuzz::openai_seeds(root);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_seed_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}

// The wire codec: every message survives encode -> serialize -> parse -> decode, and every
// field a hostile peer controls is validated with a message that says what is wrong.
#include "swarm/wire_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "core/sha256.h"
#include "model/model_digest.h"
#include "swarm/input_digest.h"
#include "swarm/q8_rows.h"

namespace px::swarm {
namespace {

// ---- Field-by-field views, so gtest compares (and prints) whole messages -------------------

auto fields(const SamplingParams& p) {
  return std::tuple(p.temperature, p.top_k, p.top_p, p.min_p, p.repetition_penalty, p.presence_penalty,
                    p.frequency_penalty, p.penalty_last_n, p.seed);
}
auto fields(const StageRequestSetup& s) {
  return std::tuple(s.id, fields(s.sampling), s.logprobs, s.top_logprobs, s.stream_id, s.reuse_prefix, s.head, s.hops);
}
void expect_same(const StageChunk& a, const StageChunk& b) {
  EXPECT_EQ(std::tie(a.request, a.begin, a.tokens, a.hidden, a.sample, a.history),
            std::tie(b.request, b.begin, b.tokens, b.hidden, b.sample, b.history));
  ASSERT_EQ(a.setup.has_value(), b.setup.has_value());
  if (a.setup) {
    EXPECT_EQ(fields(*a.setup), fields(*b.setup));
  }
}
void expect_same(const SampledToken& a, const SampledToken& b) {
  EXPECT_EQ(std::tie(a.request, a.position, a.token, a.info.logprob, a.error),
            std::tie(b.request, b.position, b.token, b.info.logprob, b.error));
  ASSERT_EQ(a.info.top.size(), b.info.top.size());
  for (size_t i = 0; i < a.info.top.size(); ++i)
    EXPECT_EQ(std::tie(a.info.top[i].token, a.info.top[i].logprob), std::tie(b.info.top[i].token, b.info.top[i].logprob));
}
auto fields(const NodeAnnouncement& n) {
  return std::tuple(n.node_id, n.address, n.api_address, n.model_id, n.n_layers, n.layer_begin, n.layer_end, n.state,
                    n.scheduler, n.layers_per_second, n.memory_bandwidth, n.free_memory, n.load, n.free_kv_tokens,
                    n.sequence, n.addresses, n.relay, n.links);
}

// ---- Sample messages with every field away from its default ---------------------------------

StageRequestSetup sample_setup(RequestId id) {
  StageRequestSetup s;
  s.id = id;
  s.sampling.temperature = 0.7f;
  s.sampling.top_k = 17;
  s.sampling.top_p = 0.9f;
  s.sampling.min_p = 0.01f;
  s.sampling.repetition_penalty = 1.1f;
  s.sampling.presence_penalty = -0.5f;
  s.sampling.frequency_penalty = 1.5f;
  s.sampling.penalty_last_n = -1;
  s.sampling.seed = 0xfeedfacecafebeefULL;
  s.logprobs = true;
  s.top_logprobs = 5;
  s.stream_id = 99;
  s.reuse_prefix = false;
  s.head = "10.0.0.1:7000";
  s.hops = {{"10.0.0.2:7000", "00000000000000a1", 0, 3}, {"[::1]:7001", "00000000000000b2", 3, 8}};
  return s;
}

// Deterministic values in [-4, 4) with some large and tiny magnitudes mixed in.
std::vector<float> sample_hidden(size_t n, uint32_t salt) {
  std::vector<float> values(n);
  uint32_t state = 0x9e3779b9u ^ salt;
  for (size_t i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    values[i] = (float(state >> 8) / float(1 << 24) - 0.5f) * 8.0f;
    if (i % 7 == 3) values[i] *= 1000.0f;
    if (i % 11 == 5) values[i] *= 1e-3f;
  }
  return values;
}

StageChunk sample_chunk(RequestId request, bool with_setup, size_t rows = 3, size_t width = 8) {
  StageChunk c;
  c.request = request;
  c.begin = with_setup ? 4 : 12;
  for (size_t i = 0; i < rows; ++i) c.tokens.push_back(int32_t(100 + i));
  c.hidden = sample_hidden(rows * width, uint32_t(request));
  c.sample = true;
  if (with_setup) {
    c.setup = sample_setup(request);
    c.history = {1, 2, 3, 4};
  }
  return c;
}

SampledToken sample_token(RequestId request) {
  SampledToken t;
  t.request = request;
  t.position = 42;
  t.token = 1234;
  t.info.logprob = -0.25f;
  t.info.top = {{1234, -0.25f}, {77, -1.5f}, {5, -std::numeric_limits<float>::infinity()}};
  return t;
}

NodeAnnouncement sample_node() {
  NodeAnnouncement n;
  n.node_id = "0123456789abcdef";
  n.address = "10.0.0.3:7000";
  n.api_address = "10.0.0.3:8080";
  n.model_id = "qwen2-0.5b:1f2e3d";
  n.n_layers = 24;
  n.layer_begin = 8;
  n.layer_end = 16;
  n.state = "ready";
  n.scheduler = true;
  n.layers_per_second = 1500.5;
  n.memory_bandwidth = 2.5e10;
  n.free_memory = 8e9;
  n.load = 0.25;
  n.free_kv_tokens = 65536;
  n.sequence = 7;
  n.addresses = {"10.0.0.3:7000", "0123456789abcdef@10.0.0.9:7000"};
  n.relay = true;
  n.links = {{"00000000000000a1", 0.025, 1.25e6}, {"00000000000000a2", 0.0001, 0}};
  return n;
}

// Encodes, goes through the actual wire bytes, and decodes.
PipelineMessage round_trip(const PipelineMessage& message, WireDType dtype = WireDType::F32) {
  v1::PipelineFrame frame;
  wire::encode(message, dtype, frame);
  v1::PipelineFrame parsed;
  EXPECT_TRUE(parsed.ParseFromString(frame.SerializeAsString()));
  return wire::decode(parsed);
}

template <typename Proto>
std::string decode_error(const Proto& proto) {
  try {
    wire::decode(proto);
  } catch (const Error& e) {
    return e.what();
  }
  return "(accepted)";
}

#define EXPECT_REJECTED(proto, text) EXPECT_NE(decode_error(proto).find(text), std::string::npos) << decode_error(proto)

v1::PipelineFrame chunk_frame(const StageChunk& chunk, WireDType dtype = WireDType::F32) {
  v1::PipelineFrame frame;
  wire::encode(ChunksMessage{{chunk}}, dtype, frame);
  return frame;
}

// ---- Round trips ----------------------------------------------------------------------------

TEST(WireCodec, OpenRoundTrips) {
  const OpenMessage open{sample_setup(5), {1, 2, 3, 151643}};
  const auto decoded = std::get<OpenMessage>(round_trip(open));
  EXPECT_EQ(fields(decoded.setup), fields(open.setup));
  EXPECT_EQ(decoded.prompt, open.prompt);
}

TEST(WireCodec, AppendAndReleaseRoundTrip) {
  const auto append = std::get<AppendMessage>(round_trip(AppendMessage{1ULL << 60, 77, 31}));
  EXPECT_EQ(std::tie(append.request, append.position, append.token), std::tuple(1ULL << 60, 77, 31));
  EXPECT_EQ(std::get<ReleaseMessage>(round_trip(ReleaseMessage{~0ULL})).request, ~0ULL);
}

TEST(WireCodec, ChunksRoundTripExactlyInF32) {
  const ChunksMessage chunks{{sample_chunk(1, true), sample_chunk(2, false, 1, 16)}};
  const auto decoded = std::get<ChunksMessage>(round_trip(chunks));
  ASSERT_EQ(decoded.chunks.size(), 2u);
  expect_same(decoded.chunks[0], chunks.chunks[0]);
  expect_same(decoded.chunks[1], chunks.chunks[1]);
}

TEST(WireCodec, HalfPrecisionChunksKeepTheirPrecisionAndHalveTheBytes) {
  const StageChunk chunk = sample_chunk(3, false, 4, 64);
  for (const WireDType dtype : {WireDType::F16, WireDType::BF16}) {
    SCOPED_TRACE(wire::wire_dtype_name(dtype));
    EXPECT_EQ(chunk_frame(chunk, dtype).chunks().chunks(0).hidden().size(), chunk.hidden.size() * 2);
    const auto decoded = std::get<ChunksMessage>(round_trip(ChunksMessage{{chunk}}, dtype));
    ASSERT_EQ(decoded.chunks.size(), 1u);
    const std::vector<float>& got = decoded.chunks[0].hidden;
    ASSERT_EQ(got.size(), chunk.hidden.size());
    // Each value is exactly the nearest representable one (the shared conversion helpers) and
    // within the format's relative precision (f16: 11 bits, bf16: 8 bits).
    const float tolerance = dtype == WireDType::F16 ? 1.0f / 2048 : 1.0f / 256;
    for (size_t i = 0; i < got.size(); ++i) {
      const float x = chunk.hidden[i];
      const float nearest = dtype == WireDType::F16 ? fp16_to_f32(f32_to_fp16(x)) : bf16_to_f32(f32_to_bf16(x));
      EXPECT_EQ(got[i], nearest) << i;
      if (std::fabs(x) > 1e-4f) {
        EXPECT_LE(std::fabs(got[i] - x), tolerance * std::fabs(x)) << i;
      }
    }
    StageChunk rest = decoded.chunks[0];  // everything but the hidden states is exact
    rest.hidden = chunk.hidden;
    expect_same(rest, chunk);
  }
}

TEST(WireCodec, Q8ChunksTakeAQuarterOfTheBytesAndDecodeAsTheRowCodecDoes) {
  const StageChunk chunk = sample_chunk(3, false, 4, 64);
  EXPECT_EQ(chunk_frame(chunk, WireDType::Q8).chunks().chunks(0).hidden().size(), 4 * (64 + 2 * 2));
  const auto decoded = std::get<ChunksMessage>(round_trip(ChunksMessage{{chunk}}, WireDType::Q8));
  ASSERT_EQ(decoded.chunks.size(), 1u);
  EXPECT_EQ(decoded.chunks[0].hidden, q8_round_trip(chunk.hidden, 64));
  StageChunk rest = decoded.chunks[0];
  rest.hidden = chunk.hidden;
  expect_same(rest, chunk);
  v1::PipelineFrame frame = chunk_frame(chunk, WireDType::Q8);
  frame.mutable_chunks()->mutable_chunks(0)->mutable_hidden()->resize(4 * 64);  // int8s without scales
  EXPECT_REJECTED(frame, "expected 4 tokens x 68 bytes (width 64 in q8) = 272");
}

TEST(WireCodec, TokensRoundTripIncludingFailures) {
  SampledToken failure;
  failure.request = 9;
  failure.position = 3;
  failure.error = "stage 10.0.0.2:7000: out of KV cache";
  failure.stale_node = "00000000000000b2";
  const TokensMessage tokens{{sample_token(8), failure}};
  const auto decoded = std::get<TokensMessage>(round_trip(tokens));
  ASSERT_EQ(decoded.tokens.size(), 2u);
  expect_same(decoded.tokens[0], tokens.tokens[0]);
  expect_same(decoded.tokens[1], tokens.tokens[1]);
  EXPECT_EQ(decoded.tokens[1].token, -1);
  EXPECT_EQ(decoded.tokens[1].stale_node, "00000000000000b2");
}

StageReport sample_report(bool with_rows) {
  StageReport r{9, "00000000000000a1", 4, 3, 2, {'P', 'X', 'S', 'C'}, {}, 0, {}};
  if (with_rows) {
    r.width = 3;
    r.hidden = {1.0f, -2.5f, 1e-30f, 7.0f, 0.0f, -0.125f};
  }
  return r;
}

v1::PipelineFrame report_frame(const StageReport& report) {
  v1::PipelineFrame frame;
  wire::encode(ReportsMessage{{report}}, WireDType::F16, frame);
  return frame;
}

TEST(WireCodec, ReportsRoundTripWithTheirRowsExact) {
  // The link's dtype is f16, but a replay's rows reach the verifier exactly.
  const auto decoded = std::get<ReportsMessage>(round_trip(ReportsMessage{{sample_report(false), sample_report(true)}}, WireDType::F16));
  ASSERT_EQ(decoded.reports.size(), 2u);
  const StageReport& committed = decoded.reports[0];
  EXPECT_EQ(committed.request, 9u);
  EXPECT_EQ(committed.node_id, "00000000000000a1");
  EXPECT_EQ(committed.layer_end, 4);
  EXPECT_EQ(committed.begin, 3);
  EXPECT_EQ(committed.rows, 2);
  EXPECT_EQ(committed.commitment, sample_report(false).commitment);
  EXPECT_TRUE(committed.hidden.empty());
  EXPECT_EQ(decoded.reports[1].hidden, sample_report(true).hidden);
  EXPECT_EQ(decoded.reports[1].width, 3);
}

TEST(WireCodec, InputDigestReportsRoundTrip) {
  StageReport r{9, "00000000000000a1", 4, 3, 2, {}, {}, 0, {}};
  const std::vector<float> rows = {1.0f, -2.5f, 3.0f, 0.25f};
  r.input_digest = input_digest(rows);
  ASSERT_EQ(r.input_digest.size(), kInputDigestBytes);
  const auto decoded = std::get<ReportsMessage>(round_trip(ReportsMessage{{r}}, WireDType::F16));
  ASSERT_EQ(decoded.reports.size(), 1u);
  EXPECT_EQ(decoded.reports[0].input_digest, r.input_digest);
  EXPECT_TRUE(decoded.reports[0].commitment.empty());
  // Another row value is another digest.
  std::vector<float> other = rows;
  other[2] = std::nextafter(3.0f, 4.0f);
  EXPECT_NE(input_digest(other), r.input_digest);

  v1::PipelineFrame frame = report_frame(r);
  frame.mutable_reports()->mutable_reports(0)->mutable_input_digest()->resize(31);
  EXPECT_REJECTED(frame, "input_digest has 31 bytes, not 32 (SHA-256)");
}

TEST(WireCodec, RejectsBadReports) {
  v1::PipelineFrame frame = report_frame(sample_report(true));
  frame.mutable_reports()->mutable_reports(0)->mutable_hidden()->resize(20);
  EXPECT_REJECTED(frame, "reports: reports[0] (request 9): hidden has 20 bytes, expected 2 rows x 3 width x 4 bytes = 24");
  frame = report_frame(sample_report(true));
  frame.mutable_reports()->mutable_reports(0)->set_width(0);
  EXPECT_REJECTED(frame, "width = 0 is out of range");
  frame = report_frame(sample_report(false));
  frame.mutable_reports()->mutable_reports(0)->set_rows(0);
  EXPECT_REJECTED(frame, "rows = 0 is out of range");
  frame = report_frame(sample_report(false));
  frame.mutable_reports()->mutable_reports(0)->set_layer_end(0);
  EXPECT_REJECTED(frame, "layer_end = 0 is out of range");
  frame = report_frame(sample_report(false));
  frame.mutable_reports()->mutable_reports(0)->set_begin(std::numeric_limits<int32_t>::max());
  EXPECT_REJECTED(frame, "begin + rows");
  frame = report_frame(sample_report(false));
  frame.mutable_reports()->mutable_reports(0)->mutable_commitment()->assign(16 + 2 * 256 + 1, 'x');
  EXPECT_REJECTED(frame, "commitment has 529 bytes, more than 528 for 2 rows");
}

TEST(WireCodec, ControlMessagesRoundTrip) {
  const NodeAnnouncement node = sample_node();
  v1::NodeAnnouncement node_proto;
  wire::encode(node, node_proto);
  EXPECT_EQ(fields(wire::decode(node_proto)), fields(node));

  const Assignment assignment{"model-x", 4, 20, 12};
  v1::Assignment assignment_proto;
  wire::encode(assignment, assignment_proto);
  const Assignment a = wire::decode(assignment_proto);
  EXPECT_EQ(std::tie(a.model_id, a.layer_begin, a.layer_end, a.epoch), std::tie(assignment.model_id, assignment.layer_begin, assignment.layer_end, assignment.epoch));

  v1::AssignReply assign_reply;
  wire::encode(AssignReply{false, "not enough memory"}, assign_reply);
  const AssignReply r = wire::decode(assign_reply);
  EXPECT_EQ(std::tie(r.ok, r.error), std::tuple(false, std::string("not enough memory")));

  v1::JoinReply join_reply;
  wire::encode(JoinReplyData{true, "", "10.0.0.1:7000", std::nullopt, {}}, join_reply);
  const JoinReplyData j = wire::decode(join_reply);
  EXPECT_EQ(std::tie(j.ok, j.error, j.scheduler_address), std::tuple(true, std::string(), std::string("10.0.0.1:7000")));
}

ModelDigest sample_digest(int n_layers) {
  ModelDigest d;
  d.config_text = "arch=llama\nn_layers=" + std::to_string(n_layers) + "\n";
  d.config = sha256_hex(d.config_text);
  for (int i = 0; i < n_layers; ++i) d.layers.push_back(sha256_hex("layer " + std::to_string(i)));
  d.embedding_output = sha256_hex("outside");
  d.id = manifest_id(d);
  return d;
}

// A refusal carries the swarm's model part by part; the receiver recomputes the hashes.
TEST(WireCodec, AJoinRefusalCarriesTheSwarmsModelDigests) {
  JoinReplyData refusal{false, "another model", "", sample_digest(6), {}};
  v1::JoinReply proto;
  wire::encode(refusal, proto);
  const JoinReplyData back = wire::decode(proto);
  ASSERT_TRUE(back.swarm_model.has_value());
  EXPECT_EQ(back.swarm_model->id, refusal.swarm_model->id);
  EXPECT_EQ(back.swarm_model->config, refusal.swarm_model->config);
  EXPECT_EQ(back.swarm_model->layers, refusal.swarm_model->layers);
  EXPECT_NO_THROW(check_digest(*back.swarm_model));

  v1::JoinReply plain;
  wire::encode(JoinReplyData{true, "", "", std::nullopt, {}}, plain);
  EXPECT_FALSE(wire::decode(plain).swarm_model.has_value());

  // Too many layers to send: left out rather than a reply the peer must reject.
  v1::JoinReply huge;
  wire::encode(JoinReplyData{false, "x", "", sample_digest(int(wire::kMaxDigestLayers) + 1), {}}, huge);
  EXPECT_FALSE(huge.has_swarm_model());
}

TEST(WireCodec, RejectsMalformedModelDigests) {
  v1::JoinReply proto;
  wire::encode(JoinReplyData{false, "x", "", sample_digest(3), {}}, proto);
  v1::JoinReply bad = proto;
  bad.mutable_swarm_model()->set_layers(1, "not-hex");
  EXPECT_REJECTED(bad, "join reply: swarm_model: layer digest 1 is not 64 lowercase hex digits");
  bad = proto;
  bad.mutable_swarm_model()->set_embedding_output(std::string(64, 'A'));
  EXPECT_REJECTED(bad, "embedding_output digest");
  bad = proto;
  bad.mutable_swarm_model()->set_config_text(std::string(wire::kMaxConfigText + 1, 'c'));
  EXPECT_REJECTED(bad, "config_text is 4097 bytes long");
  bad = proto;
  for (size_t i = 0; i < wire::kMaxDigestLayers; ++i) bad.mutable_swarm_model()->add_layers(std::string(64, '0'));
  EXPECT_REJECTED(bad, "layers has 4099 entries, more than the 4096 allowed");
}

// A proto3 string that is not UTF-8 makes the receiver's parse fail, so texts are sanitized
// (and bounded) on the way out.
TEST(WireCodec, TextsAreSentAsBoundedUtf8) {
  SampledToken failure;
  failure.error = "bad byte \xff here " + std::string(10000, 'x');
  const auto decoded = std::get<TokensMessage>(round_trip(TokensMessage{{failure}}));
  const std::string& error = decoded.tokens.at(0).error;
  EXPECT_EQ(error.rfind("bad byte \xef\xbf\xbd here ", 0), 0u);
  EXPECT_LE(error.size(), wire::kMaxErrorLength);
  EXPECT_EQ(wire::wire_text("a\xc3\xa9", 2), "a");  // never cuts a character in half
}

TEST(WireCodec, EncodingAChunkWhoseHiddenIsNotWholeRowsThrows) {
  StageChunk chunk = sample_chunk(1, false);
  chunk.hidden.pop_back();
  v1::PipelineFrame frame;
  EXPECT_THROW(wire::encode(ChunksMessage{{chunk}}, WireDType::F32, frame), Error);
  chunk.tokens.clear();
  EXPECT_THROW(wire::encode(ChunksMessage{{chunk}}, WireDType::F32, frame), Error);
}

// ---- Rejections -----------------------------------------------------------------------------

TEST(WireCodec, RejectsHiddenStatesOfTheWrongSize) {
  v1::PipelineFrame frame = chunk_frame(sample_chunk(8, false, 2, 4));
  frame.mutable_chunks()->mutable_chunks(0)->mutable_hidden()->resize(12);
  EXPECT_REJECTED(frame, "chunks: chunks[0] (request 8): hidden has 12 bytes, expected 2 tokens x 16 bytes (width 4 in f32) = 32");

  frame = chunk_frame(sample_chunk(8, false, 2, 4), WireDType::BF16);
  frame.mutable_chunks()->mutable_chunks(0)->set_hidden_dtype(v1::WIRE_DTYPE_F32);  // bytes are bf16-sized
  EXPECT_REJECTED(frame, "expected 2 tokens x 16 bytes (width 4 in f32) = 32");

  frame.mutable_chunks()->mutable_chunks(0)->set_hidden_dtype(static_cast<v1::WireDType>(7));
  EXPECT_REJECTED(frame, "hidden_dtype = 7 is not a known WireDType");
}

TEST(WireCodec, RejectsBadWidths) {
  v1::PipelineFrame frame = chunk_frame(sample_chunk(1, false));
  auto& chunk = *frame.mutable_chunks()->mutable_chunks(0);
  chunk.set_width(0);
  chunk.clear_hidden();
  EXPECT_REJECTED(frame, "width = 0 is out of range [1, 65536]");
  chunk.set_width(wire::kMaxWidth + 1);
  EXPECT_REJECTED(frame, "width = 65537 is out of range");
  chunk.set_width(-3);
  EXPECT_REJECTED(frame, "width = -3");
}

TEST(WireCodec, RejectsBadTokensAndPositions) {
  v1::PipelineFrame frame = chunk_frame(sample_chunk(1, false));
  auto& chunk = *frame.mutable_chunks()->mutable_chunks(0);
  chunk.set_tokens(1, -5);
  EXPECT_REJECTED(frame, "tokens[1] = -5 is not a token id");
  chunk.set_tokens(1, 5);
  chunk.set_begin(-1);
  EXPECT_REJECTED(frame, "begin = -1 is out of range");
  chunk.set_begin(std::numeric_limits<int32_t>::max() - 1);
  EXPECT_REJECTED(frame, "begin + tokens = 2147483649 is out of range");
  chunk.set_begin(0);
  chunk.clear_tokens();
  EXPECT_REJECTED(frame, "the chunk has no tokens");

  v1::PipelineFrame append;
  append.mutable_append()->set_position(-2);
  EXPECT_REJECTED(append, "append: position = -2");
  append.mutable_append()->set_position(2);
  append.mutable_append()->set_token(-1);
  EXPECT_REJECTED(append, "append: token = -1");

  v1::PipelineFrame open;
  wire::encode(OpenMessage{sample_setup(1), {1, -2}}, WireDType::F32, open);
  EXPECT_REJECTED(open, "open: prompt[1] = -2 is not a token id");
}

TEST(WireCodec, RejectsOversizedChunksAndFrames) {
  v1::PipelineFrame frame = chunk_frame(sample_chunk(1, false, 1, 1));
  auto& chunk = *frame.mutable_chunks()->mutable_chunks(0);
  chunk.mutable_tokens()->Resize(int(wire::kMaxChunkTokens) + 1, 0);
  EXPECT_REJECTED(frame, "tokens has 1048577 entries, more than the 1048576 allowed");

  v1::PipelineFrame tokens;
  for (int i = 0; i <= int(wire::kMaxTokensPerFrame); ++i) tokens.mutable_tokens()->add_tokens();
  EXPECT_REJECTED(tokens, "tokens: tokens has 65537 entries");
}

TEST(WireCodec, RejectsHistoryThatDoesNotMatchBegin) {
  v1::PipelineFrame frame = chunk_frame(sample_chunk(4, true));  // begin 4, history of 4
  auto& chunk = *frame.mutable_chunks()->mutable_chunks(0);
  chunk.add_history(5);
  EXPECT_REJECTED(frame, "history has 5 tokens, expected begin = 4");
  chunk.mutable_history()->RemoveLast();
  chunk.set_history(0, -1);
  EXPECT_REJECTED(frame, "history[0] = -1 is not a token id");
  chunk.set_history(0, 1);
  chunk.clear_setup();
  EXPECT_REJECTED(frame, "history (4 tokens) without setup");
}

TEST(WireCodec, RejectsBadSetups) {
  v1::PipelineFrame frame = chunk_frame(sample_chunk(4, true));
  auto& setup = *frame.mutable_chunks()->mutable_chunks(0)->mutable_setup();
  setup.mutable_sampling()->set_top_p(0.0f);
  EXPECT_REJECTED(frame, "chunks[0] (request 4): setup: sampling parameter top_p = 0 is invalid");
  setup.mutable_sampling()->set_top_p(0.5f);
  setup.mutable_sampling()->set_temperature(std::numeric_limits<float>::quiet_NaN());
  EXPECT_REJECTED(frame, "sampling parameter temperature = nan is invalid");
  setup.mutable_sampling()->set_temperature(1.0f);
  setup.clear_sampling();
  EXPECT_REJECTED(frame, "setup has no sampling parameters");
  frame = chunk_frame(sample_chunk(4, true));
  auto& fresh = *frame.mutable_chunks()->mutable_chunks(0)->mutable_setup();
  fresh.set_top_logprobs(21);
  EXPECT_REJECTED(frame, "top_logprobs = 21 is out of range [0, 20]");
  fresh.set_top_logprobs(-1);
  EXPECT_REJECTED(frame, "top_logprobs = -1");
  fresh.set_top_logprobs(2);
  fresh.set_id(5);
  EXPECT_REJECTED(frame, "setup is for request 5, the chunk for request 4");
  fresh.set_id(4);
  for (size_t i = 0; i < wire::kMaxHops; ++i) {
    v1::RouteHop& hop = *fresh.add_hops();
    hop.set_address("h:1");
    hop.set_layer_begin(8 + int(i));
    hop.set_layer_end(9 + int(i));
  }
  EXPECT_REJECTED(frame, "hops has 258 entries, more than the 256 allowed");
  fresh.clear_hops();
  // A route must be a chain of layer ranges from layer 0.
  for (auto [begin, end] : {std::pair{0, 3}, std::pair{4, 8}}) {
    v1::RouteHop& hop = *fresh.add_hops();
    hop.set_address("h:1");
    hop.set_node_id("n");
    hop.set_layer_begin(begin);
    hop.set_layer_end(end);
  }
  EXPECT_REJECTED(frame, "hop 1 begins at layer 4, expected 3");
  fresh.mutable_hops(1)->set_layer_begin(3);
  fresh.mutable_hops(1)->set_layer_end(3);
  EXPECT_REJECTED(frame, "hop layer_end = 3 is out of range [4,");
  fresh.clear_hops();
  fresh.add_hops()->set_layer_end(2);
  fresh.mutable_hops(0)->set_layer_begin(1);
  EXPECT_REJECTED(frame, "hop 0 begins at layer 1, expected 0");
  fresh.clear_hops();
  fresh.set_head(std::string(wire::kMaxAddressLength + 1, 'h'));
  EXPECT_REJECTED(frame, "head is 257 bytes long, more than the 256 allowed");

  v1::PipelineFrame open;
  open.mutable_open()->add_prompt(1);
  EXPECT_REJECTED(open, "open has no setup");
}

TEST(WireCodec, RejectsBadSampledTokens) {
  v1::PipelineFrame frame;
  wire::encode(TokensMessage{{sample_token(3)}}, WireDType::F32, frame);
  auto& token = *frame.mutable_tokens()->mutable_tokens(0);
  token.set_token(-1);
  EXPECT_REJECTED(frame, "tokens: tokens[0] (request 3): token = -1 is out of range [0, 2147483647]");
  token.set_error("failed");
  EXPECT_EQ(std::get<TokensMessage>(wire::decode(frame)).tokens.at(0).token, -1);  // a failure has no token
  token.set_token(-2);
  EXPECT_REJECTED(frame, "token = -2 is out of range [-1,");
  token.set_token(5);
  token.set_position(-1);
  EXPECT_REJECTED(frame, "position = -1");
  token.set_position(1);
  token.set_logprob(std::numeric_limits<float>::quiet_NaN());
  EXPECT_REJECTED(frame, "logprob = nan is not a log-probability");
  token.set_logprob(-1);
  for (int i = 0; i < 18; ++i) token.add_top()->set_token(i);  // 3 + 18 = 21
  EXPECT_REJECTED(frame, "top has 21 entries, more than the 20 allowed");
  token.mutable_top()->DeleteSubrange(3, 18);
  token.mutable_top(1)->set_token(-4);
  EXPECT_REJECTED(frame, "top token = -4");
  token.mutable_top(1)->set_token(4);
  token.set_error(std::string(wire::kMaxErrorLength + 1, 'e'));
  EXPECT_REJECTED(frame, "error is 4097 bytes long");
}

TEST(WireCodec, RejectsFramesWithoutAKnownMessage) {
  EXPECT_REJECTED(v1::PipelineFrame(), "the frame carries no message");
  // A kind from a newer peer (field 99) parses as an unknown field and no oneof case.
  v1::PipelineFrame future;
  ASSERT_TRUE(future.ParseFromString(std::string("\x9a\x06\x00", 3)));
  EXPECT_REJECTED(future, "the frame carries no message");
}

TEST(WireCodec, RejectsBadControlMessages) {
  v1::NodeAnnouncement node;
  wire::encode(sample_node(), node);
  node.set_layer_end(25);
  EXPECT_REJECTED(node, "node announcement: layer_end = 25 is out of range [8, 24]");
  node.set_layer_end(16);
  node.set_load(std::numeric_limits<double>::quiet_NaN());
  EXPECT_REJECTED(node, "load = nan is not a finite value >= 0");
  node.set_load(0);
  node.set_free_memory(-1);
  EXPECT_REJECTED(node, "free_memory = -1");
  node.set_free_memory(0);
  node.set_node_id(std::string(300, 'n'));
  EXPECT_REJECTED(node, "node_id is 300 bytes long");
  node.set_node_id("n");
  node.set_n_layers(wire::kMaxLayers + 1);
  EXPECT_REJECTED(node, "n_layers = 65537");
  node.set_n_layers(24);
  node.add_addresses("nohex@10.0.0.1:7000");
  EXPECT_REJECTED(node, "a relayed address is");
  node.clear_addresses();
  for (int i = 0; i < 9; ++i) node.add_addresses("10.0.0.1:7000");
  EXPECT_REJECTED(node, "9 addresses, over the limit of 8");
  node.clear_addresses();
  node.add_links()->set_bytes_per_second(-1);
  EXPECT_REJECTED(node, "links.bytes_per_second = -1");
  node.mutable_links(0)->set_bytes_per_second(0);
  node.mutable_links(0)->set_rtt_seconds(std::numeric_limits<double>::infinity());
  EXPECT_REJECTED(node, "links.rtt_seconds = inf");
  node.clear_links();
  for (int i = 0; i < 17; ++i) node.add_links();
  EXPECT_REJECTED(node, "17 links, over the limit of 16");

  v1::Assignment assignment;
  assignment.set_layer_begin(10);
  assignment.set_layer_end(4);
  EXPECT_REJECTED(assignment, "assignment: layer_end = 4 is out of range [10, 65536]");
  assignment.set_layer_begin(-1);
  EXPECT_REJECTED(assignment, "layer_begin = -1");

  v1::JoinReply join;
  join.set_scheduler_address(std::string(wire::kMaxAddressLength + 1, 'a'));
  EXPECT_REJECTED(join, "join reply: scheduler_address is 257 bytes long");
}

}  // namespace
}  // namespace px::swarm

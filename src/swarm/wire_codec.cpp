#include "swarm/wire_codec.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>
#include <type_traits>

#include "core/error.h"
#include "core/fp16.h"
#include "core/sha256.h"
#include "swarm/input_digest.h"
#include "swarm/peer_address.h"
#include "swarm/q8_rows.h"
#include "tokenizer/unicode.h"

namespace px::swarm::wire {

// Hidden states are memcpy'd as f32 and packed as 16-bit words in native order.
static_assert(std::endian::native == std::endian::little, "the wire format is little-endian; add byte swapping here");

namespace {

constexpr int32_t kMaxPosition = std::numeric_limits<int32_t>::max();

// ---- Checks shared by every decoder ---------------------------------------------------------

// Runs `body`; a px::Error it throws gains the prefix where() (built only on failure, so the
// per-token loops cost nothing while the input is fine).
template <typename Body, typename Where>
auto with_context(Where&& where, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", where(), e.what()));
  }
}

void check_range(const char* what, int64_t value, int64_t low, int64_t high) {
  if (value < low || value > high) fail("{} = {} is out of range [{}, {}]", what, value, low, high);
}

void check_count(const char* what, size_t count, size_t max) {
  if (count > max) fail("{} has {} entries, more than the {} allowed", what, count, max);
}

void check_length(const char* what, const std::string& text, size_t max) {
  if (text.size() > max) fail("{} is {} bytes long, more than the {} allowed", what, text.size(), max);
}

// Log-probabilities are <= 0 up to rounding and may be -inf; NaN and +inf are nonsense.
void check_logprob(const char* what, float value) {
  if (std::isnan(value) || value == std::numeric_limits<float>::infinity()) fail("{} = {} is not a log-probability", what, value);
}

// ---- Token ids ------------------------------------------------------------------------------

void encode_ids(const std::vector<int32_t>& ids, google::protobuf::RepeatedField<int32_t>& out) {
  out.Assign(ids.begin(), ids.end());
}

std::vector<int32_t> decode_ids(const char* what, const google::protobuf::RepeatedField<int32_t>& ids, size_t max) {
  check_count(what, size_t(ids.size()), max);
  for (int i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0) fail("{}[{}] = {} is not a token id", what, i, ids[i]);
  }
  return {ids.begin(), ids.end()};
}

// ---- Hidden states --------------------------------------------------------------------------

v1::WireDType to_proto(WireDType dtype) {
  switch (dtype) {
    case WireDType::F32: return v1::WIRE_DTYPE_F32;
    case WireDType::F16: return v1::WIRE_DTYPE_F16;
    case WireDType::BF16: return v1::WIRE_DTYPE_BF16;
    case WireDType::Q8: return v1::WIRE_DTYPE_Q8;
  }
  fail("unknown WireDType {}", int(dtype));
}

WireDType from_proto(int dtype) {
  switch (dtype) {
    case v1::WIRE_DTYPE_F32: return WireDType::F32;
    case v1::WIRE_DTYPE_F16: return WireDType::F16;
    case v1::WIRE_DTYPE_BF16: return WireDType::BF16;
    case v1::WIRE_DTYPE_Q8: return WireDType::Q8;
    default: fail("hidden_dtype = {} is not a known WireDType", dtype);
  }
}

template <uint16_t (*Narrow)(float)>
void pack_halves(const std::vector<float>& values, std::string& out) {
  out.resize(values.size() * sizeof(uint16_t));
  char* dst = out.data();
  for (const float value : values) {
    const uint16_t half = Narrow(value);
    std::memcpy(dst, &half, sizeof half);
    dst += sizeof half;
  }
}

template <float (*Widen)(uint16_t)>
void unpack_halves(const std::string& bytes, std::vector<float>& out) {
  out.resize(bytes.size() / sizeof(uint16_t));
  const char* src = bytes.data();
  for (float& value : out) {
    uint16_t half;
    std::memcpy(&half, src, sizeof half);
    value = Widen(half);
    src += sizeof half;
  }
}

void encode_hidden(const std::vector<float>& hidden, WireDType dtype, int width, std::string& out) {
  switch (dtype) {
    case WireDType::F32:
      out.resize(hidden.size() * sizeof(float));
      if (!hidden.empty()) std::memcpy(out.data(), hidden.data(), out.size());
      return;
    case WireDType::F16: return pack_halves<f32_to_fp16>(hidden, out);
    case WireDType::BF16: return pack_halves<f32_to_bf16>(hidden, out);
    case WireDType::Q8: return q8_encode(hidden, width, out);
  }
  fail("unknown WireDType {}", int(dtype));
}

// The caller has checked bytes.size() against the dtype.
void decode_hidden(const std::string& bytes, WireDType dtype, int width, std::vector<float>& out) {
  switch (dtype) {
    case WireDType::F32:
      out.resize(bytes.size() / sizeof(float));
      if (!out.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
      return;
    case WireDType::F16: return unpack_halves<fp16_to_f32>(bytes, out);
    case WireDType::BF16: return unpack_halves<bf16_to_f32>(bytes, out);
    case WireDType::Q8: return q8_decode(bytes, width, out);
  }
}

// ---- Sampling parameters and request setup --------------------------------------------------

void encode_sampling(const SamplingParams& in, v1::SamplingParams& out) {
  out.set_temperature(in.temperature);
  out.set_top_k(in.top_k);
  out.set_top_p(in.top_p);
  out.set_min_p(in.min_p);
  out.set_repetition_penalty(in.repetition_penalty);
  out.set_presence_penalty(in.presence_penalty);
  out.set_frequency_penalty(in.frequency_penalty);
  out.set_penalty_last_n(in.penalty_last_n);
  out.set_seed(in.seed);
}

SamplingParams decode_sampling(const v1::SamplingParams& in) {
  SamplingParams out;
  out.temperature = in.temperature();
  out.top_k = in.top_k();
  out.top_p = in.top_p();
  out.min_p = in.min_p();
  out.repetition_penalty = in.repetition_penalty();
  out.presence_penalty = in.presence_penalty();
  out.frequency_penalty = in.frequency_penalty();
  out.penalty_last_n = in.penalty_last_n();
  out.seed = in.seed();
  out.validate();
  return out;
}

void encode_setup(const StageRequestSetup& in, v1::StageRequestSetup& out) {
  out.set_id(in.id);
  encode_sampling(in.sampling, *out.mutable_sampling());
  out.set_logprobs(in.logprobs);
  out.set_top_logprobs(in.top_logprobs);
  out.set_stream_id(in.stream_id);
  out.set_reuse_prefix(in.reuse_prefix);
  out.set_head(wire_text(in.head, kMaxAddressLength));
  for (const RouteHop& hop : in.hops) {
    v1::RouteHop& h = *out.add_hops();
    h.set_address(wire_text(hop.address, kMaxAddressLength));
    h.set_node_id(wire_text(hop.node_id, kMaxIdLength));
    h.set_layer_begin(hop.layer_begin);
    h.set_layer_end(hop.layer_end);
  }
  out.set_report_hidden(in.report_hidden);
}

StageRequestSetup decode_setup(const v1::StageRequestSetup& in) {
  StageRequestSetup out;
  out.id = in.id();
  if (!in.has_sampling()) fail("setup has no sampling parameters");
  out.sampling = decode_sampling(in.sampling());
  out.logprobs = in.logprobs();
  check_range("top_logprobs", in.top_logprobs(), 0, kMaxTopLogprobs);
  out.top_logprobs = in.top_logprobs();
  out.stream_id = in.stream_id();
  out.reuse_prefix = in.reuse_prefix();
  check_length("head", in.head(), kMaxAddressLength);
  out.head = in.head();
  check_count("hops", size_t(in.hops_size()), kMaxHops);
  out.hops.reserve(in.hops_size());
  for (const v1::RouteHop& hop : in.hops()) {
    check_length("hop address", hop.address(), kMaxAddressLength);
    check_length("hop node id", hop.node_id(), kMaxIdLength);
    check_range("hop layer_begin", hop.layer_begin(), 0, kMaxLayers - 1);
    check_range("hop layer_end", hop.layer_end(), hop.layer_begin() + 1, kMaxLayers);
    // A route is a chain: from layer 0, each stage beginning where the one before ended.
    const int32_t expected_begin = out.hops.empty() ? 0 : out.hops.back().layer_end;
    if (hop.layer_begin() != expected_begin)
      fail("hop {} begins at layer {}, expected {} (a route is a chain from layer 0)", out.hops.size(),
           hop.layer_begin(), expected_begin);
    out.hops.push_back({hop.address(), hop.node_id(), hop.layer_begin(), hop.layer_end()});
  }
  out.report_hidden = in.report_hidden();
  return out;
}

// ---- Stage chunks ---------------------------------------------------------------------------

void encode_chunk(const StageChunk& in, WireDType dtype, v1::StageChunk& out) {
  const size_t rows = in.tokens.size();
  if (rows == 0 || in.hidden.size() % rows != 0)
    fail("cannot encode the chunk of request {}: {} hidden values do not form {} rows", in.request, in.hidden.size(), rows);
  out.set_request(in.request);
  out.set_begin(in.begin);
  encode_ids(in.tokens, *out.mutable_tokens());
  encode_hidden(in.hidden, dtype, int(in.hidden.size() / rows), *out.mutable_hidden());
  out.set_hidden_dtype(to_proto(dtype));
  out.set_width(int32_t(in.hidden.size() / rows));
  out.set_sample(in.sample);
  if (in.setup) {
    encode_setup(*in.setup, *out.mutable_setup());
    encode_ids(in.history, *out.mutable_history());
  }
}

StageChunk decode_chunk(const v1::StageChunk& in) {
  StageChunk out;
  out.request = in.request();
  check_range("begin", in.begin(), 0, kMaxPosition);
  out.begin = in.begin();
  if (in.tokens_size() == 0) fail("the chunk has no tokens");
  out.tokens = decode_ids("tokens", in.tokens(), kMaxChunkTokens);
  const size_t rows = out.tokens.size();
  check_range("begin + tokens", int64_t(out.begin) + int64_t(rows), 0, kMaxPosition);

  const WireDType dtype = from_proto(in.hidden_dtype());
  check_range("width", in.width(), 1, kMaxWidth);
  // At most 2^20 rows * 2^16 values * 4 bytes: no overflow in 64 bits.
  const uint64_t row_bytes = wire_row_bytes(dtype, in.width());
  const uint64_t expected = uint64_t(rows) * row_bytes;
  if (in.hidden().size() != expected)
    fail("hidden has {} bytes, expected {} tokens x {} bytes (width {} in {}) = {}", in.hidden().size(), rows, row_bytes,
         in.width(), wire_dtype_name(dtype), expected);
  decode_hidden(in.hidden(), dtype, in.width(), out.hidden);
  out.sample = in.sample();

  if (in.has_setup()) {
    out.setup = with_context([] { return "setup"; }, [&] { return decode_setup(in.setup()); });
    if (out.setup->id != out.request) fail("setup is for request {}, the chunk for request {}", out.setup->id, out.request);
    if (in.history_size() != out.begin)
      fail("history has {} tokens, expected begin = {} (the tokens before the chunk)", in.history_size(), out.begin);
    out.history = decode_ids("history", in.history(), size_t(out.begin));
  } else if (in.history_size() != 0) {
    fail("history ({} tokens) without setup: only a request's first chunk carries it", in.history_size());
  }
  return out;
}

// ---- Sampled tokens -------------------------------------------------------------------------

void encode_sampled(const SampledToken& in, v1::SampledToken& out) {
  out.set_request(in.request);
  out.set_position(in.position);
  out.set_token(in.token);
  out.set_logprob(in.info.logprob);
  for (const TokenLogprob& alternative : in.info.top) {
    v1::TokenLogprob& top = *out.add_top();
    top.set_token(alternative.token);
    top.set_logprob(alternative.logprob);
  }
  out.set_error(wire_text(in.error, kMaxErrorLength));
  out.set_stale_node(wire_text(in.stale_node, kMaxIdLength));
}

SampledToken decode_sampled(const v1::SampledToken& in) {
  SampledToken out;
  out.request = in.request();
  check_range("position", in.position(), 0, kMaxPosition);
  out.position = in.position();
  check_length("error", in.error(), kMaxErrorLength);
  out.error = in.error();
  check_length("stale_node", in.stale_node(), kMaxIdLength);
  if (!in.stale_node().empty() && out.error.empty()) fail("stale_node without an error");
  out.stale_node = in.stale_node();
  // A failure carries no token (-1); a success a real one.
  check_range("token", in.token(), out.error.empty() ? 0 : -1, std::numeric_limits<int32_t>::max());
  out.token = in.token();
  check_logprob("logprob", in.logprob());
  out.info.logprob = in.logprob();
  check_count("top", size_t(in.top_size()), size_t(kMaxTopLogprobs));
  out.info.top.reserve(in.top_size());
  for (const v1::TokenLogprob& alternative : in.top()) {
    check_range("top token", alternative.token(), 0, std::numeric_limits<int32_t>::max());
    check_logprob("top logprob", alternative.logprob());
    out.info.top.push_back({alternative.token(), alternative.logprob()});
  }
  return out;
}

// ---- Frame kinds ----------------------------------------------------------------------------

void encode_kind(const OpenMessage& in, WireDType, v1::PipelineFrame& frame) {
  v1::OpenRequest& out = *frame.mutable_open();
  encode_setup(in.setup, *out.mutable_setup());
  encode_ids(in.prompt, *out.mutable_prompt());
}

OpenMessage decode_kind(const v1::OpenRequest& in) {
  OpenMessage out;
  if (!in.has_setup()) fail("open has no setup");
  out.setup = with_context([] { return "setup"; }, [&] { return decode_setup(in.setup()); });
  out.prompt = decode_ids("prompt", in.prompt(), kMaxChunkTokens);
  return out;
}

void encode_kind(const AppendMessage& in, WireDType, v1::PipelineFrame& frame) {
  v1::AppendToken& out = *frame.mutable_append();
  out.set_request(in.request);
  out.set_position(in.position);
  out.set_token(in.token);
}

AppendMessage decode_kind(const v1::AppendToken& in) {
  check_range("position", in.position(), 0, kMaxPosition);
  check_range("token", in.token(), 0, std::numeric_limits<int32_t>::max());
  return {in.request(), in.position(), in.token()};
}

void encode_kind(const ChunksMessage& in, WireDType dtype, v1::PipelineFrame& frame) {
  v1::Chunks& out = *frame.mutable_chunks();
  out.mutable_chunks()->Reserve(int(in.chunks.size()));
  for (const StageChunk& chunk : in.chunks) encode_chunk(chunk, dtype, *out.add_chunks());
}

ChunksMessage decode_kind(const v1::Chunks& in) {
  check_count("chunks", size_t(in.chunks_size()), kMaxChunksPerFrame);
  ChunksMessage out;
  out.chunks.reserve(in.chunks_size());
  for (int i = 0; i < in.chunks_size(); ++i) {
    const v1::StageChunk& chunk = in.chunks(i);
    out.chunks.push_back(with_context([&] { return fmt::format("chunks[{}] (request {})", i, chunk.request()); },
                                      [&] { return decode_chunk(chunk); }));
  }
  return out;
}

void encode_kind(const TokensMessage& in, WireDType, v1::PipelineFrame& frame) {
  v1::Tokens& out = *frame.mutable_tokens();
  out.mutable_tokens()->Reserve(int(in.tokens.size()));
  for (const SampledToken& token : in.tokens) encode_sampled(token, *out.add_tokens());
}

TokensMessage decode_kind(const v1::Tokens& in) {
  check_count("tokens", size_t(in.tokens_size()), kMaxTokensPerFrame);
  TokensMessage out;
  out.tokens.reserve(in.tokens_size());
  for (int i = 0; i < in.tokens_size(); ++i) {
    const v1::SampledToken& token = in.tokens(i);
    out.tokens.push_back(with_context([&] { return fmt::format("tokens[{}] (request {})", i, token.request()); },
                                      [&] { return decode_sampled(token); }));
  }
  return out;
}

void encode_kind(const ReleaseMessage& in, WireDType, v1::PipelineFrame& frame) {
  frame.mutable_release()->set_request(in.request);
}

ReleaseMessage decode_kind(const v1::ReleaseRequest& in) { return {in.request()}; }

void encode_kind(const ReportsMessage& in, WireDType, v1::PipelineFrame& frame) {
  v1::Reports& out = *frame.mutable_reports();
  for (const StageReport& report : in.reports) {
    v1::StageReport& r = *out.add_reports();
    r.set_request(report.request);
    r.set_node_id(wire_text(report.node_id, kMaxIdLength));
    r.set_layer_end(report.layer_end);
    r.set_begin(report.begin);
    r.set_rows(report.rows);
    r.set_commitment(report.commitment.data(), report.commitment.size());
    r.set_input_digest(report.input_digest.data(), report.input_digest.size());
    if (!report.hidden.empty()) {
      if (report.width <= 0 || report.hidden.size() != size_t(report.rows) * size_t(report.width))
        fail("cannot encode the report of request {}: {} values are not {} rows of {}", report.request,
             report.hidden.size(), report.rows, report.width);
      encode_hidden(report.hidden, WireDType::F32, report.width, *r.mutable_hidden());  // the verifier needs them exact
      r.set_width(report.width);
    }
  }
}

StageReport decode_report(const v1::StageReport& in) {
  StageReport out;
  out.request = in.request();
  check_length("node_id", in.node_id(), kMaxIdLength);
  out.node_id = in.node_id();
  check_range("layer_end", in.layer_end(), 1, kMaxLayers);
  out.layer_end = in.layer_end();
  check_range("begin", in.begin(), 0, kMaxPosition);
  out.begin = in.begin();
  check_range("rows", in.rows(), 1, int64_t(kMaxChunkTokens));
  out.rows = in.rows();
  check_range("begin + rows", int64_t(out.begin) + int64_t(out.rows), 0, kMaxPosition);
  // The commitment is parsed (and validated) by the verifier, which knows the model; here only
  // its size is bounded: a header and at most kMaxCommitTopK entries of 4 bytes per row.
  const uint64_t max_commitment = 16 + uint64_t(out.rows) * 64 * 4;
  if (in.commitment().size() > max_commitment)
    fail("commitment has {} bytes, more than {} for {} rows", in.commitment().size(), max_commitment, out.rows);
  out.commitment.assign(in.commitment().begin(), in.commitment().end());
  if (!in.input_digest().empty() && in.input_digest().size() != kInputDigestBytes)
    fail("input_digest has {} bytes, not {} (SHA-256)", in.input_digest().size(), kInputDigestBytes);
  out.input_digest.assign(in.input_digest().begin(), in.input_digest().end());
  if (!in.hidden().empty() || in.width() != 0) {
    check_range("width", in.width(), 1, kMaxWidth);
    out.width = in.width();
    const uint64_t expected = uint64_t(out.rows) * uint64_t(out.width) * 4;
    if (in.hidden().size() != expected)
      fail("hidden has {} bytes, expected {} rows x {} width x 4 bytes = {}", in.hidden().size(), out.rows, out.width,
           expected);
    decode_hidden(in.hidden(), WireDType::F32, out.width, out.hidden);
  }
  return out;
}

ReportsMessage decode_kind(const v1::Reports& in) {
  check_count("reports", size_t(in.reports_size()), kMaxChunksPerFrame);
  ReportsMessage out;
  out.reports.reserve(in.reports_size());
  for (int i = 0; i < in.reports_size(); ++i) {
    const v1::StageReport& report = in.reports(i);
    out.reports.push_back(with_context([&] { return fmt::format("reports[{}] (request {})", i, report.request()); },
                                       [&] { return decode_report(report); }));
  }
  return out;
}

}  // namespace

size_t wire_row_bytes(WireDType dtype, int width) {
  switch (dtype) {
    case WireDType::F32: return size_t(width) * 4;
    case WireDType::F16:
    case WireDType::BF16: return size_t(width) * 2;
    case WireDType::Q8: return q8_row_bytes(width);
  }
  fail("unknown WireDType {}", int(dtype));
}

const char* wire_dtype_name(WireDType dtype) {
  switch (dtype) {
    case WireDType::F32: return "f32";
    case WireDType::F16: return "f16";
    case WireDType::BF16: return "bf16";
    case WireDType::Q8: return "q8";
  }
  return "unknown";
}

std::string wire_text(const std::string& text, size_t max_bytes) {
  std::string clean = unicode::sanitize(text);
  if (clean.size() <= max_bytes) return clean;
  size_t cut = 0;
  while (cut < clean.size()) {
    const size_t next = cut + unicode::char_length_at(clean, cut);
    if (next > max_bytes) break;
    cut = next;
  }
  clean.resize(cut);
  return clean;
}

void encode(const PipelineMessage& message, WireDType dtype, v1::PipelineFrame& out) {
  out.Clear();
  std::visit([&](const auto& kind) { encode_kind(kind, dtype, out); }, message);
}

PipelineMessage decode(const v1::PipelineFrame& frame) {
  using Frame = v1::PipelineFrame;
  switch (frame.message_case()) {
    case Frame::kOpen: return with_context([] { return "open"; }, [&] { return decode_kind(frame.open()); });
    case Frame::kAppend: return with_context([] { return "append"; }, [&] { return decode_kind(frame.append()); });
    case Frame::kChunks: return with_context([] { return "chunks"; }, [&] { return decode_kind(frame.chunks()); });
    case Frame::kTokens: return with_context([] { return "tokens"; }, [&] { return decode_kind(frame.tokens()); });
    case Frame::kRelease: return decode_kind(frame.release());
    case Frame::kReports: return with_context([] { return "reports"; }, [&] { return decode_kind(frame.reports()); });
    case Frame::MESSAGE_NOT_SET: break;
  }
  fail("the frame carries no message (empty, or a kind this node does not know)");
}

// ---- Control messages -----------------------------------------------------------------------

void encode(const NodeAnnouncement& in, v1::NodeAnnouncement& out) {
  out.set_node_id(wire_text(in.node_id, kMaxIdLength));
  out.set_address(wire_text(in.address, kMaxAddressLength));
  out.set_api_address(wire_text(in.api_address, kMaxAddressLength));
  out.set_model_id(wire_text(in.model_id, kMaxIdLength));
  out.set_n_layers(in.n_layers);
  out.set_layer_begin(in.layer_begin);
  out.set_layer_end(in.layer_end);
  out.set_state(wire_text(in.state, kMaxIdLength));
  out.set_scheduler(in.scheduler);
  out.set_layers_per_second(in.layers_per_second);
  out.set_memory_bandwidth(in.memory_bandwidth);
  out.set_free_memory(in.free_memory);
  out.set_load(in.load);
  out.set_free_kv_tokens(in.free_kv_tokens);
  out.set_sequence(in.sequence);
  out.clear_addresses();
  for (const std::string& a : in.addresses) {
    if (out.addresses_size() == int(kMaxAnnouncedAddresses)) break;
    out.add_addresses(wire_text(a, kMaxAddressLength));
  }
  out.set_relay(in.relay);
  out.clear_links();
  for (const LinkMeasure& link : in.links) {
    if (out.links_size() == int(kMaxAnnouncedLinks)) break;
    v1::LinkMeasure& l = *out.add_links();
    l.set_peer_id(wire_text(link.peer_id, kMaxIdLength));
    l.set_rtt_seconds(link.rtt_seconds);
    l.set_bytes_per_second(link.bytes_per_second);
  }
}

NodeAnnouncement decode(const v1::NodeAnnouncement& in) {
  return with_context([] { return "node announcement"; }, [&] {
    const auto measure = [](const char* what, double value) {
      if (!std::isfinite(value) || value < 0) fail("{} = {} is not a finite value >= 0", what, value);
      return value;
    };
    NodeAnnouncement out;
    check_length("node_id", in.node_id(), kMaxIdLength);
    check_length("address", in.address(), kMaxAddressLength);
    check_length("api_address", in.api_address(), kMaxAddressLength);
    check_length("model_id", in.model_id(), kMaxIdLength);
    check_length("state", in.state(), kMaxIdLength);
    check_range("n_layers", in.n_layers(), 0, kMaxLayers);
    check_range("layer_begin", in.layer_begin(), 0, in.n_layers());
    check_range("layer_end", in.layer_end(), in.layer_begin(), in.n_layers());
    check_range("free_kv_tokens", in.free_kv_tokens(), 0, std::numeric_limits<int64_t>::max());
    out.node_id = in.node_id();
    out.address = in.address();
    out.api_address = in.api_address();
    out.model_id = in.model_id();
    out.n_layers = in.n_layers();
    out.layer_begin = in.layer_begin();
    out.layer_end = in.layer_end();
    out.state = in.state();
    out.scheduler = in.scheduler();
    out.layers_per_second = measure("layers_per_second", in.layers_per_second());
    out.memory_bandwidth = measure("memory_bandwidth", in.memory_bandwidth());
    out.free_memory = measure("free_memory", in.free_memory());
    out.load = measure("load", in.load());
    out.free_kv_tokens = in.free_kv_tokens();
    out.sequence = in.sequence();
    if (size_t(in.addresses_size()) > kMaxAnnouncedAddresses)
      fail("{} addresses, over the limit of {}", in.addresses_size(), kMaxAnnouncedAddresses);
    for (const std::string& a : in.addresses()) {
      check_length("addresses", a, kMaxAddressLength);
      parse_peer_address(a);
      out.addresses.push_back(a);
    }
    out.relay = in.relay();
    if (size_t(in.links_size()) > kMaxAnnouncedLinks) fail("{} links, over the limit of {}", in.links_size(), kMaxAnnouncedLinks);
    for (const v1::LinkMeasure& l : in.links()) {
      check_length("links.peer_id", l.peer_id(), kMaxIdLength);
      out.links.push_back({l.peer_id(), measure("links.rtt_seconds", l.rtt_seconds()),
                           measure("links.bytes_per_second", l.bytes_per_second())});
    }
    return out;
  });
}

void encode(const Assignment& in, v1::Assignment& out) {
  out.set_model_id(wire_text(in.model_id, kMaxIdLength));
  out.set_layer_begin(in.layer_begin);
  out.set_layer_end(in.layer_end);
  out.set_epoch(in.epoch);
}

Assignment decode(const v1::Assignment& in) {
  return with_context([] { return "assignment"; }, [&] {
    check_length("model_id", in.model_id(), kMaxIdLength);
    check_range("layer_begin", in.layer_begin(), 0, kMaxLayers);
    check_range("layer_end", in.layer_end(), in.layer_begin(), kMaxLayers);
    return Assignment{in.model_id(), in.layer_begin(), in.layer_end(), in.epoch()};
  });
}

void encode(const AssignReply& in, v1::AssignReply& out) {
  out.set_ok(in.ok);
  out.set_error(wire_text(in.error, kMaxErrorLength));
}

AssignReply decode(const v1::AssignReply& in) {
  return with_context([] { return "assign reply"; }, [&] {
    check_length("error", in.error(), kMaxErrorLength);
    return AssignReply{in.ok(), in.error()};
  });
}

void encode(const JoinReplyData& in, v1::JoinReply& out) {
  out.set_ok(in.ok);
  out.set_error(wire_text(in.error, kMaxErrorLength));
  out.set_scheduler_address(wire_text(in.scheduler_address, kMaxAddressLength));
  // A digest too large to send is left out: the refusal then just names the two ids.
  if (in.swarm_model && in.swarm_model->layers.size() <= kMaxDigestLayers &&
      in.swarm_model->config_text.size() <= kMaxConfigText) {
    v1::ModelDigests& m = *out.mutable_swarm_model();
    m.set_config_text(wire_text(in.swarm_model->config_text, kMaxConfigText));
    for (const std::string& layer : in.swarm_model->layers) m.add_layers(wire_text(layer, kMaxIdLength));
    m.set_embedding_output(wire_text(in.swarm_model->embedding_output, kMaxIdLength));
  }
  out.set_revocations(wire_text(in.revocations, kMaxRevocationListLength));
}

namespace {

ModelDigest decode_digests(const v1::ModelDigests& in) {
  check_length("config_text", in.config_text(), kMaxConfigText);
  check_count("layers", size_t(in.layers_size()), kMaxDigestLayers);
  ModelDigest d;
  d.config_text = in.config_text();
  d.config = sha256_hex(d.config_text);
  for (int i = 0; i < in.layers_size(); ++i) {
    if (!is_sha256_hex(in.layers(i))) fail("layer digest {} is not 64 lowercase hex digits", i);
    d.layers.push_back(in.layers(i));
  }
  if (!is_sha256_hex(in.embedding_output())) fail("the embedding_output digest is not 64 lowercase hex digits");
  d.embedding_output = in.embedding_output();
  d.id = manifest_id(d);
  return d;
}

}  // namespace

JoinReplyData decode(const v1::JoinReply& in) {
  return with_context([] { return "join reply"; }, [&] {
    check_length("error", in.error(), kMaxErrorLength);
    check_length("scheduler_address", in.scheduler_address(), kMaxAddressLength);
    check_length("revocations", in.revocations(), kMaxRevocationListLength);
    JoinReplyData out{in.ok(), in.error(), in.scheduler_address(), std::nullopt, in.revocations()};
    if (in.has_swarm_model()) {
      out.swarm_model = with_context([] { return "swarm_model"; }, [&] { return decode_digests(in.swarm_model()); });
    }
    return out;
  });
}

void encode(const RevocationReplyData& in, v1::RevocationReply& out) {
  out.set_adopted(in.adopted);
  out.set_error(wire_text(in.error, kMaxErrorLength));
}

RevocationReplyData decode(const v1::RevocationReply& in) {
  return with_context([] { return "revocation reply"; }, [&] {
    check_length("error", in.error(), kMaxErrorLength);
    return RevocationReplyData{in.adopted(), in.error()};
  });
}

}  // namespace px::swarm::wire

// libFuzzer entry point for the swarm's wire codec (src/swarm/wire_codec.h): every message a
// peer can send this node, as raw protobuf bytes behind one byte that picks the kind
// (wire_fuzz_input.h). Decoding may only accept or throw px::Error. What it accepts must then
// survive this node's own sending path, which the sanitizers watch reading every field: encoding
// it (with each hidden-state dtype) never throws, the result decodes again, and that second
// decoding encodes to the same bytes (nothing is lost or changed after the first round).
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "core/error.h"
#include "swarm/wire_codec.h"
#include "wire_fuzz_input.h"

namespace px::swarm {
namespace {

[[noreturn]] void broken(const char* what, const std::string& detail) {
  std::fprintf(stderr, "\nwire_codec_fuzz: %s\n%s\n", what, detail.c_str());
  std::abort();
}

std::string bytes_of(const google::protobuf::Message& message) {
  std::string bytes;
  if (!message.SerializeToString(&bytes)) broken("an encoded message does not serialize", message.ShortDebugString());
  return bytes;
}

// Decodes with `decode` (a px::Error is a rejection, the expected outcome for most inputs); an
// accepted value goes to `resend`, where any px::Error is a bug.
template <typename Decode, typename Resend>
void when_accepted(Decode&& decode, Resend&& resend) {
  std::optional<decltype(decode())> value;
  try {
    value.emplace(decode());
  } catch (const Error&) {
    return;
  }
  try {
    resend(*value);
  } catch (const Error& e) {
    broken("an accepted message fails on its way out again", e.what());
  }
}

void check_frame(const v1::PipelineFrame& frame) {
  when_accepted([&] { return wire::decode(frame); }, [](const PipelineMessage& message) {
    for (const WireDType dtype : {WireDType::F32, WireDType::F16, WireDType::BF16, WireDType::Q8}) {
      v1::PipelineFrame first;
      wire::encode(message, dtype, first);
      std::optional<PipelineMessage> again;
      try {
        again = wire::decode(first);
      } catch (const Error& e) {
        broken("a frame this node accepted is rejected once encoded again", fmt::format("{}\n{}", e.what(), first.ShortDebugString()));
      }
      v1::PipelineFrame second;
      wire::encode(*again, dtype, second);
      // q8 picks each block's scale from its values, so quantizing values already on a grid can
      // pick another one: only that it encodes and decodes again is required of it.
      if (dtype == WireDType::Q8) {
        try {
          wire::decode(second);
        } catch (const Error& e) {
          broken("a q8 frame this node encoded is rejected", e.what());
        }
        continue;
      }
      if (bytes_of(first) != bytes_of(second))
        broken("a frame changes on its second round trip", first.ShortDebugString() + "\n" + second.ShortDebugString());
    }
  });
}

// Control messages: NodeAnnouncement, Assignment, AssignReply, JoinReply.
template <typename Proto>
void check_control(const Proto& message) {
  when_accepted([&] { return wire::decode(message); }, [](const auto& value) {
    Proto first;
    wire::encode(value, first);
    std::optional<std::decay_t<decltype(value)>> again;
    try {
      again = wire::decode(first);
    } catch (const Error& e) {
      broken("a message this node accepted is rejected once encoded again", fmt::format("{}\n{}", e.what(), first.ShortDebugString()));
    }
    Proto second;
    wire::encode(*again, second);
    if (bytes_of(first) != bytes_of(second))
      broken("a message changes on its second round trip", first.ShortDebugString() + "\n" + second.ShortDebugString());
  });
}

// wire_text makes any text sendable: at most max_bytes, valid UTF-8 (checked by protobuf's own
// validator, which would make the receiver drop the whole message), and unchanged by a second pass.
void check_text(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const size_t max_bytes = data[0];
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string sent = wire::wire_text(text, max_bytes);
  if (sent.size() > max_bytes) broken("wire_text is over its limit", fmt::format("{} > {}", sent.size(), max_bytes));
  if (wire::wire_text(sent, max_bytes) != sent) broken("wire_text changes its own output", sent);
  v1::AssignReply reply;
  reply.set_error(sent);
  v1::AssignReply received;
  if (!received.ParseFromString(bytes_of(reply)) || received.error() != sent)
    broken("wire_text's output is not a valid protobuf string", sent);
}

// Protobuf's own parser: what it refuses (bad varints, truncation, invalid UTF-8 in a string)
// never reaches the codec.
bool parse(google::protobuf::Message& out, const uint8_t* data, size_t size) {
  return out.ParseFromArray(data, int(size));
}

void run(fuzz::WireKind kind, const uint8_t* data, size_t size) {
  using fuzz::WireKind;
  v1::PipelineFrame frame;
  switch (kind) {
    case WireKind::Frame:
      if (parse(frame, data, size)) check_frame(frame);
      return;
    case WireKind::Open:
      if (parse(*frame.mutable_open(), data, size)) check_frame(frame);
      return;
    case WireKind::Append:
      if (parse(*frame.mutable_append(), data, size)) check_frame(frame);
      return;
    case WireKind::Chunks:
      if (parse(*frame.mutable_chunks(), data, size)) check_frame(frame);
      return;
    case WireKind::Tokens:
      if (parse(*frame.mutable_tokens(), data, size)) check_frame(frame);
      return;
    case WireKind::Release:
      if (parse(*frame.mutable_release(), data, size)) check_frame(frame);
      return;
    case WireKind::Reports:
      if (parse(*frame.mutable_reports(), data, size)) check_frame(frame);
      return;
    case WireKind::HeartbeatRequest: {
      // PeerServer refuses a heartbeat without the sender's announcement before decoding.
      v1::HeartbeatRequest request;
      if (parse(request, data, size) && request.has_node()) check_control(request.node());
      return;
    }
    case WireKind::HeartbeatReply: {
      // PeerClient decodes whatever came back (an absent node reads as the empty default).
      v1::HeartbeatReply reply;
      if (parse(reply, data, size)) check_control(reply.node());
      return;
    }
    case WireKind::Join: {
      v1::NodeAnnouncement node;
      if (parse(node, data, size)) check_control(node);
      return;
    }
    case WireKind::Assignment: {
      v1::Assignment assignment;
      if (parse(assignment, data, size)) check_control(assignment);
      return;
    }
    case WireKind::AssignReply: {
      v1::AssignReply reply;
      if (parse(reply, data, size)) check_control(reply);
      return;
    }
    case WireKind::JoinReply: {
      v1::JoinReply reply;
      if (parse(reply, data, size)) check_control(reply);
      return;
    }
    case WireKind::Text:
      check_text(data, size);
      return;
    case WireKind::Count: break;
  }
  broken("unhandled kind", fuzz::kWireKindNames[size_t(kind) % size_t(WireKind::Count)]);
}

}  // namespace
}  // namespace px::swarm

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Protobuf logs every string that is not UTF-8; most inputs have one, and the noise would
  // bury the fuzzer's own output.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto kind = px::fuzz::WireKind(data[0] % uint8_t(px::fuzz::WireKind::Count));
  px::swarm::run(kind, data + 1, size - 1);
  return 0;
}

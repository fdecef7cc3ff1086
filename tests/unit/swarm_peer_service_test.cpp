// The peer service over real sockets on 127.0.0.1: a PeerServer with a recording handler,
// PeerLinks streaming frames to it, raw gRPC clients playing a hostile peer, and the unary
// control calls. Every wait is bounded: a broken build fails, it never hangs.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "unit/eventually.h"
#include "unit/recording_handler.h"
#include "proto/parallax.grpc.pb.h"
#include "swarm/peer_client.h"
#include "swarm/peer_link.h"
#include "swarm/peer_server.h"
#include "swarm/wire_codec.h"

namespace px::swarm {
namespace {

using test::RecordingHandler;

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;


using test::eventually;
using test::kPatience;

// Holds every pipeline frame at the door until open() (or kPatience, so nothing hangs).
class GatedHandler : public RecordingHandler {
 public:
  void on_pipeline(PipelineMessage message) override {
    {
      std::unique_lock lock(gate_mutex_);
      gate_.wait_for(lock, kPatience, [&] { return open_; });
    }
    RecordingHandler::on_pipeline(std::move(message));
  }
  void open() {
    {
      std::lock_guard lock(gate_mutex_);
      open_ = true;
    }
    gate_.notify_all();
  }

 private:
  std::mutex gate_mutex_;
  std::condition_variable gate_;
  bool open_ = false;
};

// Collects a link's error reports.
class ErrorLog {
 public:
  std::function<void(const std::string&)> callback() {
    return [this](const std::string& message) {
      std::lock_guard lock(mutex_);
      errors_.push_back(message);
    };
  }
  std::vector<std::string> errors() const {
    std::lock_guard lock(mutex_);
    return errors_;
  }
  // Waits for an error that contains `text`.
  bool wait_for(const std::string& text) const {
    return eventually([&] {
      for (const std::string& e : errors())
        if (e.find(text) != std::string::npos) return true;
      return false;
    });
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> errors_;
};

PeerServerOptions local_server(int port = 0) {
  PeerServerOptions options;
  options.host = "127.0.0.1";
  options.port = port;
  options.shutdown_grace = 500ms;
  return options;
}

PeerLinkOptions quick_link(ErrorLog& log) {
  PeerLinkOptions options;
  options.on_error = log.callback();
  options.min_backoff = 10ms;
  options.max_backoff = 200ms;
  options.connect_timeout = 2s;
  options.flush_timeout = 10s;
  return options;
}

StageRequestSetup setup_for(RequestId id) {
  StageRequestSetup setup;
  setup.id = id;
  setup.head = "127.0.0.1:9";
  return setup;
}

StageChunk chunk_for(RequestId id, size_t rows = 2, size_t width = 8) {
  StageChunk chunk;
  chunk.request = id;
  chunk.begin = 0;
  for (size_t i = 0; i < rows; ++i) chunk.tokens.push_back(int32_t(i + 1));
  for (size_t i = 0; i < rows * width; ++i) chunk.hidden.push_back(float(id) + float(i) / 16.0f);
  chunk.setup = setup_for(id);
  return chunk;
}

// Frame i of a mixed sequence: every kind, each naming request i.
PipelineMessage mixed_message(RequestId i) {
  switch (i % 6) {
    case 0: return OpenMessage{setup_for(i), {1, 2, 3}};
    case 1: return AppendMessage{i, 3, 7};
    case 2: return ChunksMessage{{chunk_for(i)}};
    case 3: return TokensMessage{{SampledToken{i, 4, 9, {}, "", {}}}};
    case 4: return ReleaseMessage{i};
    default: {
      StageReport replayed{i, "00000000000000a1", 4, 2, 2, {}, {}, 3, {}};
      for (int v = 0; v < 6; ++v) replayed.hidden.push_back(float(i) + float(v) / 8.0f);
      return ReportsMessage{{StageReport{i, "00000000000000a1", 4, 0, 2, {'P', 'X'}, {}, 0, {}}, replayed}};
    }
  }
}

RequestId request_of(const PipelineMessage& message) {
  return std::visit(
      [](const auto& m) -> RequestId {
        using Kind = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<Kind, OpenMessage>) return m.setup.id;
        else if constexpr (std::is_same_v<Kind, ChunksMessage>) return m.chunks.at(0).request;
        else if constexpr (std::is_same_v<Kind, TokensMessage>) return m.tokens.at(0).request;
        else if constexpr (std::is_same_v<Kind, ReportsMessage>) return m.reports.at(0).request;
        else return m.request;
      },
      message);
}

// A raw client, as a hostile or foreign peer would be: frames built with the proto API.
struct RawPipeline {
  explicit RawPipeline(int port)
      : stub(v1::Peer::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()))) {
    context.set_deadline(std::chrono::system_clock::now() + kPatience);  // no read can hang the test
    stream = stub->Pipeline(&context);
  }
  std::unique_ptr<v1::Peer::Stub> stub;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<v1::PipelineFrame, v1::PipelineAck>> stream;
};

v1::PipelineFrame valid_release(RequestId id) {
  v1::PipelineFrame frame;
  wire::encode(ReleaseMessage{id}, WireDType::F32, frame);
  return frame;
}

// ---- Pipeline streams -----------------------------------------------------------------------

TEST(PeerService, LinkDeliversAThousandMixedFramesInOrder) {
  RecordingHandler handler;
  PeerServer server(handler, local_server());
  ErrorLog log;
  PeerLinkOptions options = quick_link(log);
  options.max_queued_frames = 64;  // small: the sender meets back-pressure and must retry
  PeerLink link("127.0.0.1:" + std::to_string(server.port()), options);

  constexpr RequestId kFrames = 1000;
  for (RequestId i = 0; i < kFrames; ++i) {
    PipelineMessage message = mixed_message(i);
    ASSERT_TRUE(eventually([&] { return link.send(std::move(message)); })) << "queue never drained at frame " << i;
  }
  ASSERT_TRUE(handler.wait_for(kFrames));
  const auto received = handler.messages();
  ASSERT_EQ(received.size(), kFrames);
  for (RequestId i = 0; i < kFrames; ++i) {
    ASSERT_EQ(received[i].index(), i % 6) << i;
    ASSERT_EQ(request_of(received[i]), i);
  }
  const auto& chunk = std::get<ChunksMessage>(received[2]).chunks.at(0);
  EXPECT_EQ(chunk.hidden, chunk_for(2).hidden);  // f32 is exact
  EXPECT_EQ(chunk.setup->head, "127.0.0.1:9");
  const PipelineMessage fifth = mixed_message(5);
  const auto& sent = std::get<ReportsMessage>(fifth).reports;
  const auto& reports = std::get<ReportsMessage>(received[5]).reports;
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].commitment, sent[0].commitment);
  EXPECT_EQ(reports[0].node_id, sent[0].node_id);
  EXPECT_EQ(reports[1].hidden, sent[1].hidden);  // replay rows always travel as f32
  EXPECT_EQ(reports[1].width, 3);
  EXPECT_TRUE(log.errors().empty()) << log.errors().front();
}

TEST(PeerService, LinkPacksHiddenStatesAsItsDType) {
  RecordingHandler handler;
  PeerServer server(handler, local_server());
  ErrorLog log;
  PeerLinkOptions options = quick_link(log);
  options.dtype = WireDType::BF16;
  PeerLink link("127.0.0.1:" + std::to_string(server.port()), options);
  StageChunk chunk = chunk_for(3, 4, 32);
  for (size_t i = 0; i < chunk.hidden.size(); ++i) chunk.hidden[i] = 1.0f + float(i) * 0.0123f;  // few fit in bf16
  const std::vector<float> sent = chunk.hidden;
  ASSERT_TRUE(link.send(ChunksMessage{{std::move(chunk)}}));
  ASSERT_TRUE(handler.wait_for(1));
  const auto got = std::get<ChunksMessage>(handler.messages()[0]).chunks.at(0).hidden;
  ASSERT_EQ(got.size(), sent.size());
  bool any_rounded = false;
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_NEAR(got[i], sent[i], std::fabs(sent[i]) / 256) << i;
    any_rounded |= got[i] != sent[i];
  }
  EXPECT_TRUE(any_rounded);  // it really travelled as bf16
}

TEST(PeerService, HostileFrameIsRejectedAndTheStreamStaysUp) {
  RecordingHandler handler;
  PeerServer server(handler, local_server());
  RawPipeline raw(server.port());

  v1::PipelineFrame hostile;
  wire::encode(ChunksMessage{{chunk_for(5)}}, WireDType::F32, hostile);
  hostile.mutable_chunks()->mutable_chunks(0)->mutable_hidden()->resize(3);  // not 2 x 8 floats
  ASSERT_TRUE(raw.stream->Write(hostile));
  v1::PipelineAck ack;
  ASSERT_TRUE(raw.stream->Read(&ack));
  EXPECT_EQ(ack.frames_received(), 1u);
  EXPECT_NE(ack.error().find("invalid frame: chunks: chunks[0] (request 5): hidden has 3 bytes"), std::string::npos) << ack.error();

  ASSERT_TRUE(raw.stream->Write(v1::PipelineFrame()));  // no message at all
  ASSERT_TRUE(raw.stream->Read(&ack));
  EXPECT_EQ(ack.frames_received(), 2u);
  EXPECT_NE(ack.error().find("carries no message"), std::string::npos) << ack.error();

  ASSERT_TRUE(raw.stream->Write(valid_release(7)));
  ASSERT_TRUE(handler.wait_for(1));
  EXPECT_EQ(std::get<ReleaseMessage>(handler.messages()[0]).request, 7u);

  raw.stream->WritesDone();
  EXPECT_FALSE(raw.stream->Read(&ack));  // no ack for the valid frame
  EXPECT_TRUE(raw.stream->Finish().ok());
  EXPECT_EQ(handler.count(), 1u);
}

TEST(PeerService, LinkReportsRejectedFramesAndKeepsStreaming) {
  RecordingHandler handler;
  PeerServer server(handler, local_server());
  ErrorLog log;
  PeerLink link("127.0.0.1:" + std::to_string(server.port()), quick_link(log));

  OpenMessage bad{setup_for(1), {1}};
  bad.setup.sampling.top_p = 0;  // the sender does not validate; the receiver does
  ASSERT_TRUE(link.send(std::move(bad)));
  ASSERT_TRUE(link.send(ReleaseMessage{RecordingHandler::kExplodingRequest}));  // the handler throws
  ASSERT_TRUE(link.send(ReleaseMessage{2}));
  ASSERT_TRUE(handler.wait_for(1));
  ASSERT_TRUE(log.wait_for("dropped frame 1 of the pipeline stream: invalid frame: open: setup: sampling parameter top_p = 0"));
  ASSERT_TRUE(log.wait_for("dropped frame 2 of the pipeline stream: the receiver failed on the frame: release of request 666 exploded"));
  EXPECT_EQ(std::get<ReleaseMessage>(handler.messages().at(0)).request, 2u);
}

TEST(PeerService, OversizedFrameIsDroppedBySenderAlone) {
  RecordingHandler handler;
  PeerServer server(handler, local_server());
  ErrorLog log;
  PeerLinkOptions options = quick_link(log);
  options.max_message_bytes = 4096;
  PeerLink link("127.0.0.1:" + std::to_string(server.port()), options);
  ASSERT_TRUE(link.send(ChunksMessage{{chunk_for(1, 16, 256)}}));  // 16 KiB of hidden states
  ASSERT_TRUE(link.send(ReleaseMessage{2}));
  ASSERT_TRUE(handler.wait_for(1));
  EXPECT_TRUE(log.wait_for("exceed the 4096-byte message limit"));
  EXPECT_EQ(std::get<ReleaseMessage>(handler.messages().at(0)).request, 2u);
}

TEST(PeerService, CloseFlushesEverythingQueued) {
  RecordingHandler handler;
  PeerServer server(handler, local_server());
  ErrorLog log;
  PeerLink link("127.0.0.1:" + std::to_string(server.port()), quick_link(log));
  for (RequestId i = 0; i < 200; ++i) ASSERT_TRUE(link.send(mixed_message(i)));
  link.close();
  // The peer finishes the stream only after its handler took the last frame.
  EXPECT_EQ(handler.count(), 200u);
  EXPECT_FALSE(link.send(ReleaseMessage{1}));
  link.close();  // idempotent
  EXPECT_TRUE(log.errors().empty()) << log.errors().front();
}

TEST(PeerService, CloseGivesUpOnAStuckPeerAfterTheFlushTimeout) {
  GatedHandler handler;
  PeerServer server(handler, local_server());
  ErrorLog log;
  PeerLinkOptions options = quick_link(log);
  options.flush_timeout = 300ms;
  PeerLink link("127.0.0.1:" + std::to_string(server.port()), options);
  // 64 frames of 64 KiB: far more than gRPC's flow-control window, so the writer blocks.
  for (RequestId i = 0; i < 64; ++i) ASSERT_TRUE(link.send(ChunksMessage{{chunk_for(i, 16, 1024)}}));
  const auto start = Clock::now();
  link.close();
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_TRUE(log.wait_for("closed at its 300 ms flush timeout"));
  handler.open();
}

TEST(PeerService, BrokenStreamIsReportedAndAFullQueueRefusesWithoutBlocking) {
  RecordingHandler handler;
  auto server = std::make_unique<PeerServer>(handler, local_server());
  ErrorLog log;
  PeerLinkOptions options = quick_link(log);
  options.max_queued_frames = 4;
  options.flush_timeout = 100ms;
  PeerLink link("127.0.0.1:" + std::to_string(server->port()), options);
  ASSERT_TRUE(link.send(ReleaseMessage{1}));
  ASSERT_TRUE(handler.wait_for(1));

  const auto shutdown_start = Clock::now();
  server->shutdown();
  EXPECT_LT(Clock::now() - shutdown_start, 5s);  // the open stream is cancelled, not waited for
  server->shutdown();                           // idempotent
  ASSERT_TRUE(log.wait_for("pipeline stream to 127.0.0.1:"));

  const auto start = Clock::now();
  size_t accepted = 0;
  while (accepted < 100 && link.send(ReleaseMessage{2})) ++accepted;
  EXPECT_LT(Clock::now() - start, 1s);
  EXPECT_LE(accepted, options.max_queued_frames);
  EXPECT_TRUE(log.wait_for("cannot connect to peer 127.0.0.1:"));

  const auto close_start = Clock::now();
  link.close();  // an unreachable peer does not hold close() for long
  EXPECT_LT(Clock::now() - close_start, 5s);
}

TEST(PeerService, LinkReconnectsAfterThePeerRestartsOnTheSamePort) {
  RecordingHandler first;
  auto server = std::make_unique<PeerServer>(first, local_server());
  const int port = server->port();
  ErrorLog log;
  PeerLink link("127.0.0.1:" + std::to_string(port), quick_link(log));
  ASSERT_TRUE(link.send(ReleaseMessage{1}));
  ASSERT_TRUE(first.wait_for(1));

  server.reset();
  ASSERT_TRUE(log.wait_for("pipeline stream to"));
  ASSERT_TRUE(link.send(ReleaseMessage{2}));  // queued while the peer is away

  RecordingHandler second;
  PeerServer restarted(second, local_server(port));
  ASSERT_TRUE(link.send(ReleaseMessage{3}));
  ASSERT_TRUE(second.wait_for(2));
  const auto received = second.messages();
  EXPECT_EQ(std::get<ReleaseMessage>(received[0]).request, 2u);
  EXPECT_EQ(std::get<ReleaseMessage>(received[1]).request, 3u);
}

TEST(PeerService, PeerLinksKeepsOneLinkPerAddress) {
  RecordingHandler handler;
  PeerServer server(handler, local_server());
  const std::string address = "127.0.0.1:" + std::to_string(server.port());
  std::mutex mutex;
  std::vector<std::string> failed_addresses;
  PeerLinks links(PeerLinkOptions{}, [&](const std::string& peer, const std::string&) {
    std::lock_guard lock(mutex);
    failed_addresses.push_back(peer);
  });
  EXPECT_EQ(links.get(address), links.get(address));
  EXPECT_EQ(links.size(), 1u);
  OpenMessage bad{setup_for(1), {1}};
  bad.setup.top_logprobs = 99;
  ASSERT_TRUE(links.send(address, std::move(bad)));
  ASSERT_TRUE(links.send(address, ReleaseMessage{4}));
  ASSERT_TRUE(handler.wait_for(1));
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mutex);
    return !failed_addresses.empty();
  }));
  {
    std::lock_guard lock(mutex);
    EXPECT_EQ(failed_addresses.front(), address);
  }
  links.remove(address);
  EXPECT_EQ(links.size(), 0u);
}

// ---- Server ---------------------------------------------------------------------------------

TEST(PeerService, ServerRefusesAPortInUse) {
  RecordingHandler handler;
  PeerServer server(handler, local_server());
  EXPECT_THROW({ PeerServer taken(handler, local_server(server.port())); }, Error);
  EXPECT_EQ(server.address(), "127.0.0.1:" + std::to_string(server.port()));
}

// ---- Unary control calls --------------------------------------------------------------------

TEST(PeerService, ControlCallsRoundTrip) {
  RecordingHandler handler;
  PeerServer server(handler, local_server());
  PeerClient client("127.0.0.1:" + std::to_string(server.port()));

  NodeAnnouncement self;
  self.node_id = "00000000000000bb";
  const auto before = std::chrono::system_clock::now();
  const HeartbeatResult beat = client.heartbeat(self, 10s);
  EXPECT_EQ(beat.node.node_id, "00000000000000aa");
  EXPECT_EQ(beat.node.state, "ready");
  EXPECT_GT(beat.rtt_seconds, 0.0);
  EXPECT_LT(beat.rtt_seconds, 10.0);
  const auto peer_clock = std::chrono::system_clock::time_point(std::chrono::microseconds(beat.received_unix_micros));
  EXPECT_LT(std::chrono::abs(peer_clock - before), 60s);
  EXPECT_EQ(handler.heartbeats(), std::vector<std::string>{"00000000000000bb"});

  const AssignReply assigned = client.assign({"model", 4, 8, 1}, 10s);
  EXPECT_TRUE(assigned.ok);
  EXPECT_EQ(assigned.error, "holding 4..8");

  client.abort(123, 10s);
  EXPECT_EQ(handler.aborted(), std::vector<RequestId>{123});

  const JoinReplyData joined = client.join(self, 10s);
  EXPECT_TRUE(joined.ok);
  EXPECT_EQ(joined.scheduler_address, "sched-of-00000000000000bb");

  EXPECT_EQ(client.cluster(10s), R"({"nodes":["a","b"]})");
}

TEST(PeerService, ControlCallErrorsNameThePeer) {
  RecordingHandler handler;
  PeerServer server(handler, local_server());
  const std::string address = "127.0.0.1:" + std::to_string(server.port());
  PeerClient client(address);
  try {
    client.assign({"unloadable", 0, 4, 1}, 10s);
    FAIL() << "a throwing handler must fail the call";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "assign to peer " + address + " failed: INTERNAL: cannot load model unloadable");
  }
  try {
    client.assign({"model", 8, 4, 1}, 10s);
    FAIL() << "an invalid assignment must be rejected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("INVALID_ARGUMENT: assignment: layer_end = 4"), std::string::npos) << e.what();
  }
  NodeAnnouncement nonsense;
  nonsense.layer_end = 3;  // beyond n_layers = 0; the receiver refuses it
  EXPECT_THROW(client.heartbeat(nonsense, 10s), Error);
  EXPECT_TRUE(handler.heartbeats().empty());
}

TEST(PeerService, HeartbeatToADeadAddressFailsWithinItsDeadline) {
  // A port that was just ours: nothing listens there any more (connection refused).
  int port = 0;
  {
    RecordingHandler handler;
    PeerServer gone(handler, local_server());
    port = gone.port();
  }
  const std::string refused = "127.0.0.1:" + std::to_string(port);
  // An address nobody answers (TEST-NET-1, RFC 5737): the deadline must end the wait.
  const std::string silent = "192.0.2.1:7000";
  for (const std::string& address : {refused, silent}) {
    PeerClient client(address);
    const auto start = Clock::now();
    try {
      client.heartbeat(NodeAnnouncement{}, 300ms);
      FAIL() << "heartbeat to " << address << " succeeded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("heartbeat to peer " + address + " failed: "), std::string::npos) << e.what();
    }
    EXPECT_LT(Clock::now() - start, 3s) << address;
  }
}

}  // namespace
}  // namespace px::swarm

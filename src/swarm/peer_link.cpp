#include "swarm/peer_link.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <thread>
#include <type_traits>

#include "proto/parallax.grpc.pb.h"
#include "swarm/peer_address.h"
#include "swarm/peer_channel.h"
#include "swarm/wire_codec.h"

namespace px::swarm {
namespace {

using Clock = std::chrono::steady_clock;
using FrameStream = grpc::ClientReaderWriter<v1::PipelineFrame, v1::PipelineAck>;

// Roughly what a queued message holds in memory, for the queue's byte bound.
size_t estimated_bytes(const PipelineMessage& message) {
  constexpr size_t kOverhead = 64;
  return std::visit(
      [](const auto& m) -> size_t {
        using Kind = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<Kind, OpenMessage>) {
          return kOverhead + m.prompt.size() * sizeof(int32_t);
        } else if constexpr (std::is_same_v<Kind, ChunksMessage>) {
          size_t bytes = kOverhead;
          for (const StageChunk& c : m.chunks)
            bytes += kOverhead + (c.tokens.size() + c.history.size()) * sizeof(int32_t) + c.hidden.size() * sizeof(float);
          return bytes;
        } else if constexpr (std::is_same_v<Kind, TokensMessage>) {
          size_t bytes = kOverhead;
          for (const SampledToken& t : m.tokens) bytes += kOverhead + t.info.top.size() * sizeof(TokenLogprob) + t.error.size();
          return bytes;
        } else {
          return kOverhead;
        }
      },
      message);
}

}  // namespace

struct PeerLink::Impl {
  struct Queued {
    PipelineMessage message;
    size_t bytes;
  };
  // One gRPC stream and the thread reading its acks.
  struct Live {
    grpc::ClientContext context;
    std::unique_ptr<FrameStream> io;
    std::thread reader;
  };

  Impl(std::string address_in, PeerLinkOptions options_in)
      : address(std::move(address_in)),
        options(std::move(options_in)),
        relay_to(relay_target(address)),
        channel(open_peer_channel(dial_address(address), {options.max_message_bytes, options.max_backoff, options.tls})),
        stub(v1::Peer::NewStub(channel)),
        backoff(options.min_backoff) {}

  void run();
  bool wait_connected();
  void open_stream();
  void write(const PipelineMessage& message);
  void end_stream(bool closing_stream, const char* lost = nullptr);
  void read_acks(FrameStream* io);
  void failed(const std::string& message);
  void report(const std::string& message) const;
  bool abandoned() const;

  const std::string address;
  const PeerLinkOptions options;
  const std::string relay_to;  // a relayed address: the node the one dialled passes the frames to
  const std::shared_ptr<grpc::Channel> channel;
  const std::unique_ptr<v1::Peer::Stub> stub;

  // Shared between send(), close(), the writer and the reader.
  mutable std::mutex mutex;
  std::condition_variable wake;          // to the writer: work, close, or the stream ended
  std::condition_variable done;          // to close(): the writer has finished
  std::deque<Queued> queue;
  size_t queued_bytes = 0;
  bool closing = false;                  // close(): send what is queued, then stop
  bool abandon = false;                  // close() ran out of time: stop now
  bool reader_ended = false;             // the live stream's reader saw its end
  bool writer_done = false;
  grpc::ClientContext* live_context = nullptr;  // for close() to cancel a blocked write

  // The writer thread's own state.
  std::unique_ptr<Live> live;
  v1::PipelineFrame frame;               // reused between writes
  Clock::time_point retry_at{};
  std::chrono::milliseconds backoff;
  bool attempted_while_closing = false;

  mutable std::mutex report_mutex;        // on_error is never called concurrently
  std::mutex close_mutex;
  std::thread writer;
};

void PeerLink::Impl::run() {
  for (;;) {
    std::unique_lock lock(mutex);
    wake.wait(lock, [&] { return abandon || reader_ended || closing || !queue.empty(); });
    if (abandon) break;
    if (reader_ended) {  // the stream ended while nothing was being written
      lock.unlock();
      end_stream(false);
      continue;
    }
    if (queue.empty()) break;  // closing, and everything is sent
    if (!live) {
      if (closing) {
        // One immediate attempt to deliver what is queued: an unreachable peer does not hold
        // close() up for the rest of the backoff schedule.
        if (attempted_while_closing) break;
        attempted_while_closing = true;
      } else if (Clock::now() < retry_at) {
        wake.wait_until(lock, retry_at, [&] { return abandon || closing; });
        continue;
      }
      lock.unlock();
      open_stream();
      continue;
    }
    Queued next = std::move(queue.front());
    queue.pop_front();
    queued_bytes -= next.bytes;
    lock.unlock();
    write(next.message);
  }

  if (live) end_stream(true);
  size_t unsent = 0;
  bool timed_out = false;
  {
    std::lock_guard lock(mutex);
    unsent = queue.size();
    queue.clear();
    queued_bytes = 0;
    timed_out = abandon;
    writer_done = true;
  }
  done.notify_all();
  if (timed_out) {
    report(fmt::format("pipeline link to {} closed at its {} ms flush timeout: {} queued frames dropped, frames in "
                       "flight may be lost", address, options.flush_timeout.count(), unsent));
  } else if (unsent > 0) {
    report(fmt::format("pipeline link to {} closed with {} frames unsent: the peer is unreachable", address, unsent));
  }
}

bool PeerLink::Impl::wait_connected() {
  return wait_channel_ready(*channel, options.connect_timeout, [&] { return abandoned(); });
}

void PeerLink::Impl::open_stream() {
  if (!wait_connected()) {
    if (!abandoned()) failed(fmt::format("cannot connect to peer {}", address));
    return;
  }
  auto fresh = std::make_unique<Live>();
  if (!relay_to.empty()) fresh->context.AddMetadata(kRelayToMetadata, relay_to);
  fresh->io = stub->Pipeline(&fresh->context);
  {
    std::lock_guard lock(mutex);
    live_context = &fresh->context;
    if (abandon) fresh->context.TryCancel();
  }
  fresh->reader = std::thread(&Impl::read_acks, this, fresh->io.get());
  live = std::move(fresh);
}

void PeerLink::Impl::write(const PipelineMessage& message) {
  try {
    wire::encode(message, options.dtype, frame);
  } catch (const std::exception& e) {
    report(fmt::format("frame to {} not sent: {}", address, e.what()));
    return;
  }
  const size_t size = frame.ByteSizeLong();
  if (size > size_t(options.max_message_bytes)) {
    // Writing it would make gRPC fail the whole stream; drop just this frame.
    report(fmt::format("frame to {} not sent: {} bytes exceed the {}-byte message limit", address, size,
                       options.max_message_bytes));
    return;
  }
  if (live->io->Write(frame)) {
    backoff = options.min_backoff;
    return;
  }
  end_stream(false, "; the frame being written was lost");
}

// Ends the live stream: half-closes it when we are closing (the peer then finishes after the
// last frame), waits for the reader and reports how it ended unless that was expected.
void PeerLink::Impl::end_stream(bool closing_stream, const char* lost) {
  if (closing_stream) live->io->WritesDone();
  live->reader.join();
  const grpc::Status status = live->io->Finish();
  bool cancelled_by_close = false;
  {
    std::lock_guard lock(mutex);
    live_context = nullptr;
    reader_ended = false;
    cancelled_by_close = abandon;
  }
  live.reset();
  if (cancelled_by_close || (closing_stream && status.ok())) return;
  failed(fmt::format("pipeline stream to {} broke: {}{}", address,
                     status.ok() ? "the peer ended it" : describe_status(status), lost ? lost : ""));
}

void PeerLink::Impl::read_acks(FrameStream* io) {
  v1::PipelineAck ack;
  while (io->Read(&ack)) {
    if (ack.error().empty()) continue;
    report(fmt::format("peer {} dropped frame {} of the pipeline stream: {}", address, ack.frames_received(),
                       wire::wire_text(ack.error())));
  }
  {
    std::lock_guard lock(mutex);
    reader_ended = true;
  }
  wake.notify_all();
}

void PeerLink::Impl::failed(const std::string& message) {
  retry_at = Clock::now() + backoff;
  backoff = std::min(backoff * 2, options.max_backoff);
  report(message);
}

void PeerLink::Impl::report(const std::string& message) const {
  std::lock_guard lock(report_mutex);
  if (!options.on_error) {
    spdlog::warn("{}", message);
    return;
  }
  try {
    options.on_error(message);
  } catch (const std::exception& e) {
    spdlog::warn("pipeline link to {}: the error callback threw ({}) on: {}", address, e.what(), message);
  }
}

bool PeerLink::Impl::abandoned() const {
  std::lock_guard lock(mutex);
  return abandon;
}

PeerLink::PeerLink(std::string address, PeerLinkOptions options)
    : impl_(std::make_unique<Impl>(std::move(address), std::move(options))) {
  impl_->writer = std::thread(&Impl::run, impl_.get());
}

PeerLink::~PeerLink() { close(); }

const std::string& PeerLink::address() const { return impl_->address; }

bool PeerLink::send(PipelineMessage&& message) {
  Impl& s = *impl_;
  const size_t bytes = estimated_bytes(message);
  {
    std::lock_guard lock(s.mutex);
    if (s.closing || s.queue.size() >= s.options.max_queued_frames) return false;
    // One message larger than the byte bound still goes alone, or it could never be sent.
    if (!s.queue.empty() && s.queued_bytes + bytes > s.options.max_queued_bytes) return false;
    s.queue.push_back({std::move(message), bytes});
    s.queued_bytes += bytes;
  }
  s.wake.notify_one();
  return true;
}

size_t PeerLink::queued() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->queue.size();
}

void PeerLink::close() {
  Impl& s = *impl_;
  std::lock_guard close_lock(s.close_mutex);
  if (!s.writer.joinable()) return;
  {
    std::unique_lock lock(s.mutex);
    s.closing = true;
    s.wake.notify_all();
    if (!s.done.wait_for(lock, s.options.flush_timeout, [&] { return s.writer_done; })) {
      s.abandon = true;
      if (s.live_context) s.live_context->TryCancel();  // unblocks a write or read stuck on the peer
      s.wake.notify_all();
    }
  }
  s.writer.join();
}

// ---- PeerLinks ------------------------------------------------------------------------------

PeerLinks::PeerLinks(PeerLinkOptions options, ErrorFn on_error)
    : options_(std::move(options)), on_error_(std::move(on_error)) {}

PeerLinks::~PeerLinks() { close_all(); }

std::shared_ptr<PeerLink> PeerLinks::get(const std::string& address) {
  std::lock_guard lock(mutex_);
  if (auto found = links_.find(address); found != links_.end()) return found->second;
  PeerLinkOptions options = options_;
  if (on_error_) options.on_error = [on_error = on_error_, address](const std::string& message) { on_error(address, message); };
  auto link = std::make_shared<PeerLink>(address, std::move(options));
  links_.emplace(address, link);
  return link;
}

bool PeerLinks::send(const std::string& address, PipelineMessage&& message) {
  return get(address)->send(std::move(message));
}

void PeerLinks::remove(const std::string& address) {
  std::shared_ptr<PeerLink> link;
  {
    std::lock_guard lock(mutex_);
    auto found = links_.find(address);
    if (found == links_.end()) return;
    link = std::move(found->second);
    links_.erase(found);
  }
  link->close();  // outside the lock: flushing takes time
}

void PeerLinks::close_all() {
  std::map<std::string, std::shared_ptr<PeerLink>> links;
  {
    std::lock_guard lock(mutex_);
    links.swap(links_);
  }
  for (auto& [address, link] : links) link->close();
}

size_t PeerLinks::size() const {
  std::lock_guard lock(mutex_);
  return links_.size();
}

}  // namespace px::swarm

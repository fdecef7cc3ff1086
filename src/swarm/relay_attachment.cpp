#include "swarm/relay_attachment.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "proto/parallax.grpc.pb.h"
#include "swarm/peer_calls.h"
#include "swarm/peer_channel.h"
#include "swarm/peer_server.h"

namespace px::swarm {

using Clock = std::chrono::steady_clock;

struct RelayAttachment::Impl {
  Impl(std::string relay_in, std::string node_id_in, PeerHandler& handler_in, RelayAttachmentOptions options_in)
      : relay(std::move(relay_in)),
        node_id(std::move(node_id_in)),
        handler(handler_in),
        options(std::move(options_in)),
        channel(open_peer_channel(relay, {options.max_message_bytes, options.max_backoff, options.tls})),
        stub(v1::Peer::NewStub(channel)) {}

  void run();
  bool wait_connected();
  // One stream, from the hello to its end.
  void serve_stream();

  const std::string relay;
  const std::string node_id;
  PeerHandler& handler;
  const RelayAttachmentOptions options;
  const std::shared_ptr<grpc::Channel> channel;
  const std::unique_ptr<v1::Peer::Stub> stub;

  std::mutex mutex;
  std::condition_variable wake;
  bool closing = false;
  grpc::ClientContext* live = nullptr;  // for close() to cancel the stream
  std::atomic<bool> up{false};
  std::thread thread;
};

bool RelayAttachment::Impl::wait_connected() {
  return wait_channel_ready(*channel, options.connect_timeout, [&] {
    std::lock_guard lock(mutex);
    return closing;
  });
}

void RelayAttachment::Impl::serve_stream() {
  grpc::ClientContext context;
  {
    std::lock_guard lock(mutex);
    if (closing) return;
    live = &context;
  }
  std::unique_ptr<grpc::ClientReaderWriter<v1::AttachUp, v1::AttachDown>> io = stub->Attach(&context);
  v1::AttachUp hello;
  hello.mutable_hello()->set_node_id(node_id);
  if (io->Write(hello)) {
    up = true;
    spdlog::info("attached to relay {}: reached at {}@{}", relay, node_id, relay);
    v1::AttachDown down;
    const std::string caller = "relay " + relay;
    while (io->Read(&down)) {
      if (down.has_frame()) {
        if (const std::string error = deliver_frame(handler, down.frame()); !error.empty()) {
          spdlog::warn("dropped a pipeline frame relayed by {}: {}", relay, error);
        }
      } else if (down.has_call()) {
        v1::AttachUp answer;
        v1::RelayedReply& reply = *answer.mutable_reply();
        reply.set_call(down.call().call());
        std::string body;
        const grpc::Status status = serve_call(handler, down.call().method(), down.call().request(), body, caller);
        reply.set_code(int(status.error_code()));
        reply.set_message(status.error_message());
        if (status.ok()) reply.set_reply(std::move(body));
        if (!io->Write(answer)) break;
      }
    }
  }
  const bool was_up = up.exchange(false);
  context.TryCancel();
  const grpc::Status status = io->Finish();
  bool closed = false;
  {
    std::lock_guard lock(mutex);
    live = nullptr;
    closed = closing;
  }
  if (!closed && was_up) spdlog::warn("attach stream to relay {} ended: {}", relay, describe_status(status));
}

void RelayAttachment::Impl::run() {
  std::chrono::milliseconds backoff = options.min_backoff;
  for (;;) {
    {
      std::lock_guard lock(mutex);
      if (closing) return;
    }
    const auto started = Clock::now();
    if (wait_connected()) serve_stream();
    // A stream that lasted resets the backoff; one that failed at once doubles it.
    backoff = Clock::now() - started > std::chrono::seconds(5) ? options.min_backoff
                                                               : std::min(backoff * 2, options.max_backoff);
    std::unique_lock lock(mutex);
    if (wake.wait_for(lock, backoff, [&] { return closing; })) return;
  }
}

RelayAttachment::RelayAttachment(std::string relay_address, std::string node_id, PeerHandler& handler,
                                 RelayAttachmentOptions options)
    : impl_(std::make_unique<Impl>(std::move(relay_address), std::move(node_id), handler, std::move(options))) {
  impl_->thread = std::thread(&Impl::run, impl_.get());
}

RelayAttachment::~RelayAttachment() { close(); }

const std::string& RelayAttachment::relay() const { return impl_->relay; }

bool RelayAttachment::attached() const { return impl_->up; }

void RelayAttachment::close() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->closing = true;
    if (impl_->live) impl_->live->TryCancel();
  }
  impl_->wake.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace px::swarm

#pragma once
// The sending side of a pipeline: one ordered stream of frames towards one peer.
//
// send() only queues (never blocks on the network): a writer thread owns the gRPC stream,
// encodes each message (hidden states packed as the link's WireDType) and writes the frames in
// send order; a reader thread collects the peer's rejection acks. The queue is bounded in
// frames and bytes; when it is full send() returns false, so a slow or dead peer turns into
// back-pressure instead of unbounded memory.
//
// Failures: a stream that breaks (peer gone, connection lost) or a connection that cannot be
// made is reported through on_error; the link then opens a new stream lazily, when there is
// something to send, after an exponential backoff. Frames still queued are sent on the new
// stream in order; only the frame being written when the stream broke is lost (it may or may
// not have arrived, and resending could duplicate it). A frame the peer rejected is reported
// through on_error as well; the stream stays up.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "swarm/peer_limits.h"
#include "swarm/pipeline_messages.h"

namespace px::swarm {

class PeerTls;

struct PeerLinkOptions {
  WireDType dtype = WireDType::F32;               // how hidden states travel
  size_t max_queued_frames = 1024;
  size_t max_queued_bytes = size_t(256) << 20;    // estimated from token and hidden counts
  int max_message_bytes = kDefaultMaxMessageBytes;
  std::chrono::milliseconds connect_timeout{5000};   // one connection attempt
  std::chrono::milliseconds min_backoff{50};         // between attempts after a failure,
  std::chrono::milliseconds max_backoff{2000};       // doubling up to this
  std::chrono::milliseconds flush_timeout{2000};     // close(): time for the queued frames
  std::shared_ptr<const PeerTls> tls;                // private swarms: mutual TLS; null: plaintext
  // Called from the link's own threads (one call at a time) with a message that names the
  // peer. It must return quickly and must not close or destroy the link. Unset: errors go to
  // the log.
  std::function<void(const std::string& message)> on_error;
};

class PeerLink {
 public:
  // Starts the writer thread; connects on the first send.
  PeerLink(std::string address, PeerLinkOptions options = {});
  ~PeerLink();  // close()
  PeerLink(const PeerLink&) = delete;
  PeerLink& operator=(const PeerLink&) = delete;

  const std::string& address() const;

  // Queues `message` and returns true; returns false, leaving `message` untouched, when the
  // queue is full or the link is closed. Thread-safe; never waits for the network.
  bool send(PipelineMessage&& message);

  // Frames queued and not yet handed to gRPC.
  size_t queued() const;

  // Sends what is queued (for at most flush_timeout, then drops the rest), ends the stream
  // and joins the threads. Idempotent; send() returns false afterwards.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One link per neighbour, created on first use: a node keeps a single ordered stream to each
// peer it forwards to, whichever thread sends. Thread-safe.
class PeerLinks {
 public:
  using ErrorFn = std::function<void(const std::string& address, const std::string& message)>;

  // Every link gets `options`; their errors go to `on_error` (replacing options.on_error)
  // with the peer's address, from the links' threads (see PeerLinkOptions::on_error).
  explicit PeerLinks(PeerLinkOptions options = {}, ErrorFn on_error = {});
  ~PeerLinks();  // close_all()
  PeerLinks(const PeerLinks&) = delete;
  PeerLinks& operator=(const PeerLinks&) = delete;

  std::shared_ptr<PeerLink> get(const std::string& address);
  // get(address)->send(std::move(message)).
  bool send(const std::string& address, PipelineMessage&& message);
  // Closes and forgets the link to `address` (a peer that left); a later get() makes a new one.
  void remove(const std::string& address);
  // Closes and forgets every link.
  void close_all();
  size_t size() const;

 private:
  PeerLinkOptions options_;
  ErrorFn on_error_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<PeerLink>> links_;
};

}  // namespace px::swarm

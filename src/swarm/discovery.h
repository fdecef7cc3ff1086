#pragma once
// Peer discovery over OpenDHT (Kademlia). Every node of a swarm publishes its NodeAnnouncement
// (JSON) as a DHT value under the hash of the swarm key, re-publishes it every announce_period
// and fetches the key's values just as often; what it hears, validated, becomes live_nodes().
//
// Each node has one value id: a re-publication replaces its previous value on the storing nodes
// (which accept the replacement only from the same node id with a higher sequence number). A
// node is live while announcements with new sequence numbers keep arriving, so one that
// vanishes drops out of live_nodes() within expire_after (plus up to a period of polling),
// whatever the DHT still returns; the DHT itself forgets the value max(expire_after, 30 s) after
// the last publication (OpenDHT 2.4 floods the network when values live under 10 s).
//
// Why fetch rather than DHT listen: OpenDHT 2.4's listen never passes on a value replaced under
// the same id (its caches compare ids; unsigned values carry no sequence number), so listening
// would need a new value per publication, about 30 live values per node. (Without an IPv6
// socket, its listen() also returns token 0 and skips the node's own storage.) A fetch returns
// what the storing nodes hold now; it costs O(swarm size) bytes per node per period, so large
// swarms want a longer period.
//
// In an open or local swarm values are unsigned: nothing proves an announcement came from the
// node it names. A private swarm sets `seal` and `open` (announcement_seal.h): values are
// signed by their node's credential, and storing and receiving nodes drop any other. The DHT runs
// on its own network id, so it never mixes with the public OpenDHT network, and binds one IPv4
// address (no IPv6 socket); there is no built-in bootstrap node.
//
// Threads: OpenDHT's DHT loop and UDP receiver, and Discovery's worker (re-publication, fetches,
// expiry, callbacks). Destruction joins them in milliseconds.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <memory>
#include <string>
#include <vector>

#include "swarm/pipeline_messages.h"

namespace px::swarm {

// Part of the wire contract: peers must agree on both.
inline constexpr uint32_t kDiscoveryNetworkId = 0x70786e31;    // "pxn1": a DHT of Parallax nodes only
inline constexpr uint16_t kAnnouncementValueType = 0x7078;     // the DHT value type of announcements

// Turns a DHT value's bytes into announcement JSON, or throws px::Error to reject the value.
using ValueOpener = std::function<std::string(std::string_view value)>;

struct DiscoveryConfig {
  std::string bind_host = "127.0.0.1";  // an IPv4 address or name; the DHT binds only here
  int port = 0;                         // UDP port; 0 = ephemeral (port() gives the bound one)
  std::vector<std::string> bootstrap;   // "host:port" of known peers; empty for the first node
  std::string swarm_key;                // DHT key namespace, e.g. "parallax/<model_id>"
  std::chrono::milliseconds announce_period{1000};
  std::chrono::milliseconds expire_after{5000};  // a node not heard from for this long is gone
  std::function<std::string(const std::string& json)> seal;  // unset: values are the plain JSON
  ValueOpener open;                                           // unset: values are the plain JSON
};

class Discovery {
 public:
  // Binds the UDP socket and starts the DHT; returns without waiting for the bootstrap peers
  // (unreachable ones are retried in the background). Throws px::Error on an invalid config
  // (empty swarm key, expire_after <= announce_period, a malformed bootstrap address, a host
  // with no IPv4 address) or when the socket cannot be bound.
  explicit Discovery(DiscoveryConfig config);
  // Stops re-publishing and the DHT and joins their threads; no callback runs after it returns.
  // It does not withdraw: peers drop this node after expire_after. Must not be called from an
  // on_change callback.
  ~Discovery();
  Discovery(const Discovery&) = delete;
  Discovery& operator=(const Discovery&) = delete;

  int port() const;

  // Publishes `self` now and again every announce_period until withdraw(). The sequence number
  // is Discovery's own (it grows with every publication, starting above self.sequence). Throws
  // px::Error when `self` is invalid (see validate_announcement).
  void announce(const NodeAnnouncement& self);
  // Publishes state "leaving" once and stops re-publishing; peers drop the node as soon as they
  // hear it. No-op before announce(); announce() again resumes.
  void withdraw();

  // The newest announcement of each node heard within expire_after whose state is not
  // "leaving", this node's own included, by node id.
  std::vector<NodeAnnouncement> live_nodes() const;

  // Called when the live set or a live node's announcement (beyond its sequence number) changes.
  // Runs on Discovery's own thread, one call at a time, with no lock held (several changes may
  // come as one call): it may call live_nodes(), announce() and withdraw(); while it runs, this
  // node neither re-publishes nor expires peers, so it should return within a fraction of
  // announce_period.
  void on_change(std::function<void()> callback);

  // DHT values under the swarm key that were not valid announcements (a metric for attacks or
  // incompatible peers).
  size_t rejected_values() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace px::swarm

#pragma once
// Mutual TLS for the peer service of a private swarm: both ends present their node credential
// and check the other's against the swarm root and the revocation list (SwarmCredentials) in
// the handshake, so a peer without a valid credential never gets a call through — no Join, no
// heartbeat, no pipeline frame. gRPC's TLS stack (OpenSSL) negotiates TLS 1.3 between nodes.
//
// Peers are reached by IP address, not by name, so no host name is checked: what a node proves
// is membership of the swarm (a certificate from its root), which is what routing relies on.
//
// One PeerTls per process, shared by its server, links and clients. Thread-safe.
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "swarm/swarm_credentials.h"

namespace grpc {
class AuthContext;
}

namespace px::swarm {

class PeerTls {
 public:
  explicit PeerTls(std::shared_ptr<SwarmCredentials> credentials);

  SwarmCredentials& credentials() const { return *credentials_; }
  std::shared_ptr<grpc::ChannelCredentials> channel_credentials() const;
  std::shared_ptr<grpc::ServerCredentials> server_credentials() const;

  // The TLS target name a channel to `address` uses: a name of its own per address (gRPC hands
  // the verifier only this name, and peers on one host differ by port alone).
  std::string target_name_for(const std::string& address) const;

  // The serial of the credential the peer at `address` showed when this node last connected
  // to it; empty when unknown.
  std::string serial_at(const std::string& address) const;
  // Why this node last refused the peer at `address` in a handshake; empty when it did not.
  std::string refusal(const std::string& address) const;

  // A call's peer, checked again (its connection may predate a revocation): empty when it may
  // proceed, else why not.
  std::string check_call(const grpc::AuthContext& context) const;
  // The serial of the credential a call's peer showed; empty when it showed none valid.
  std::string caller_serial(const grpc::AuthContext& context) const;

  // Handshake outcomes (called by the certificate verifier; public for it).
  void handshake_checked(const std::string& target, const std::string& serial, const std::string& refusal);

 private:
  std::shared_ptr<SwarmCredentials> credentials_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, std::string> address_by_target_;
  std::map<std::string, std::string> serial_by_address_;
  std::map<std::string, std::string> refusal_by_address_;
  mutable std::map<std::string, CredentialInfo> checked_calls_;  // by certificate PEM
};

}  // namespace px::swarm

#pragma once
// A node's membership of a private swarm: its credential (an X.509 certificate and EC P-256
// key issued by the swarm's root, see credential_authority.h), the swarm root's certificate, and
// the newest signed revocation list it has seen. Everything that checks a peer goes through here:
// the TLS handshake (peer_tls), sealed DHT announcements (announcement_seal) and revocations.
//
// A node directory (written by `parallax swarm invite`):
//   node.crt  node.key (mode 0600)  swarm.crt  [revocations.json: the newest list seen, kept
//   up to date by the node itself]
//
// Thread-safe: checks may run on gRPC and DHT threads while a revocation list is adopted.
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "swarm/openssl_util.h"

namespace px::swarm {

// File names inside a node directory and a swarm root directory.
inline constexpr const char* kRootCertFile = "swarm.crt";
inline constexpr const char* kRootKeyFile = "swarm.key";
inline constexpr const char* kNodeCertFile = "node.crt";
inline constexpr const char* kNodeKeyFile = "node.key";
inline constexpr const char* kRevocationsFile = "revocations.json";

struct CredentialInfo {
  std::string name;      // the certificate's common name, as given to `swarm invite --name`
  std::string serial;    // lowercase hex, unique per issued credential
  std::time_t not_after = 0;
};

// One revoked credential in a revocation list.
struct Revocation {
  std::string serial;
  std::string name;
  int64_t revoked_at = 0;  // unix seconds
};

// A revocation list as signed by the swarm root: the JSON text that was signed, and what it says.
struct RevocationList {
  std::string swarm_id;
  uint64_t sequence = 0;   // grows with each revocation; a node adopts only newer lists
  std::vector<Revocation> revoked;
  std::string file_text;   // {"list": "<signed JSON text>", "signature": "<base64>"}
};

// The swarm's id: the first 16 hex digits of SHA-256 of the root's public key.
std::string swarm_id_of(X509* root);

// Node names: 1..64 of [A-Za-z0-9._-].
void validate_node_name(const std::string& name);

// Signs a list (the root's key) into its file form, and parses + checks one against the root.
// parse throws px::Error when the signature is not the root's, the list is for another swarm
// or the text is malformed.
RevocationList sign_revocations(EVP_PKEY* root_key, const std::string& swarm_id, uint64_t sequence,
                                const std::vector<Revocation>& revoked);
RevocationList parse_revocations(std::string_view file_text, X509* root, const std::string& swarm_id);

class SwarmCredentials {
 public:
  // Loads and checks a node directory. Throws px::Error naming the problem: a missing or
  // unreadable file, a key that does not match the certificate, a certificate not issued by
  // the directory's swarm root, one expired or not valid yet, or one the directory's own
  // revocation list revokes.
  static std::shared_ptr<SwarmCredentials> load(const std::string& node_dir);
  // The same from PEM text; `persist_dir` (may be empty) is where adopted revocation lists go.
  static std::shared_ptr<SwarmCredentials> from_pem(const std::string& root_pem, const std::string& cert_pem,
                                                    const std::string& key_pem, const std::string& persist_dir = {});

  const std::string& swarm_id() const { return swarm_id_; }
  const CredentialInfo& self() const { return self_; }
  const std::string& root_pem() const { return root_pem_; }
  const std::string& cert_pem() const { return cert_pem_; }
  const std::string& key_pem() const { return key_pem_; }

  // Checks a peer's certificate (PEM): issued by this swarm's root, valid now, not revoked.
  // Throws px::Error saying which, with the credential's name where it has one.
  CredentialInfo check_peer(std::string_view cert_pem) const;

  // ECDSA-SHA256 by this node's key, and a check of a signature by a (checked) peer's key.
  std::string sign(std::string_view data) const;

  // Adopts a revocation list newer than the current one (signature checked) and saves it to the
  // node directory. Returns false for a list that is not newer; throws px::Error for an invalid one.
  bool adopt_revocations(std::string_view file_text);
  uint64_t revocation_sequence() const;
  std::string revocations_text() const;  // empty while none is known
  bool revoked(const std::string& serial) const;

 private:
  SwarmCredentials() = default;
  void init(const std::string& root_pem, const std::string& cert_pem, const std::string& key_pem);

  std::string root_pem_, cert_pem_, key_pem_;
  ossl::Cert root_;
  ossl::Key key_;
  std::string swarm_id_;
  CredentialInfo self_;
  std::string persist_dir_;
  X509_STORE* store_ = nullptr;  // the root alone: what peers' chains must end in

  mutable std::mutex mutex_;
  RevocationList revocations_;
  std::set<std::string> revoked_serials_;

 public:
  ~SwarmCredentials();
  SwarmCredentials(const SwarmCredentials&) = delete;
  SwarmCredentials& operator=(const SwarmCredentials&) = delete;
};

}  // namespace px::swarm

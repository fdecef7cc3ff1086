#pragma once
// The swarm root: the certificate authority of one private swarm (`parallax swarm init`,
// `invite`, `revoke`). Its directory holds
//   swarm.key         the root's EC P-256 private key (mode 0600). Whoever has it can admit
//                     nodes and revoke them: keep it off the serving machines, back it up.
//   swarm.crt         the root certificate (public; every node directory gets a copy)
//   issued.json       the credentials issued so far (name, serial, expiry), for revoke by name
//   revocations.json  the newest signed revocation list (once something was revoked)
#include <memory>
#include <string>
#include <vector>

#include "swarm/swarm_credentials.h"

namespace px::swarm {

struct SwarmRootInfo {
  std::string swarm_id;
  std::string name;
  std::string dir;
};

// Creates a new root in `dir` (created if missing). Refuses a directory that already holds a
// root key, so a swarm's root is never overwritten by accident. Valid for `days`.
SwarmRootInfo create_swarm_root(const std::string& dir, const std::string& name, int days = 3650);

// Issues a node credential into `node_dir` (node.crt, node.key, swarm.crt and the current
// revocation list): a certificate for `name`, valid for `days` (1..3650). Names are unique per
// swarm while their credential is not revoked.
CredentialInfo issue_node_credential(const std::string& root_dir, const std::string& node_dir, const std::string& name,
                                     int days);

// The same with the validity given in seconds from now, either side of it (tests issue expired
// and not-yet-valid credentials with it).
CredentialInfo issue_node_credential_window(const std::string& root_dir, const std::string& node_dir,
                                            const std::string& name, int64_t valid_from_s, int64_t valid_until_s);

// Revokes the credentials with that name or serial: writes a new signed revocation list into the
// root directory and returns it. Throws px::Error when nothing matches or all are revoked already.
RevocationList revoke_credential(const std::string& root_dir, const std::string& name_or_serial);

// A short-lived credential for the operator's own tools (`swarm revoke --peer`), never written.
std::shared_ptr<SwarmCredentials> operator_credential(const std::string& root_dir);

}  // namespace px::swarm

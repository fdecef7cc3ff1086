#pragma once
// Signed DHT announcements for private swarms. The DHT is open to anyone who can send it UDP,
// so a node's announcement travels sealed: the announcement's JSON, the node's certificate and
// an ECDSA-SHA256 signature of the JSON by the node's key. Storing and receiving nodes open it:
// a value that is unsigned, signed by a key other than its certificate's, or whose certificate
// is not a valid, unrevoked credential of this swarm is ignored.
#include <cstddef>
#include <string>
#include <string_view>

#include "swarm/swarm_credentials.h"

namespace px::swarm {

inline constexpr size_t kMaxSealedAnnouncementBytes = 16384;

std::string seal_announcement(const SwarmCredentials& credentials, const std::string& announcement_json);
// The announcement JSON inside `sealed`, checked as above; throws px::Error saying what fails.
std::string open_announcement(const SwarmCredentials& credentials, std::string_view sealed);

}  // namespace px::swarm

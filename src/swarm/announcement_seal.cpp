#include "swarm/announcement_seal.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace px::swarm {

std::string seal_announcement(const SwarmCredentials& credentials, const std::string& announcement_json) {
  const nlohmann::json sealed = {{"announcement", announcement_json},
                                 {"certificate", credentials.cert_pem()},
                                 {"signature", ossl::base64_encode(credentials.sign(announcement_json))}};
  return sealed.dump();
}

std::string open_announcement(const SwarmCredentials& credentials, std::string_view sealed) {
  if (sealed.size() > kMaxSealedAnnouncementBytes) {
    fail("sealed announcement: {} bytes is over {}", sealed.size(), kMaxSealedAnnouncementBytes);
  }
  std::string announcement, certificate, signature;
  try {
    const nlohmann::json value = nlohmann::json::parse(sealed);
    if (!value.is_object() || !value.contains("signature")) fail("announcement: unsigned (this swarm signs them)");
    announcement = value.at("announcement").get<std::string>();
    certificate = value.at("certificate").get<std::string>();
    signature = ossl::base64_decode(value.at("signature").get<std::string>(), "announcement signature");
  } catch (const nlohmann::json::exception& e) {
    fail("sealed announcement: malformed: {}", e.what());
  }
  const CredentialInfo signer = credentials.check_peer(certificate);
  const ossl::Cert cert = ossl::cert_from_pem(certificate, "announcement certificate");
  if (!ossl::verify(X509_get0_pubkey(cert.get()), announcement, signature)) {
    fail("announcement: the signature is not by credential '{}'", signer.name);
  }
  return announcement;
}

}  // namespace px::swarm

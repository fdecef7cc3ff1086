#include "swarm/peer_tls.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <spdlog/spdlog.h>

#include "core/error.h"

namespace px::swarm {
namespace {

using grpc::experimental::CertificateVerifier;
using grpc::experimental::ExternalCertificateVerifier;
using grpc::experimental::TlsCustomVerificationCheckRequest;

// Checks the peer's certificate itself rather than leaving the chain to gRPC, so a refusal says
// why (expired, revoked, another swarm's) on both sides, and revocations apply at once.
class SwarmVerifier final : public ExternalCertificateVerifier {
 public:
  explicit SwarmVerifier(PeerTls* tls) : tls_(tls) {}

  bool Verify(TlsCustomVerificationCheckRequest* request, std::function<void(grpc::Status)>,
              grpc::Status* sync_status) override {
    const std::string target(request->target_name().data(), request->target_name().size());
    const grpc::string_ref pem = request->peer_cert();
    if (pem.empty()) {
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "the peer showed no swarm credential");
      tls_->handshake_checked(target, {}, sync_status->error_message());
      return true;
    }
    try {
      const CredentialInfo peer = tls_->credentials().check_peer(std::string_view(pem.data(), pem.size()));
      tls_->handshake_checked(target, peer.serial, {});
      *sync_status = grpc::Status::OK;
    } catch (const Error& e) {
      *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, e.what());
      tls_->handshake_checked(target, {}, e.what());
    }
    return true;  // decided synchronously
  }

  void Cancel(TlsCustomVerificationCheckRequest*) override {}

 private:
  PeerTls* tls_;
};

std::shared_ptr<grpc::experimental::StaticDataCertificateProvider> provider(const SwarmCredentials& credentials) {
  return std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      credentials.root_pem(), std::vector<grpc::experimental::IdentityKeyCertPair>{
                                  {credentials.key_pem(), credentials.cert_pem()}});
}

}  // namespace

PeerTls::PeerTls(std::shared_ptr<SwarmCredentials> credentials) : credentials_(std::move(credentials)) {
  if (!credentials_) fail("peer TLS needs credentials");
}

std::shared_ptr<grpc::ChannelCredentials> PeerTls::channel_credentials() const {
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider(*credentials_));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  // The verifier checks the chain (see SwarmVerifier); there is no host name to check.
  options.set_verify_server_certs(false);
  options.set_check_call_host(false);
  options.set_certificate_verifier(ExternalCertificateVerifier::Create<SwarmVerifier>(const_cast<PeerTls*>(this)));
  auto channel = grpc::experimental::TlsCredentials(options);
  if (!channel) fail("cannot set up TLS for peer connections");
  return channel;
}

std::shared_ptr<grpc::ServerCredentials> PeerTls::server_credentials() const {
  grpc::experimental::TlsServerCredentialsOptions options(provider(*credentials_));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  options.set_certificate_verifier(ExternalCertificateVerifier::Create<SwarmVerifier>(const_cast<PeerTls*>(this)));
  auto server = grpc::experimental::TlsServerCredentials(options);
  if (!server) fail("cannot set up TLS for the peer service");
  return server;
}

std::string PeerTls::target_name_for(const std::string& address) const {
  const std::string target = ossl::hex(ossl::sha256(address)).substr(0, 16) + ".peer.parallax";
  std::lock_guard lock(mutex_);
  address_by_target_[target] = address;
  return target;
}

void PeerTls::handshake_checked(const std::string& target_name, const std::string& serial, const std::string& refusal) {
  std::string target = target_name;
  {
    std::lock_guard lock(mutex_);
    const auto it = address_by_target_.find(target_name);
    if (it != address_by_target_.end()) target = it->second;
  }
  if (!refusal.empty()) {
    // The swarm side's warning; the joining side reads the same text from refusal().
    spdlog::warn("peer TLS: refused {}: {}", target.empty() ? std::string("an incoming connection") : target, refusal);
  }
  if (target.empty()) return;
  std::lock_guard lock(mutex_);
  if (refusal.empty()) {
    serial_by_address_[target] = serial;
    refusal_by_address_.erase(target);
  } else {
    refusal_by_address_[target] = refusal;
  }
}

std::string PeerTls::serial_at(const std::string& address) const {
  std::lock_guard lock(mutex_);
  const auto it = serial_by_address_.find(address);
  return it == serial_by_address_.end() ? std::string() : it->second;
}

std::string PeerTls::refusal(const std::string& address) const {
  std::lock_guard lock(mutex_);
  const auto it = refusal_by_address_.find(address);
  return it == refusal_by_address_.end() ? std::string() : it->second;
}

std::string PeerTls::check_call(const grpc::AuthContext& context) const {
  const auto certs = context.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (certs.empty()) return "the caller showed no swarm credential";
  const std::string pem(certs.front().data(), certs.front().size());
  {
    // The handshake checked the chain; per call only expiry and revocation can have changed.
    std::lock_guard lock(mutex_);
    const auto it = checked_calls_.find(pem);
    if (it != checked_calls_.end()) {
      if (credentials_->revoked(it->second.serial)) {
        return fmt::format("credential '{}' (serial {}) has been revoked", it->second.name, it->second.serial);
      }
      if (it->second.not_after > std::time(nullptr)) return {};
    }
  }
  try {
    const CredentialInfo info = credentials_->check_peer(pem);
    std::lock_guard lock(mutex_);
    if (checked_calls_.size() >= 1024) checked_calls_.clear();  // bounded; refilled on the next calls
    checked_calls_[pem] = info;
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}

std::string PeerTls::caller_serial(const grpc::AuthContext& context) const {
  if (!check_call(context).empty()) return {};
  const auto certs = context.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  const std::string pem(certs.front().data(), certs.front().size());
  std::lock_guard lock(mutex_);
  const auto it = checked_calls_.find(pem);
  return it == checked_calls_.end() ? std::string() : it->second.serial;
}

}  // namespace px::swarm

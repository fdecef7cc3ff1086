#include "swarm/swarm_credentials.h"

#include <openssl/x509_vfy.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/file_write.h"

namespace px::swarm {
namespace {

constexpr size_t kMaxRevocationsBytes = 1 << 20;
constexpr size_t kMaxRevocations = 10000;

std::string read_text(const std::filesystem::path& path, const std::string& what) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) fail("{} {}: {}", what, path.string(), ec.message());
  if (size > kMaxRevocationsBytes) fail("{} {}: {} bytes is too large", what, path.string(), size);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{} {}: cannot open: {}", what, path.string(), errno_text(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string verify_error_text(int error, X509* cert) {
  switch (error) {
    case X509_V_ERR_CERT_HAS_EXPIRED: return fmt::format("expired on {}", ossl::format_time(ossl::not_after(cert)));
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return fmt::format("not valid before {}", ossl::format_time(ossl::not_before(cert)));
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return "issued by another swarm's root";
    default: return X509_verify_cert_error_string(error);
  }
}

}  // namespace

std::string swarm_id_of(X509* root) {
  EVP_PKEY* key = X509_get0_pubkey(root);
  if (!key) fail("the swarm root certificate has no public key");
  return ossl::hex(ossl::sha256(ossl::public_key_der(key))).substr(0, 16);
}

void validate_node_name(const std::string& name) {
  if (name.empty() || name.size() > 64) fail("a node name must be 1 to 64 characters, not {}", name.size());
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      fail("node name '{}': only letters, digits, '.', '_' and '-' are allowed", name);
    }
  }
}

RevocationList sign_revocations(EVP_PKEY* root_key, const std::string& swarm_id, uint64_t sequence,
                                const std::vector<Revocation>& revoked) {
  nlohmann::json list = {{"swarm", swarm_id}, {"sequence", sequence}, {"revoked", nlohmann::json::array()}};
  for (const Revocation& r : revoked) {
    list["revoked"].push_back({{"serial", r.serial}, {"name", r.name}, {"revoked_at", r.revoked_at}});
  }
  const std::string text = list.dump();
  const nlohmann::json file = {{"list", text}, {"signature", ossl::base64_encode(ossl::sign(root_key, text))}};
  return RevocationList{swarm_id, sequence, revoked, file.dump(1) + "\n"};
}

RevocationList parse_revocations(std::string_view file_text, X509* root, const std::string& swarm_id) {
  if (file_text.size() > kMaxRevocationsBytes) fail("revocation list: {} bytes is too large", file_text.size());
  RevocationList out;
  try {
    const nlohmann::json file = nlohmann::json::parse(file_text);
    const std::string text = file.at("list").get<std::string>();
    const std::string signature = ossl::base64_decode(file.at("signature").get<std::string>(), "revocation list signature");
    if (!ossl::verify(X509_get0_pubkey(root), text, signature)) {
      fail("revocation list: the signature is not the swarm root's");
    }
    const nlohmann::json list = nlohmann::json::parse(text);
    out.swarm_id = list.at("swarm").get<std::string>();
    if (out.swarm_id != swarm_id) fail("revocation list: for swarm {}, not {}", out.swarm_id, swarm_id);
    out.sequence = list.at("sequence").get<uint64_t>();
    const auto& revoked = list.at("revoked");
    if (!revoked.is_array() || revoked.size() > kMaxRevocations) fail("revocation list: 'revoked' is not a list");
    for (const auto& r : revoked) {
      out.revoked.push_back({r.at("serial").get<std::string>(), r.at("name").get<std::string>(),
                             r.at("revoked_at").get<int64_t>()});
    }
  } catch (const nlohmann::json::exception& e) {
    fail("revocation list: malformed: {}", e.what());
  }
  out.file_text = std::string(file_text);
  return out;
}

std::shared_ptr<SwarmCredentials> SwarmCredentials::load(const std::string& node_dir) {
  const std::filesystem::path dir(node_dir);
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    fail("credentials {}: not a directory (make one with `parallax swarm invite`)", node_dir);
  }
  const std::string root = read_text(dir / kRootCertFile, "credentials: swarm root certificate");
  const std::string cert = read_text(dir / kNodeCertFile, "credentials: node certificate");
  const std::string key = read_text(dir / kNodeKeyFile, "credentials: node key");
  auto credentials = from_pem(root, cert, key, node_dir);
  const auto revocations = dir / kRevocationsFile;
  if (std::filesystem::exists(revocations, ec)) {
    credentials->adopt_revocations(read_text(revocations, "credentials: revocation list"));
  }
  if (credentials->revoked(credentials->self().serial)) {
    fail("credentials {}: node '{}' (serial {}) has been revoked from swarm {}", node_dir, credentials->self().name,
         credentials->self().serial, credentials->swarm_id());
  }
  return credentials;
}

std::shared_ptr<SwarmCredentials> SwarmCredentials::from_pem(const std::string& root_pem, const std::string& cert_pem,
                                                             const std::string& key_pem, const std::string& persist_dir) {
  std::shared_ptr<SwarmCredentials> credentials(new SwarmCredentials());
  credentials->persist_dir_ = persist_dir;
  credentials->init(root_pem, cert_pem, key_pem);
  return credentials;
}

void SwarmCredentials::init(const std::string& root_pem, const std::string& cert_pem, const std::string& key_pem) {
  root_pem_ = root_pem;
  cert_pem_ = cert_pem;
  key_pem_ = key_pem;
  root_ = ossl::cert_from_pem(root_pem, "credentials: swarm root certificate");
  key_ = ossl::key_from_pem(key_pem, "credentials: node key");
  swarm_id_ = swarm_id_of(root_.get());
  store_ = X509_STORE_new();
  if (!store_ || X509_STORE_add_cert(store_, root_.get()) != 1) {
    fail("credentials: cannot use the swarm root: {}", ossl::last_error("unknown error"));
  }
  const ossl::Cert cert = ossl::cert_from_pem(cert_pem, "credentials: node certificate");
  if (X509_check_private_key(cert.get(), key_.get()) != 1) {
    ossl::last_error("");
    fail("credentials: the node key does not belong to the node certificate");
  }
  try {
    self_ = check_peer(cert_pem);
  } catch (const Error& e) {
    fail("credentials for swarm {}: this node's certificate: {}", swarm_id_, e.what());
  }
}

SwarmCredentials::~SwarmCredentials() { X509_STORE_free(store_); }

CredentialInfo SwarmCredentials::check_peer(std::string_view cert_pem) const {
  const ossl::Cert cert = ossl::cert_from_pem(cert_pem, "peer certificate");
  CredentialInfo info{ossl::common_name(cert.get()), ossl::serial_hex(cert.get()), ossl::not_after(cert.get())};
  const std::string who = info.name.empty() ? "a credential without a name" : fmt::format("credential '{}'", info.name);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  if (!ctx || X509_STORE_CTX_init(ctx, store_, cert.get(), nullptr) != 1) {
    X509_STORE_CTX_free(ctx);
    fail("cannot check {}: {}", who, ossl::last_error("out of memory"));
  }
  const int ok = X509_verify_cert(ctx);
  const int error = X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  ossl::last_error("");
  if (ok != 1) fail("{} is {} (this is swarm {})", who, verify_error_text(error, cert.get()), swarm_id_);
  // The root itself is no node's credential.
  if (X509_cmp(cert.get(), root_.get()) == 0) fail("{} is the swarm root, not a node credential", who);
  if (revoked(info.serial)) fail("{} (serial {}) has been revoked from swarm {}", who, info.serial, swarm_id_);
  return info;
}

std::string SwarmCredentials::sign(std::string_view data) const { return ossl::sign(key_.get(), data); }

bool SwarmCredentials::adopt_revocations(std::string_view file_text) {
  RevocationList list = parse_revocations(file_text, root_.get(), swarm_id_);
  {
    std::lock_guard lock(mutex_);
    if (!revocations_.file_text.empty() && list.sequence <= revocations_.sequence) return false;
    revoked_serials_.clear();
    for (const Revocation& r : list.revoked) revoked_serials_.insert(r.serial);
    revocations_ = list;
  }
  if (!persist_dir_.empty()) {
    try {
      write_file_atomically((std::filesystem::path(persist_dir_) / kRevocationsFile).string(),
                            [&](const WriteBytes& write) { write(list.file_text.data(), list.file_text.size()); });
    } catch (const Error& e) {
      spdlog::warn("credentials: cannot save the revocation list: {}", e.what());
    }
  }
  return true;
}

uint64_t SwarmCredentials::revocation_sequence() const {
  std::lock_guard lock(mutex_);
  return revocations_.sequence;
}

std::string SwarmCredentials::revocations_text() const {
  std::lock_guard lock(mutex_);
  return revocations_.file_text;
}

bool SwarmCredentials::revoked(const std::string& serial) const {
  std::lock_guard lock(mutex_);
  return revoked_serials_.count(serial) > 0;
}

}  // namespace px::swarm

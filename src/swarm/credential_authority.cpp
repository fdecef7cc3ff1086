#include "swarm/credential_authority.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/file_write.h"

namespace px::swarm {
namespace {

namespace fs = std::filesystem;

struct Root {
  ossl::Key key;
  ossl::Cert cert;
  std::string swarm_id;
};

std::string read_file(const fs::path& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{} {}: cannot open: {}", what, path.string(), errno_text(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A private key is never readable by others, not even between write and chmod.
void write_private_file(const fs::path& path, const std::string& text) {
  const std::string tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail("cannot write {}: {}", tmp, errno_text(errno));
  const bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    fail("cannot write {}: {}", path.string(), errno_text(ok ? errno : err));
  }
}

void write_public_file(const fs::path& path, const std::string& text) {
  write_file_atomically(path.string(), [&](const WriteBytes& write) { write(text.data(), text.size()); });
}

int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext || X509_add_ext(cert, ext, -1) != 1) {
    X509_EXTENSION_free(ext);
    fail("cannot add a certificate extension: {}", ossl::last_error("unknown error"));
  }
  X509_EXTENSION_free(ext);
}

// A certificate for `subject_key` named `name`, signed by `issuer_key` (issuer null: self-signed).
ossl::Cert make_certificate(EVP_PKEY* subject_key, const std::string& name, X509* issuer, EVP_PKEY* issuer_key,
                            long valid_from_s, long valid_until_s, bool is_ca) {
  ossl::Cert cert(X509_new());
  if (!cert) fail("out of memory (X509)");
  X509_set_version(cert.get(), 2);
  // 127 random bits: unique per credential, positive as X.509 wants.
  std::string serial = ossl::random_bytes(16);
  serial[0] = char(serial[0] & 0x7f);
  BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(serial.data()), int(serial.size()), nullptr);
  if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()))) {
    BN_free(bn);
    fail("cannot set a certificate serial");
  }
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), valid_from_s);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), valid_until_s);
  X509_NAME* subject = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("parallax"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(name.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : subject);
  X509_set_pubkey(cert.get(), subject_key);
  X509* signer = issuer ? issuer : cert.get();
  add_extension(cert.get(), signer, NID_basic_constraints, is_ca ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE");
  add_extension(cert.get(), signer, NID_key_usage, is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  if (!is_ca) add_extension(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
  add_extension(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (issuer) add_extension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) {
    fail("cannot sign a certificate: {}", ossl::last_error("unknown error"));
  }
  return cert;
}

// A little back-dating absorbs clock differences between the issuer and the nodes.
constexpr long kBackdateSeconds = -300;

Root load_root(const std::string& root_dir) {
  const fs::path dir(root_dir);
  std::error_code ec;
  if (!fs::exists(dir / kRootKeyFile, ec)) {
    fail("{} is not a swarm root directory (no {}; make one with `parallax swarm init`)", root_dir, kRootKeyFile);
  }
  Root root;
  root.key = ossl::key_from_pem(read_file(dir / kRootKeyFile, "swarm root key"), "swarm root key");
  root.cert = ossl::cert_from_pem(read_file(dir / kRootCertFile, "swarm root certificate"), "swarm root certificate");
  if (X509_check_private_key(root.cert.get(), root.key.get()) != 1) {
    ossl::last_error("");
    fail("{}: {} does not belong to {}", root_dir, kRootKeyFile, kRootCertFile);
  }
  root.swarm_id = swarm_id_of(root.cert.get());
  return root;
}

nlohmann::json load_issued(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir / "issued.json", ec)) return nlohmann::json::array();
  try {
    return nlohmann::json::parse(read_file(dir / "issued.json", "issued credentials"));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: issued.json is malformed: {}", dir.string(), e.what());
  }
}

RevocationList load_revocations(const fs::path& dir, const Root& root) {
  std::error_code ec;
  if (!fs::exists(dir / kRevocationsFile, ec)) return RevocationList{root.swarm_id, 0, {}, {}};
  return parse_revocations(read_file(dir / kRevocationsFile, "revocation list"), root.cert.get(), root.swarm_id);
}

}  // namespace

SwarmRootInfo create_swarm_root(const std::string& dir_text, const std::string& name, int days) {
  if (days < 1 || days > 36500) fail("a swarm root is valid for 1 to 36500 days, not {}", days);
  validate_node_name(name);
  const fs::path dir(dir_text);
  std::error_code ec;
  if (fs::exists(dir / kRootKeyFile, ec)) {
    fail("{} already holds a swarm root ({}); refusing to overwrite it", dir_text, kRootKeyFile);
  }
  fs::create_directories(dir, ec);
  if (ec) fail("cannot create {}: {}", dir_text, ec.message());
  ossl::Key key = ossl::generate_key();
  ossl::Cert cert = make_certificate(key.get(), "parallax swarm " + name, nullptr, key.get(), kBackdateSeconds,
                                    long(days) * 86400, true);
  write_private_file(dir / kRootKeyFile, ossl::key_to_pem(key.get()));
  write_public_file(dir / kRootCertFile, ossl::cert_to_pem(cert.get()));
  write_public_file(dir / "issued.json", "[]\n");
  return SwarmRootInfo{swarm_id_of(cert.get()), name, dir_text};
}

CredentialInfo issue_node_credential(const std::string& root_dir, const std::string& node_dir, const std::string& name,
                                     int days) {
  if (days < 1 || days > 3650) fail("--days must be 1 to 3650, not {}", days);
  return issue_node_credential_window(root_dir, node_dir, name, kBackdateSeconds, int64_t(days) * 86400);
}

CredentialInfo issue_node_credential_window(const std::string& root_dir, const std::string& node_dir,
                                            const std::string& name, int64_t valid_from_s, int64_t valid_until_s) {
  validate_node_name(name);
  const Root root = load_root(root_dir);
  const fs::path root_path(root_dir);
  nlohmann::json issued = load_issued(root_path);
  const RevocationList revocations = load_revocations(root_path, root);
  for (const auto& entry : issued) {
    const std::string serial = entry.value("serial", "");
    const bool revoked = std::any_of(revocations.revoked.begin(), revocations.revoked.end(),
                                     [&](const Revocation& r) { return r.serial == serial; });
    if (entry.value("name", "") == name && !revoked && entry.value("not_after", int64_t(0)) > now_unix()) {
      fail("swarm {} already has a valid credential named '{}' (serial {}); revoke it first or pick another name",
           root.swarm_id, name, serial);
    }
  }
  const fs::path out(node_dir);
  std::error_code ec;
  if (fs::exists(out / kNodeKeyFile, ec)) fail("{} already holds a node credential; refusing to overwrite it", node_dir);
  fs::create_directories(out, ec);
  if (ec) fail("cannot create {}: {}", node_dir, ec.message());

  ossl::Key key = ossl::generate_key();
  ossl::Cert cert = make_certificate(key.get(), name, root.cert.get(), root.key.get(), long(valid_from_s),
                                    long(valid_until_s), false);
  const CredentialInfo info{name, ossl::serial_hex(cert.get()), ossl::not_after(cert.get())};
  write_private_file(out / kNodeKeyFile, ossl::key_to_pem(key.get()));
  write_public_file(out / kNodeCertFile, ossl::cert_to_pem(cert.get()));
  write_public_file(out / kRootCertFile, ossl::cert_to_pem(root.cert.get()));
  if (!revocations.file_text.empty()) write_public_file(out / kRevocationsFile, revocations.file_text);
  issued.push_back({{"name", name}, {"serial", info.serial}, {"not_after", int64_t(info.not_after)}});
  write_public_file(root_path / "issued.json", issued.dump(1) + "\n");
  return info;
}

RevocationList revoke_credential(const std::string& root_dir, const std::string& name_or_serial) {
  const Root root = load_root(root_dir);
  const fs::path root_path(root_dir);
  const nlohmann::json issued = load_issued(root_path);
  RevocationList current = load_revocations(root_path, root);
  std::vector<Revocation> revoked = current.revoked;
  int matched = 0, added = 0;
  for (const auto& entry : issued) {
    const std::string serial = entry.value("serial", ""), name = entry.value("name", "");
    if (name != name_or_serial && serial != name_or_serial) continue;
    ++matched;
    if (std::any_of(revoked.begin(), revoked.end(), [&](const Revocation& r) { return r.serial == serial; })) continue;
    revoked.push_back({serial, name, now_unix()});
    ++added;
  }
  if (matched == 0) fail("swarm {} issued no credential named '{}' (see issued.json)", root.swarm_id, name_or_serial);
  if (added == 0) fail("'{}' is revoked already", name_or_serial);
  RevocationList list = sign_revocations(root.key.get(), root.swarm_id, current.sequence + 1, revoked);
  write_public_file(root_path / kRevocationsFile, list.file_text);
  return list;
}

std::shared_ptr<SwarmCredentials> operator_credential(const std::string& root_dir) {
  const Root root = load_root(root_dir);
  ossl::Key key = ossl::generate_key();
  ossl::Cert cert = make_certificate(key.get(), "operator", root.cert.get(), root.key.get(), kBackdateSeconds, 3600, false);
  auto credentials = SwarmCredentials::from_pem(ossl::cert_to_pem(root.cert.get()), ossl::cert_to_pem(cert.get()),
                                                ossl::key_to_pem(key.get()));
  const RevocationList revocations = load_revocations(fs::path(root_dir), root);
  if (!revocations.file_text.empty()) credentials->adopt_revocations(revocations.file_text);
  return credentials;
}

}  // namespace px::swarm

#pragma once
// The few OpenSSL (libcrypto) operations the swarm's credentials need, behind RAII handles and
// px::Error: EC P-256 keys, X.509 certificates in PEM, ECDSA-SHA256 signatures, base64, SHA-256.
// Everything that parses takes bytes from files or peers and fails with a message, never aborts.
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>

namespace px::swarm::ossl {

struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct CertFree {
  void operator()(X509* cert) const { X509_free(cert); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

// The newest error on OpenSSL's queue as text (and clears the queue); `fallback` when empty.
std::string last_error(const char* fallback);

Key generate_key();                                  // EC P-256
std::string key_to_pem(EVP_PKEY* key);               // PKCS#8, unencrypted
Key key_from_pem(std::string_view pem, const std::string& what);
std::string public_key_der(EVP_PKEY* key);

std::string cert_to_pem(X509* cert);
Cert cert_from_pem(std::string_view pem, const std::string& what);

// What a certificate says about its holder.
std::string common_name(X509* cert);
std::string serial_hex(X509* cert);                  // lowercase hex, no leading zeros
std::time_t not_before(X509* cert);
std::time_t not_after(X509* cert);

// A DER ECDSA-SHA256 signature of `data` by `key`, and its check against a certificate's key.
std::string sign(EVP_PKEY* key, std::string_view data);
bool verify(EVP_PKEY* key, std::string_view data, std::string_view signature);

std::string base64_encode(std::string_view bytes);
// Throws px::Error on anything but canonical base64 (whitespace not allowed).
std::string base64_decode(std::string_view text, const std::string& what);

std::string sha256(std::string_view bytes);          // 32 raw bytes
std::string hex(std::string_view bytes);
std::string random_bytes(size_t n);

// "2026-12-02 18:30 UTC"
std::string format_time(std::time_t t);

}  // namespace px::swarm::ossl

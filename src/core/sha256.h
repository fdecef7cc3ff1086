#pragma once
// SHA-256 through OpenSSL's EVP interface (libcrypto): a maintained, reviewed implementation
// that uses the CPU's SHA extensions where there are any. No home-made cryptography.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace px {

using Sha256Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t n);
  void update(std::string_view text) { update(text.data(), text.size()); }
  // The digest of everything given so far; the hasher must not be used afterwards.
  Sha256Digest finish();

 private:
  evp_md_ctx_st* ctx_ = nullptr;
};

// 64 lowercase hex digits.
std::string to_hex(const Sha256Digest& digest);
// The hex SHA-256 of `text`.
std::string sha256_hex(std::string_view text);
// Whether `text` is 64 lowercase hex digits (a digest as to_hex writes it).
bool is_sha256_hex(std::string_view text);

}  // namespace px

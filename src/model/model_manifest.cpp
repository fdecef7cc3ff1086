#include "model/model_manifest.h"

#include <fmt/format.h>

#include "core/error.h"
#include "core/sha256.h"

namespace px {
namespace {

constexpr const char* kManifestHeader = "parallax-model-digest v1\n";

}  // namespace

std::string canonical_manifest(const ModelDigest& d) {
  std::string out = kManifestHeader;
  out += fmt::format("config {}\nlayers {}\n", d.config, d.layers.size());
  for (size_t i = 0; i < d.layers.size(); ++i) out += fmt::format("layer {} {}\n", i, d.layers[i]);
  out += fmt::format("embedding_output {}\n", d.embedding_output);
  return out;
}

std::string manifest_id(const ModelDigest& d) { return sha256_hex(canonical_manifest(d)); }

void check_digest(const ModelDigest& d) {
  auto hex = [](const char* what, const std::string& v) {
    if (!is_sha256_hex(v)) fail("model digest: {} is not 64 lowercase hex digits", what);
  };
  hex("config", d.config);
  hex("embedding_output", d.embedding_output);
  hex("id", d.id);
  for (size_t i = 0; i < d.layers.size(); ++i) hex(fmt::format("layer {}", i).c_str(), d.layers[i]);
  if (sha256_hex(d.config_text) != d.config) fail("model digest: the config digest is not the hash of its config");
  if (manifest_id(d) != d.id) fail("model digest: the id is not the hash of its manifest");
}

}  // namespace px

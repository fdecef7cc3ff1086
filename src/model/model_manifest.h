#pragma once
// A model digest as data: the manifest of per-part SHA-256 digests (model/model_digest.h says
// what each covers), its canonical text and id, and the checks on a digest that came from a
// cache or a peer. Kept apart from the hashing so the wire codec needs no model loader.
#include <string>
#include <vector>

namespace px {

struct ModelDigest {
  std::string config_text;            // canonical_config() of the model
  std::string config;                 // 64 hex digits each
  std::vector<std::string> layers;    // [n_layers]
  std::string embedding_output;
  std::string id;
};

// "parallax-model-digest v1", then the config, each layer and the embedding/output digest.
std::string canonical_manifest(const ModelDigest& digest);
// SHA-256 hex of canonical_manifest(digest).
std::string manifest_id(const ModelDigest& digest);
// Throws px::Error unless every digest is 64 lowercase hex digits, the config digest is the
// hash of config_text and the id the hash of the manifest (a digest from a cache or a peer).
void check_digest(const ModelDigest& digest);

}  // namespace px

#pragma once
// A model's cryptographic identity: SHA-256 over what changes its outputs, as a small manifest.
//
//   config            SHA-256 of canonical_config(): every ModelConfig field, one "key=value"
//                     line each (floats as their bit patterns), n_vocab from the embedding
//   layers[i]         SHA-256 over transformer layer i's tensors (blk.i.*)
//   embedding_output  SHA-256 over every other tensor the loader reads (token embedding, RoPE
//                     factors, output norm and head)
//   id                SHA-256 of canonical_manifest(): the parts above, one line each
//
// A tensor contributes its GGUF name, GGML type id, GGML dims, byte count and bytes, exactly as
// the WeightSource hands them to the loader (model/tensor_names.h lists the names). So a GGUF
// file and an HF directory of one model have different ids whenever the loader sees different
// bytes (another dtype, Q/K rows in another order, another RoPE style): identity is of what a
// node computes with, not of where the weights came from.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/model_manifest.h"

namespace px {

struct ModelConfig;
class ThreadPool;
class WeightSource;

// The config's fields that a digest covers, as "key=value\n" lines in a fixed order.
std::string canonical_config(const ModelConfig& config);
struct DigestRun {
  uint64_t bytes = 0;       // tensor bytes hashed
  double seconds = 0;
  int threads = 1;
};

// Hashes every tensor of `weights` straight from its mapping. Tensors are hashed in parallel
// over `pool` (largest first; null: on this thread), each by one SHA-256 stream; `progress`,
// when set, is called from the hashing threads with the bytes just hashed.
ModelDigest digest_weights(const WeightSource& weights, ThreadPool* pool = nullptr,
                           const std::function<void(uint64_t bytes)>& progress = {}, DigestRun* run = nullptr);

// The total tensor bytes digest_weights would hash (for a progress bar's total).
uint64_t digest_bytes(const WeightSource& weights);

// What differs between two digests, for refusals: "layers 3-5 and 7 differ from the swarm's
// model", the config keys whose values differ, the embedding/output side. Empty when equal.
std::string describe_digest_difference(const ModelDigest& swarm, const ModelDigest& mine);

}  // namespace px

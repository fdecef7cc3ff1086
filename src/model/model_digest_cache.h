#pragma once
// A model's digest (model_digest.h), hashed once and then read back from a cache file:
//   beside the model    <file>.parallax-digest.json, or parallax-digest.json inside an HF
//                       directory;
//   else                $XDG_CACHE_HOME/parallax/ or ~/.cache/parallax/, named after the
//                       model's absolute path (when the model's directory is not writable).
// A cache is used only when it records the model's current files exactly: name, size and
// modification time (ns) of the GGUF file, or of every file at the top of the HF directory.
// Anything else — stale, corrupt, inconsistent digests, another path — is ignored and
// rewritten, never trusted. A cache that cannot be written is a warning, never an error.
// Note: a tool that changes a file's bytes but keeps its size and mtime (rsync -t after an
// in-place edit) defeats the check; `parallax model digest --no-cache` hashes afresh.
#include <cstdint>
#include <string>

#include "model/model_digest.h"

namespace px {

class ThreadPool;
class WeightSource;

struct DigestOptions {
  ThreadPool* pool = nullptr;  // hashing threads; null: the calling thread only
  bool use_cache = true;       // false: hash, and refresh the cache
  bool show_progress = true;   // a bar on stderr, when it is a terminal and the model is large
  std::string cache_dir;       // the fallback directory; empty: default_digest_cache_dir()
};

struct DigestResult {
  ModelDigest digest;
  bool from_cache = false;
  std::string cache_path;      // where it was read or written; empty when no cache was written
  DigestRun run;               // the hashing (zero when from the cache)
};

// The digest of the GGUF file or HF directory at `path`; the weights are opened only when
// no cache fits. Throws px::Error for a model that cannot be opened.
DigestResult model_digest(const std::string& path, const DigestOptions& options = {});
// The same with the weights already open (a node that has loaded the model).
DigestResult model_digest(const std::string& path, const WeightSource& weights, const DigestOptions& options = {});

// $XDG_CACHE_HOME/parallax, else $HOME/.cache/parallax; empty when neither is set.
std::string default_digest_cache_dir();
// The cache files of the model at `model_path` (which must exist): beside it, or in cache_dir.
std::string digest_cache_beside(const std::string& model_path);
std::string digest_cache_in(const std::string& cache_dir, const std::string& model_path);

}  // namespace px

#include "model/model_digest.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/sha256.h"
#include "core/thread_pool.h"
#include "model/model_config.h"
#include "model/tensor_names.h"
#include "model/weight_source.h"

namespace px {
namespace {

// Bytes per SHA-256 update: small enough for a smooth progress bar, large enough to cost
// nothing per call.
constexpr size_t kSliceBytes = size_t(8) << 20;

std::string float_bits(float v) { return fmt::format("f32:{:08x}", std::bit_cast<uint32_t>(v)); }

const char* arch_text(Arch a) {
  switch (a) {
    case Arch::Llama: return "llama";
    case Arch::Qwen2: return "qwen2";
    case Arch::Qwen3: return "qwen3";
  }
  return "unknown";
}

// One tensor to hash, and which part of the manifest it belongs to (-1: embedding/output).
struct TensorJob {
  std::string name;
  TensorRef ref;
  size_t bytes = 0;
  int part = -1;
  std::string digest;  // filled by the hashing threads
};

size_t tensor_bytes(const std::string& source, const std::string& name, const TensorRef& t) {
  if (t.dims.empty()) return row_bytes(t.type, 1);
  for (int64_t d : t.dims) {
    if (d < 0) fail("{}: tensor '{}' has a negative dimension", source, name);
  }
  const int64_t cols = t.dims[0];
  if (cols == 0) return 0;
  return row_bytes(t.type, cols) * size_t(t.elements() / cols);
}

// Every tensor the loader would read, in canonical order (layers, then the rest).
std::vector<TensorJob> collect_tensors(const WeightSource& weights) {
  std::vector<TensorJob> jobs;
  auto add = [&](const std::string& name, int part) {
    const std::optional<TensorRef> t = weights.find(name);
    if (!t) return;
    jobs.push_back({name, *t, tensor_bytes(weights.name(), name, *t), part, {}});
  };
  for (int l = 0; l < weights.config().n_layers; ++l) {
    for (const std::string& name : layer_tensor_names(l)) add(name, l);
  }
  for (const std::string& name : embedding_output_tensor_names()) add(name, -1);
  return jobs;
}

// SHA-256 of a header naming the tensor's name, type, shape and size, then its bytes.
std::string hash_tensor(const TensorJob& job, const std::function<void(uint64_t)>& progress) {
  Sha256 h;
  std::string header = fmt::format("tensor {}\ntype {}\ndims", job.name, uint32_t(job.ref.type));
  for (int64_t d : job.ref.dims) header += fmt::format(" {}", d);
  header += fmt::format("\nbytes {}\n", job.bytes);
  h.update(header);
  for (size_t done = 0; done < job.bytes;) {
    const size_t n = std::min(kSliceBytes, job.bytes - done);
    h.update(job.ref.data + done, n);
    done += n;
    if (progress) progress(n);
  }
  return to_hex(h.finish());
}

// A part's digest: its label and, in canonical order, each tensor's name and digest.
std::string hash_part(const std::string& label, const std::vector<const TensorJob*>& tensors) {
  Sha256 h;
  h.update(fmt::format("parallax-part v1 {}\n", label));
  for (const TensorJob* t : tensors) h.update(fmt::format("{} {}\n", t->name, t->digest));
  return to_hex(h.finish());
}

std::map<std::string, std::string> config_fields(const std::string& text) {
  std::map<std::string, std::string> fields;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    const size_t eq = line.find('=');
    if (eq != std::string::npos) fields[line.substr(0, eq)] = line.substr(eq + 1);
    start = end + 1;
  }
  return fields;
}

// A config value for people: floats decoded from their bit patterns.
std::string readable(const std::string& value) {
  if (value.size() == 12 && value.starts_with("f32:")) {
    try {
      return fmt::format("{}", std::bit_cast<float>(uint32_t(std::stoul(value.substr(4), nullptr, 16))));
    } catch (const std::exception&) {
    }
  }
  return value;
}

// "3", "3-5", "0, 3-5 and 7"
std::string describe_layers(const std::vector<int>& layers) {
  std::vector<std::string> runs;
  for (size_t i = 0; i < layers.size();) {
    size_t j = i;
    while (j + 1 < layers.size() && layers[j + 1] == layers[j] + 1) ++j;
    runs.push_back(i == j ? fmt::format("{}", layers[i]) : fmt::format("{}-{}", layers[i], layers[j]));
    i = j + 1;
  }
  std::string out;
  for (size_t i = 0; i < runs.size(); ++i) {
    if (i > 0) out += i + 1 == runs.size() ? " and " : ", ";
    out += runs[i];
  }
  return out;
}

}  // namespace

std::string canonical_config(const ModelConfig& c) {
  std::string out;
  auto line = [&](const char* key, const std::string& value) { out += fmt::format("{}={}\n", key, value); };
  line("arch", arch_text(c.arch));
  line("arch_name", c.arch_name);
  line("n_layers", std::to_string(c.n_layers));
  line("n_embd", std::to_string(c.n_embd));
  line("n_heads", std::to_string(c.n_heads));
  line("n_kv_heads", std::to_string(c.n_kv_heads));
  line("head_dim", std::to_string(c.head_dim));
  line("n_ff", std::to_string(c.n_ff));
  line("n_vocab", std::to_string(c.n_vocab));
  line("n_ctx_train", std::to_string(c.n_ctx_train));
  line("rms_eps", float_bits(c.rms_eps));
  line("rope_base", float_bits(c.rope_base));
  line("rope_linear_scale", float_bits(c.rope_linear_scale));
  line("rope_style", c.rope_style == RopeStyle::Neox ? "neox" : "norm");
  line("has_qkv_bias", c.has_qkv_bias ? "1" : "0");
  line("has_qk_norm", c.has_qk_norm ? "1" : "0");
  return out;
}

uint64_t digest_bytes(const WeightSource& weights) {
  uint64_t total = 0;
  for (const TensorJob& job : collect_tensors(weights)) total += job.bytes;
  return total;
}

ModelDigest digest_weights(const WeightSource& weights, ThreadPool* pool,
                           const std::function<void(uint64_t)>& progress, DigestRun* run) {
  const auto start = std::chrono::steady_clock::now();
  ModelConfig config = weights.config();
  std::vector<TensorJob> jobs = collect_tensors(weights);
  // The loader takes the vocabulary size from the embedding, whatever the metadata says.
  for (const TensorJob& job : jobs) {
    if (job.name == "token_embd.weight" && job.ref.dims.size() == 2) config.n_vocab = int(job.ref.dims[1]);
  }

  // Largest first, so that no big tensor starts last and leaves the other threads idle.
  std::vector<TensorJob*> order;
  uint64_t total = 0;
  for (TensorJob& job : jobs) order.push_back(&job), total += job.bytes;
  std::stable_sort(order.begin(), order.end(), [](const TensorJob* a, const TensorJob* b) { return a->bytes > b->bytes; });
  // Each thread takes the next tensor when it is done with one (parallel_for's contiguous
  // chunks would hand one thread all the largest).
  std::atomic<size_t> next{0};
  auto hash_queue = [&](int64_t, int64_t) {
    for (size_t i; (i = next.fetch_add(1)) < order.size();) order[i]->digest = hash_tensor(*order[i], progress);
  };
  if (pool && pool->size() > 1) {
    pool->parallel_for(pool->size(), 1, hash_queue);
  } else {
    hash_queue(0, 1);
  }

  ModelDigest d;
  d.config_text = canonical_config(config);
  d.config = sha256_hex(d.config_text);
  std::vector<std::vector<const TensorJob*>> layers(size_t(config.n_layers));
  std::vector<const TensorJob*> outer;
  for (const TensorJob& job : jobs) (job.part < 0 ? outer : layers[size_t(job.part)]).push_back(&job);
  for (int l = 0; l < config.n_layers; ++l) d.layers.push_back(hash_part(fmt::format("layer {}", l), layers[size_t(l)]));
  d.embedding_output = hash_part("embedding_output", outer);
  d.id = manifest_id(d);
  if (run) {
    run->bytes = total;
    run->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    run->threads = pool ? pool->size() : 1;
  }
  return d;
}

std::string describe_digest_difference(const ModelDigest& swarm, const ModelDigest& mine) {
  std::vector<std::string> parts;
  if (swarm.layers.size() != mine.layers.size()) {
    parts.push_back(fmt::format("the swarm's model has {} layers, this node's {}", swarm.layers.size(), mine.layers.size()));
  }
  std::vector<int> layers;
  for (size_t i = 0; i < std::min(swarm.layers.size(), mine.layers.size()); ++i) {
    if (swarm.layers[i] != mine.layers[i]) layers.push_back(int(i));
  }
  if (!layers.empty()) {
    const bool one = layers.size() == 1;
    parts.push_back(fmt::format("{} {} {} from the swarm's model", one ? "layer" : "layers", describe_layers(layers),
                                one ? "differs" : "differ"));
  }
  if (swarm.config != mine.config) {
    std::vector<std::string> keys;
    const auto a = config_fields(swarm.config_text), b = config_fields(mine.config_text);
    for (const auto& [key, value] : a) {
      const auto other = b.find(key);
      const std::string theirs = other == b.end() ? "absent" : readable(other->second);
      if (other == b.end() || other->second != value) keys.push_back(fmt::format("{} {} vs {}", key, readable(value), theirs));
    }
    for (const auto& [key, value] : b) {
      if (!a.contains(key)) keys.push_back(fmt::format("{} absent vs {}", key, readable(value)));
    }
    std::string list;
    for (const std::string& k : keys) list += (list.empty() ? "" : ", ") + k;
    parts.push_back(list.empty() ? "the config differs" : fmt::format("the config differs (swarm vs this node: {})", list));
  }
  if (swarm.embedding_output != mine.embedding_output) {
    parts.push_back("the embedding/output tensors differ");
  }
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

}  // namespace px

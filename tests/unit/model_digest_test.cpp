// A model's SHA-256 identity: what changes it (any weight byte, any config field) and what does
// not (the copy, the thread count), the per-layer manifest, and the cache beside the model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/sha256.h"
#include "core/thread_pool.h"
#include "model/gguf.h"
#include "model/hf_export.h"
#include "model/model_digest.h"
#include "model/model_digest_cache.h"
#include "model/synth.h"
#include "model/weight_source.h"
#include "unit/test_temp_dir.h"

namespace px {
namespace {

namespace fs = std::filesystem;

std::string write_model(const std::string& name, SynthSpec spec = {}) {
  if (spec.n_layers == 2) spec.n_layers = 4;
  const std::string path = test::temp_dir() + name;
  write_synthetic_model(spec, path);
  return path;
}

ModelDigest digest_of(const std::string& path, ThreadPool* pool = nullptr) {
  return digest_weights(*open_weights(path), pool);
}

DigestOptions no_cache() {
  DigestOptions o;
  o.use_cache = false;
  o.show_progress = false;
  o.cache_dir = test::temp_dir() + "unused-cache-dir";
  return o;
}

DigestOptions cached(const std::string& cache_dir) {
  DigestOptions o;
  o.show_progress = false;
  o.cache_dir = cache_dir;
  return o;
}

// Flips one bit of byte `at` of tensor `tensor` in the GGUF file.
void flip_byte(const std::string& path, const std::string& tensor, uint64_t at = 5) {
  uint64_t offset = 0;
  {
    const auto file = GgufFile::open(path);
    const GgufTensorInfo* t = file->find_tensor(tensor);
    ASSERT_NE(t, nullptr) << tensor;
    ASSERT_LT(at, t->n_bytes);
    offset = file->data_offset() + t->offset + at;
  }
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(std::streamoff(offset));
  char c = 0;
  f.read(&c, 1);
  c = char(c ^ 0x10);
  f.seekp(std::streamoff(offset));
  f.write(&c, 1);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text(const std::string& path, const std::string& text) {
  // Keeps the model's stamp honest: only the cache file is rewritten.
  std::ofstream(path, std::ios::trunc) << text;
}

TEST(ModelDigest, TheSameFileGivesTheSameIdAndACopyToo) {
  const std::string path = write_model("digest_same.gguf");
  const ModelDigest a = digest_of(path), b = digest_of(path);
  EXPECT_EQ(a.id, b.id);
  EXPECT_TRUE(is_sha256_hex(a.id)) << a.id;
  EXPECT_EQ(a.layers.size(), 4u);
  EXPECT_NO_THROW(check_digest(a));
  EXPECT_EQ(a.id, sha256_hex(canonical_manifest(a)));
  // Content-addressed: where the file lies does not matter.
  const std::string copy = test::temp_dir() + "digest_same_copy.gguf";
  fs::copy_file(path, copy, fs::copy_options::overwrite_existing);
  EXPECT_EQ(digest_of(copy).id, a.id);
  // Layers of one synthetic model have different weights, so different digests.
  EXPECT_NE(a.layers[0], a.layers[1]);
}

TEST(ModelDigest, OneFlippedByteChangesTheIdAndExactlyThatLayer) {
  const std::string path = write_model("digest_flip.gguf");
  const ModelDigest before = digest_of(path);
  flip_byte(path, "blk.2.ffn_up.weight");
  const ModelDigest after = digest_of(path);
  EXPECT_NE(after.id, before.id);
  for (int l = 0; l < 4; ++l) {
    if (l == 2) {
      EXPECT_NE(after.layers[l], before.layers[l]);
    } else {
      EXPECT_EQ(after.layers[l], before.layers[l]) << "layer " << l;
    }
  }
  EXPECT_EQ(after.config, before.config);
  EXPECT_EQ(after.embedding_output, before.embedding_output);
  EXPECT_EQ(describe_digest_difference(before, after), "layer 2 differs from the swarm's model");

  flip_byte(path, "output.weight", 100);
  const ModelDigest outer = digest_of(path);
  EXPECT_NE(outer.embedding_output, after.embedding_output);
  EXPECT_EQ(outer.layers, after.layers);
  EXPECT_NE(outer.id, after.id);
}

TEST(ModelDigest, AConfigFieldChangesTheIdButNotTheLayers) {
  SynthSpec spec;
  const ModelDigest base = digest_of(write_model("digest_cfg_a.gguf", spec));
  spec.rope_base = 500000.f;  // the same weights (seeded by tensor name), another RoPE
  const ModelDigest rope = digest_of(write_model("digest_cfg_b.gguf", spec));
  EXPECT_NE(rope.id, base.id);
  EXPECT_NE(rope.config, base.config);
  EXPECT_EQ(rope.layers, base.layers);
  EXPECT_EQ(rope.embedding_output, base.embedding_output);
  EXPECT_EQ(describe_digest_difference(base, rope),
            "the config differs (swarm vs this node: rope_base 10000 vs 500000)");

  spec.rope_base = 10000.f;
  spec.rms_eps = 1e-6f;
  EXPECT_NE(digest_of(write_model("digest_cfg_c.gguf", spec)).id, base.id);
}

TEST(ModelDigest, ParallelAndSingleThreadGiveTheSameDigests) {
  SynthSpec spec;
  spec.n_layers = 6;
  spec.type = DType::Q8_0;
  const std::string path = write_model("digest_threads.gguf", spec);
  ThreadPool one(1), four(4);
  const ModelDigest serial = digest_of(path);
  EXPECT_EQ(digest_of(path, &one).id, serial.id);
  const ModelDigest parallel = digest_of(path, &four);
  EXPECT_EQ(parallel.id, serial.id);
  EXPECT_EQ(parallel.layers, serial.layers);
  EXPECT_EQ(parallel.embedding_output, serial.embedding_output);
}

TEST(ModelDigest, DescribesWhichLayersDiffer) {
  ModelDigest a;
  a.config_text = "n_layers=8\nrms_eps=f32:3727c5ac\n";
  a.config = sha256_hex(a.config_text);
  a.embedding_output = std::string(64, 'e');
  for (int i = 0; i < 8; ++i) a.layers.push_back(std::string(64, 'a'));
  ModelDigest b = a;
  for (int i : {0, 3, 4, 5, 7}) b.layers[size_t(i)] = std::string(64, 'b');
  EXPECT_EQ(describe_digest_difference(a, b), "layers 0, 3-5 and 7 differ from the swarm's model");
  EXPECT_EQ(describe_digest_difference(a, a), "");
  b = a;
  b.layers.pop_back();
  b.embedding_output = std::string(64, 'f');
  EXPECT_EQ(describe_digest_difference(a, b),
            "the swarm's model has 8 layers, this node's 7; the embedding/output tensors differ");
}

TEST(ModelDigest, CheckRejectsInconsistentDigests) {
  const ModelDigest good = digest_of(write_model("digest_check.gguf"));
  ModelDigest bad = good;
  bad.layers[1] = std::string(64, '0');
  EXPECT_THROW(check_digest(bad), Error);  // the id no longer matches its manifest
  bad = good;
  bad.config_text += "x=1\n";
  EXPECT_THROW(check_digest(bad), Error);
  bad = good;
  bad.id[3] = 'G';
  EXPECT_THROW(check_digest(bad), Error);
}

TEST(ModelDigestCache, TheSecondCallReadsTheCacheBesideTheModel) {
  const std::string path = write_model("digest_cache.gguf");
  const DigestResult first = model_digest(path, cached(test::temp_dir() + "cache-a"));
  EXPECT_FALSE(first.from_cache);
  EXPECT_GT(first.run.bytes, 0u);
  EXPECT_EQ(first.cache_path, fs::canonical(path).string() + ".parallax-digest.json");
  EXPECT_TRUE(fs::exists(first.cache_path));
  const DigestResult second = model_digest(path, cached(test::temp_dir() + "cache-a"));
  EXPECT_TRUE(second.from_cache);
  EXPECT_EQ(second.run.bytes, 0u);
  EXPECT_EQ(second.digest.id, first.digest.id);
  EXPECT_EQ(second.digest.layers, first.digest.layers);
  EXPECT_EQ(first.digest.id, digest_of(path).id);
  // --no-cache hashes again.
  EXPECT_FALSE(model_digest(path, no_cache()).from_cache);
}

TEST(ModelDigestCache, IsUsedWhileSizeAndMtimeMatchAndIgnoredOnceTheyDoNot) {
  const std::string path = write_model("digest_stamp.gguf");
  const DigestResult first = model_digest(path, cached(test::temp_dir() + "cache-b"));
  // A consistent but different digest in the cache: used as is while the stamp matches, which
  // shows the second call did not read the weights.
  nlohmann::json j = nlohmann::json::parse(read_text(first.cache_path));
  ModelDigest forged = first.digest;
  forged.layers[0] = std::string(64, 'c');
  forged.id = manifest_id(forged);
  j["layers"] = forged.layers;
  j["id"] = forged.id;
  write_text(first.cache_path, j.dump());
  const DigestResult reused = model_digest(path, cached(test::temp_dir() + "cache-b"));
  EXPECT_TRUE(reused.from_cache);
  EXPECT_EQ(reused.digest.id, forged.id);

  // Another mtime: the cache is stale, the weights are hashed and the cache rewritten.
  fs::last_write_time(path, fs::last_write_time(path) + std::chrono::seconds(3));
  const DigestResult again = model_digest(path, cached(test::temp_dir() + "cache-b"));
  EXPECT_FALSE(again.from_cache);
  EXPECT_EQ(again.digest.id, first.digest.id);
  EXPECT_EQ(nlohmann::json::parse(read_text(first.cache_path))["id"], first.digest.id);
  EXPECT_TRUE(model_digest(path, cached(test::temp_dir() + "cache-b")).from_cache);
}

TEST(ModelDigestCache, ACorruptOrInconsistentCacheIsIgnoredAndRewritten) {
  const std::string path = write_model("digest_corrupt.gguf");
  const DigestResult first = model_digest(path, cached(test::temp_dir() + "cache-c"));
  const std::string good = read_text(first.cache_path);
  for (const std::string& bad : {std::string("{ not json"), std::string(""), std::string("[1, 2]"),
                                 std::string(R"({"format": "parallax-model-digest/1"})")}) {
    write_text(first.cache_path, bad);
    const DigestResult r = model_digest(path, cached(test::temp_dir() + "cache-c"));
    EXPECT_FALSE(r.from_cache) << bad;
    EXPECT_EQ(r.digest.id, first.digest.id) << bad;
    EXPECT_EQ(nlohmann::json::parse(read_text(first.cache_path))["id"], first.digest.id) << "rewritten";
  }
  // Valid JSON with a matching stamp, but a layer digest that does not give its id.
  nlohmann::json j = nlohmann::json::parse(good);
  j["layers"][1] = std::string(64, '0');
  write_text(first.cache_path, j.dump());
  const DigestResult r = model_digest(path, cached(test::temp_dir() + "cache-c"));
  EXPECT_FALSE(r.from_cache);
  EXPECT_EQ(r.digest.layers, first.digest.layers);
  // A cache of another model's path is not this model's.
  j = nlohmann::json::parse(good);
  j["model"] = "/elsewhere/model.gguf";
  write_text(first.cache_path, j.dump());
  EXPECT_FALSE(model_digest(path, cached(test::temp_dir() + "cache-c")).from_cache);
}

TEST(ModelDigestCache, FallsBackToTheCacheDirectoryWhenBesideCannotBeWritten) {
  const std::string path = write_model("digest_fallback.gguf");
  const std::string cache_dir = test::temp_dir() + "cache-d/nested";
  // A directory where the cache file would go: no write there can succeed, even as root.
  fs::create_directories(fs::canonical(path).string() + ".parallax-digest.json");
  const DigestResult first = model_digest(path, cached(cache_dir));
  EXPECT_FALSE(first.from_cache);
  EXPECT_EQ(first.cache_path, digest_cache_in(cache_dir, path));
  EXPECT_EQ(fs::path(first.cache_path).parent_path(), fs::path(cache_dir));
  EXPECT_TRUE(fs::exists(first.cache_path));
  const DigestResult second = model_digest(path, cached(cache_dir));
  EXPECT_TRUE(second.from_cache);
  EXPECT_EQ(second.cache_path, first.cache_path);
  EXPECT_EQ(second.digest.id, first.digest.id);

  // Nowhere to write: the digest still comes back, uncached.
  const std::string blocked = test::temp_dir() + "cache-d/a-file";
  write_text(blocked, "x");
  const DigestResult nowhere = model_digest(path, cached(blocked + "/sub"));
  EXPECT_FALSE(nowhere.from_cache);
  EXPECT_TRUE(nowhere.cache_path.empty());
  EXPECT_EQ(nowhere.digest.id, first.digest.id);
}

TEST(ModelDigestCache, FallsBackWhenTheModelDirectoryIsReadOnly) {
  if (::geteuid() == 0) GTEST_SKIP() << "root writes into read-only directories";
  const std::string dir = test::temp_dir() + "digest_readonly";
  fs::create_directories(dir);
  const std::string path = dir + "/model.gguf";
  write_synthetic_model(SynthSpec{}, path);
  fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec);
  const DigestResult r = model_digest(path, cached(test::temp_dir() + "cache-e"));
  fs::permissions(dir, fs::perms::owner_all);
  EXPECT_EQ(r.cache_path, digest_cache_in(test::temp_dir() + "cache-e", path));
}

TEST(ModelDigestCache, TheDefaultDirectoryFollowsXdgCacheHomeThenHome) {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::string saved_xdg = xdg ? xdg : "", saved_home = home ? home : "";
  ::setenv("XDG_CACHE_HOME", "/x/cache", 1);
  EXPECT_EQ(default_digest_cache_dir(), "/x/cache/parallax");
  ::unsetenv("XDG_CACHE_HOME");
  ::setenv("HOME", "/home/someone", 1);
  EXPECT_EQ(default_digest_cache_dir(), "/home/someone/.cache/parallax");
  if (xdg) ::setenv("XDG_CACHE_HOME", saved_xdg.c_str(), 1);
  if (home) ::setenv("HOME", saved_home.c_str(), 1);
}

TEST(ModelDigestCache, AnHfDirectoryKeepsItsCacheInsideAndWatchesEveryFile) {
  const std::string gguf = write_model("digest_hf.gguf");
  const std::string dir = test::temp_dir() + "digest_hf";
  write_hf_model(*GgufFile::open(gguf), dir, DType::F32);
  const DigestResult first = model_digest(dir, cached(test::temp_dir() + "cache-f"));
  EXPECT_FALSE(first.from_cache);
  EXPECT_EQ(first.cache_path, fs::canonical(dir).string() + "/parallax-digest.json");
  EXPECT_EQ(first.digest.layers.size(), 4u);
  EXPECT_TRUE(model_digest(dir, cached(test::temp_dir() + "cache-f")).from_cache);
  // What the loader reads differs (HF's Q/K row order, NEOX RoPE), so does the identity.
  EXPECT_NE(first.digest.id, digest_of(gguf).id);
  // A new file in the directory makes the cache stale.
  write_text(dir + "/README.md", "hello");
  const DigestResult again = model_digest(dir, cached(test::temp_dir() + "cache-f"));
  EXPECT_FALSE(again.from_cache);
  EXPECT_EQ(again.digest.id, first.digest.id);
}

}  // namespace
}  // namespace px

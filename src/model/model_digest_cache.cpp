#include "model/model_digest_cache.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>

#include "core/error.h"
#include "core/file_write.h"
#include "core/progress_bar.h"
#include "core/sha256.h"
#include "model/hf_json.h"
#include "model/weight_source.h"

namespace px {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kFormat = "parallax-model-digest/1";
constexpr const char* kCacheName = "parallax-digest.json";
constexpr const char* kCacheSuffix = ".parallax-digest.json";
constexpr size_t kMaxCacheBytes = size_t(16) << 20;   // 4096 layers need ~0.4 MB
constexpr uint64_t kProgressBarBytes = uint64_t(512) << 20;  // smaller models hash in well under a second

struct FileStamp {
  std::string name;
  int64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

FileStamp stamp_file(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail("{}: cannot stat: {}", path.string(), errno_text(errno));
  return {path.filename().string(), int64_t(st.st_size), int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

// What the cache must match: the GGUF file, or every file at the top of the HF directory
// (sorted by name) except the caches themselves and their temporary files.
std::vector<FileStamp> stamp_model(const fs::path& model) {
  if (!fs::is_directory(model)) return {stamp_file(model)};
  std::vector<FileStamp> stamps;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(model, ec)) {
    if (!entry.is_regular_file() || entry.path().filename().string().starts_with(kCacheName)) continue;
    stamps.push_back(stamp_file(entry.path()));
  }
  if (ec) fail("{}: cannot list the directory: {}", model.string(), ec.message());
  std::sort(stamps.begin(), stamps.end(), [](const FileStamp& a, const FileStamp& b) { return a.name < b.name; });
  return stamps;
}

json stamps_json(const std::vector<FileStamp>& stamps) {
  json files = json::array();
  for (const FileStamp& s : stamps) files.push_back({{"name", s.name}, {"size", s.size}, {"mtime_ns", s.mtime_ns}});
  return files;
}

// The cached digest when `cache` records exactly this model as it is now; otherwise nullopt,
// with the reason logged.
std::optional<ModelDigest> read_cache(const std::string& cache, const std::string& model,
                                      const std::vector<FileStamp>& stamps) {
  std::error_code ec;
  if (!fs::exists(cache, ec)) return std::nullopt;
  try {
    const json j = parse_strict_json(read_small_file(cache, kMaxCacheBytes, "digest cache"), cache, "digest cache", 8);
    if (j.value("format", "") != kFormat) fail("not a {} file", kFormat);
    if (j.at("model").get<std::string>() != model) fail("it describes another model path");
    if (j.at("files") != stamps_json(stamps)) {
      spdlog::info("digest cache {} is stale (the model's files changed): hashing again", cache);
      return std::nullopt;
    }
    ModelDigest d;
    d.id = j.at("id").get<std::string>();
    d.config = j.at("config").get<std::string>();
    d.config_text = j.at("config_text").get<std::string>();
    d.layers = j.at("layers").get<std::vector<std::string>>();
    d.embedding_output = j.at("embedding_output").get<std::string>();
    check_digest(d);
    return d;
  } catch (const std::exception& e) {
    spdlog::warn("ignoring digest cache {}: {}", cache, e.what());
    return std::nullopt;
  }
}

void write_cache(const std::string& cache, const std::string& model, const std::vector<FileStamp>& stamps,
                 const ModelDigest& d, const DigestRun& run) {
  const json j = {{"format", kFormat},
                  {"model", model},
                  {"files", stamps_json(stamps)},
                  {"id", d.id},
                  {"config", d.config},
                  {"config_text", d.config_text},
                  {"layers", d.layers},
                  {"embedding_output", d.embedding_output},
                  {"hashed_bytes", run.bytes},
                  {"hashed_seconds", run.seconds}};
  const std::string text = j.dump(2) + "\n";
  write_file_atomically(cache, [&](const WriteBytes& put) { put(text.data(), text.size()); });
}

std::string absolute_model_path(const std::string& path) {
  std::error_code ec;
  const fs::path p = fs::canonical(path, ec);
  if (ec) fail("{}: {}", path, ec.message());
  return p.string();
}

DigestResult digest_model(const std::string& path, const WeightSource* open, const DigestOptions& options) {
  const std::string model = absolute_model_path(path);
  const std::vector<FileStamp> stamps = stamp_model(model);
  const std::string cache_dir = options.cache_dir.empty() ? default_digest_cache_dir() : options.cache_dir;
  std::vector<std::string> caches = {digest_cache_beside(model)};
  if (!cache_dir.empty()) caches.push_back(digest_cache_in(cache_dir, model));

  DigestResult result;
  if (options.use_cache) {
    for (const std::string& cache : caches) {
      if (std::optional<ModelDigest> d = read_cache(cache, model, stamps)) {
        result.digest = std::move(*d);
        result.from_cache = true;
        result.cache_path = cache;
        return result;
      }
    }
  }

  std::shared_ptr<const WeightSource> opened;
  if (!open) opened = open_weights(path), open = opened.get();
  {
    const uint64_t total = digest_bytes(*open);
    ProgressBar bar("hashing " + fs::path(model).filename().string(), total,
                    options.show_progress && total >= kProgressBarBytes);
    std::function<void(uint64_t)> progress;
    if (bar.active()) progress = [&](uint64_t n) { bar.add(n); };
    result.digest = digest_weights(*open, options.pool, progress, &result.run);
  }
  if (stamp_model(model) != stamps) {
    spdlog::warn("{} changed while it was hashed: its digest is not cached", model);
    return result;
  }
  for (const std::string& cache : caches) {
    try {
      if (cache != caches.front()) fs::create_directories(cache_dir);
      write_cache(cache, model, stamps, result.digest, result.run);
      result.cache_path = cache;
      return result;
    } catch (const std::exception& e) {
      spdlog::info("cannot write the digest cache {}: {}", cache, e.what());
    }
  }
  spdlog::warn("the digest of {} could not be cached (it will be hashed again next time)", model);
  return result;
}

}  // namespace

std::string default_digest_cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return (fs::path(xdg) / "parallax").string();
  if (const char* home = std::getenv("HOME"); home && *home) return (fs::path(home) / ".cache" / "parallax").string();
  return {};
}

std::string digest_cache_beside(const std::string& model_path) {
  const std::string model = absolute_model_path(model_path);
  if (fs::is_directory(model)) return (fs::path(model) / kCacheName).string();
  return model + kCacheSuffix;
}

std::string digest_cache_in(const std::string& cache_dir, const std::string& model_path) {
  // The name keeps the model's for people; the hash of its absolute path keeps models apart.
  const std::string model = absolute_model_path(model_path);
  const std::string key = sha256_hex(model).substr(0, 16);
  return (fs::path(cache_dir) / (fs::path(model).filename().string() + "-" + key + kCacheSuffix)).string();
}

DigestResult model_digest(const std::string& path, const DigestOptions& options) {
  return digest_model(path, nullptr, options);
}

DigestResult model_digest(const std::string& path, const WeightSource& weights, const DigestOptions& options) {
  return digest_model(path, &weights, options);
}

}  // namespace px

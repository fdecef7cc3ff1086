#include "runtime/batch_engine.h"

#include <algorithm>
#include <filesystem>

#include "core/thread_pool.h"
#include "runtime/loaded_model.h"

namespace px {

StageConfig stage_config(const BatchEngineConfig& c) {
  StageConfig s;
  s.scheduler = c.scheduler;
  s.context_size = c.context_size;
  s.kv_cache_tokens = c.kv_cache_tokens;
  s.kv_block_size = c.kv_block_size;
  s.prefix_caching = c.prefix_caching;
  return s;
}

BatchEngine::BatchEngine(std::shared_ptr<const ModelShard> shard, std::shared_ptr<const Tokenizer> tokenizer,
                         ThreadPool& pool, BatchEngineConfig config, std::string model_id)
    : BatchEngine(std::vector{std::move(shard)}, std::move(tokenizer), std::vector{&pool}, config,
                  std::move(model_id)) {}

BatchEngine::BatchEngine(std::vector<std::shared_ptr<const ModelShard>> shards,
                         std::shared_ptr<const Tokenizer> tokenizer, std::vector<ThreadPool*> pools,
                         BatchEngineConfig config, std::string model_id) {
  if (shards.empty()) fail("an engine needs at least one shard");
  HeadConfig head;
  head.context_size = config.context_size;
  head.n_vocab = shards.front()->config().n_vocab;
  head.max_queue = config.max_queue;
  head_ = std::make_unique<RequestHead>(std::move(tokenizer), head, std::move(model_id));
  pipeline_ = std::make_unique<LocalPipeline>(std::move(shards), std::move(pools), stage_config(config), *head_);
  head_->connect(*pipeline_);
}

BatchEngine::~BatchEngine() {
  head_->shutdown();  // streams end; what the stages still send is ignored
  pipeline_.reset();
  head_.reset();
}

std::unique_ptr<BatchEngine> BatchEngine::load(const std::string& path, BatchEngineConfig config,
                                               std::string model_id) {
  LoadedModel loaded = LoadedModel::open(path);
  const ModelConfig& model = loaded.shard->config();
  config.context_size = std::min(config.context_size, model.n_ctx_train);
  if (config.kv_cache_mb > 0) {
    const int64_t bytes_per_token = int64_t(2) * model.n_layers * model.kv_dim() * int64_t(sizeof(float));
    config.kv_cache_tokens = (config.kv_cache_mb << 20) / bytes_per_token;
  }
  if (model_id.empty()) model_id = std::filesystem::path(path).filename().string();
  auto pool = std::make_unique<ThreadPool>(config.n_threads);
  auto engine = std::make_unique<BatchEngine>(std::move(loaded.shard), std::move(loaded.tokenizer), *pool, config,
                                              std::move(model_id));
  engine->owned_pool_ = std::move(pool);
  return engine;
}

}  // namespace px

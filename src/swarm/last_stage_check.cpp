#include "swarm/last_stage_check.h"

#include "core/error.h"
#include "model/model_shard.h"
#include "runtime/stage_replay.h"

namespace px::swarm {

LastStageFinding check_sampled_tokens(std::shared_ptr<const ModelShard> shard, std::span<const int32_t> tokens,
                                      const std::vector<std::vector<float>>& inputs,
                                      std::span<const SampledClaim> claims, const SamplingParams& sampling,
                                      uint64_t stream_id, double margin, ThreadPool& pool) {
  LastStageFinding finding;
  if (claims.empty()) return finding;
  if (inputs.empty()) fail("check_sampled_tokens: no candidate input");
  int previous = 0;
  for (const SampledClaim& c : claims) {
    if (c.position <= previous || c.position > int(tokens.size()))
      fail("check_sampled_tokens: claim at position {} is not ascending within the {} tokens", c.position, tokens.size());
    previous = c.position;
  }
  // Rows [0, n) reach every claim; the last claim's token is sampled from row n - 1.
  const int n = claims.back().position;
  const size_t width = size_t(shard->config().n_embd);
  const std::span<const int32_t> prefix = tokens.first(size_t(n));
  Sampler sampler(sampling);

  std::vector<size_t> open(claims.size());  // claims no input explains exactly yet
  for (size_t i = 0; i < open.size(); ++i) open[i] = i;
  std::vector<bool> near(claims.size(), false);
  std::vector<int32_t> expected(claims.size(), -1);
  std::vector<float> boosted;
  for (const std::vector<float>& input : inputs) {
    if (open.empty()) break;
    std::span<const float> rows_in;
    if (!shard->is_first()) {
      if (input.size() < size_t(n) * width) fail("check_sampled_tokens: an input of {} values for {} rows", input.size(), n);
      rows_in = std::span<const float>(input).first(size_t(n) * width);
    }
    std::vector<int> rows;
    for (size_t i : open) rows.push_back(claims[i].position - 1);
    const std::vector<float> logits = replay_logits(shard, prefix, rows_in, pool, rows);
    const size_t vocab = logits.size() / rows.size();
    std::vector<size_t> still_open;
    for (size_t r = 0; r < open.size(); ++r) {
      const SampledClaim& c = claims[open[r]];
      const std::span<const float> row(logits.data() + r * vocab, vocab);
      const std::span<const int32_t> history = tokens.first(size_t(c.position));
      const int32_t token = sampler.sample(row, history, uint64_t(c.position), stream_id);
      if (expected[open[r]] < 0) expected[open[r]] = token;
      if (token == c.token) continue;
      if (c.token >= 0 && size_t(c.token) < vocab && !near[open[r]]) {
        boosted.assign(row.begin(), row.end());
        boosted[size_t(c.token)] += float(margin);
        near[open[r]] = sampler.sample(boosted, history, uint64_t(c.position), stream_id) == c.token;
      }
      still_open.push_back(open[r]);
    }
    open = std::move(still_open);
  }
  finding.checked = int(claims.size());
  for (size_t i : open) {
    if (near[i]) {
      ++finding.near_ties;
    } else if (finding.position < 0) {
      finding.position = claims[i].position;
      finding.claimed = claims[i].token;
      finding.expected = expected[i];
    }
  }
  return finding;
}

}  // namespace px::swarm

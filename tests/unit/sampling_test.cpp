#include "sampling/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"

namespace px {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Parameters with every filter and penalty off, so a test turns on only what it checks.
SamplingParams plain(float temperature) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repetition_penalty = 1.0f;
  p.presence_penalty = 0.0f;
  p.frequency_penalty = 0.0f;
  p.seed = 1234;
  return p;
}

// Deterministic pseudo-random logits in [-8, 8), independent of the code under test.
std::vector<float> test_logits(size_t n, uint32_t salt) {
  std::vector<float> logits(n);
  uint32_t state = 2463534242u ^ salt;
  for (float& x : logits) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    x = static_cast<float>(state % 16000u) / 1000.0f - 8.0f;
  }
  return logits;
}

std::vector<double> softmax(const std::vector<float>& logits, double temperature) {
  const double max = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) sum += p[i] = std::exp((logits[i] - max) / temperature);
  for (double& x : p) x /= sum;
  return p;
}

// How often each token is drawn at positions [0, draws).
std::vector<int> histogram(Sampler& sampler, const std::vector<float>& logits, int draws,
                           const std::vector<int32_t>& history = {}) {
  std::vector<int> counts(logits.size(), 0);
  for (int pos = 0; pos < draws; ++pos) {
    const int32_t token = sampler.sample(logits, history, static_cast<uint64_t>(pos));
    EXPECT_GE(token, 0);
    EXPECT_LT(token, static_cast<int32_t>(logits.size()));
    ++counts[static_cast<size_t>(token)];
  }
  return counts;
}

// Penalized logits as the sampler sees them, recovered from greedy logprobs (temperature 1):
// log-softmax differences equal logit differences.
std::vector<float> penalized_minus_first(Sampler& sampler, const std::vector<float>& logits,
                                         const std::vector<int32_t>& history) {
  SampleInfo info;
  sampler.sample(logits, history, 0, 0, &info, static_cast<int32_t>(logits.size()));
  std::vector<float> relative(logits.size());
  float first = 0.0f;
  for (const TokenLogprob& t : info.top)
    if (t.token == 0) first = t.logprob;
  for (const TokenLogprob& t : info.top) relative[static_cast<size_t>(t.token)] = t.logprob - first;
  return relative;
}

// ---- counter_uniform -----------------------------------------------------------------------

TEST(CounterUniform, StaysInUnitIntervalWithUniformMeanAndVariance) {
  const int n = 100000;
  double sum = 0.0, sum_sq = 0.0;
  std::vector<int> buckets(10, 0);
  for (int i = 0; i < n; ++i) {
    const double u = counter_uniform(42, 7, static_cast<uint64_t>(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    sum_sq += u * u;
    ++buckets[static_cast<size_t>(u * 10)];
  }
  const double mean = sum / n;
  const double variance = sum_sq / n - mean * mean;
  // Standard error of the mean is 0.29 / sqrt(n) ~ 0.0009; allow about 5 of them.
  EXPECT_NEAR(mean, 0.5, 0.005);
  EXPECT_NEAR(variance, 1.0 / 12.0, 0.002);
  double chi2 = 0.0;
  for (int b : buckets) chi2 += (b - n / 10.0) * (b - n / 10.0) / (n / 10.0);
  EXPECT_LT(chi2, 27.88);  // 9 degrees of freedom, p = 0.001
}

TEST(CounterUniform, DependsOnlyOnItsArguments) {
  for (uint64_t pos = 0; pos < 100; ++pos)
    EXPECT_EQ(counter_uniform(3, 5, pos), counter_uniform(3, 5, pos));
}

TEST(CounterUniform, EachKeyChangesTheValue) {
  int same_seed = 0, same_stream = 0, same_position = 0, swapped = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    const double u = counter_uniform(i, i + 1, i + 2);
    same_seed += u == counter_uniform(i + 1, i + 1, i + 2);
    same_stream += u == counter_uniform(i, i + 2, i + 2);
    same_position += u == counter_uniform(i, i + 1, i + 3);
    swapped += u == counter_uniform(i + 2, i + 1, i);
  }
  EXPECT_EQ(same_seed, 0);
  EXPECT_EQ(same_stream, 0);
  EXPECT_EQ(same_position, 0);
  EXPECT_EQ(swapped, 0);
}

TEST(CounterUniform, AdjacentPositionsAreUncorrelated) {
  const int n = 100000;
  double sum_xy = 0.0;
  for (int i = 0; i < n; ++i)
    sum_xy += (counter_uniform(9, 0, uint64_t(i)) - 0.5) * (counter_uniform(9, 0, uint64_t(i) + 1) - 0.5);
  // Correlation estimate = sum_xy / n / (1/12); its standard error is 1 / sqrt(n) ~ 0.003.
  EXPECT_NEAR(sum_xy / n * 12.0, 0.0, 0.016);
}

// ---- validate ------------------------------------------------------------------------------

TEST(SamplingParams, DefaultsAndPlainParamsAreValid) {
  EXPECT_NO_THROW(SamplingParams{}.validate());
  EXPECT_NO_THROW(plain(0.0f).validate());
  EXPECT_NO_THROW(plain(1.0f).validate());
}

TEST(SamplingParams, ValidateRejectsEachBadParameterByName) {
  struct Case {
    std::string name;
    std::function<void(SamplingParams&)> spoil;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<Case> cases = {
      {"temperature", [](SamplingParams& p) { p.temperature = -0.1f; }},
      {"temperature", [&](SamplingParams& p) { p.temperature = nan; }},
      {"temperature", [](SamplingParams& p) { p.temperature = kInf; }},
      {"top_k", [](SamplingParams& p) { p.top_k = -1; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 0.0f; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 1.01f; }},
      {"top_p", [&](SamplingParams& p) { p.top_p = nan; }},
      {"min_p", [](SamplingParams& p) { p.min_p = -0.01f; }},
      {"min_p", [](SamplingParams& p) { p.min_p = 1.5f; }},
      {"min_p", [&](SamplingParams& p) { p.min_p = nan; }},
      {"repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = 0.0f; }},
      {"repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = -1.0f; }},
      {"repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = kInf; }},
      {"presence_penalty", [](SamplingParams& p) { p.presence_penalty = 2.5f; }},
      {"presence_penalty", [](SamplingParams& p) { p.presence_penalty = -2.5f; }},
      {"presence_penalty", [&](SamplingParams& p) { p.presence_penalty = nan; }},
      {"frequency_penalty", [](SamplingParams& p) { p.frequency_penalty = 2.01f; }},
      {"frequency_penalty", [](SamplingParams& p) { p.frequency_penalty = -kInf; }},
      {"penalty_last_n", [](SamplingParams& p) { p.penalty_last_n = -2; }},
  };
  for (const Case& c : cases) {
    SamplingParams p;
    c.spoil(p);
    try {
      p.validate();
      ADD_FAILURE() << "validate accepted a bad " << c.name;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(c.name), std::string::npos) << e.what();
    }
    EXPECT_THROW(Sampler{p}, Error) << c.name;
  }
}

TEST(SamplingParams, ValidateAcceptsRangeBoundaries) {
  SamplingParams p = plain(0.0f);
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  p.presence_penalty = -2.0f;
  p.frequency_penalty = 2.0f;
  p.penalty_last_n = -1;
  EXPECT_NO_THROW(p.validate());
}

// ---- greedy --------------------------------------------------------------------------------

TEST(Sampler, GreedyIsExactArgmax) {
  Sampler sampler(plain(0.0f));
  for (uint32_t salt = 0; salt < 20; ++salt) {
    const auto logits = test_logits(1000, salt);
    const auto expected = std::max_element(logits.begin(), logits.end()) - logits.begin();
    EXPECT_EQ(sampler.sample(logits, {}, salt), expected);
  }
}

TEST(Sampler, GreedyBreaksTiesToLowestId) {
  Sampler sampler(plain(0.0f));
  EXPECT_EQ(sampler.sample(std::vector<float>{1.0f, 3.0f, 2.0f, 3.0f, 3.0f}, {}, 0), 1);
  EXPECT_EQ(sampler.sample(std::vector<float>{-kInf, 0.5f, 0.5f}, {}, 0), 1);
}

TEST(Sampler, TopKOneEqualsGreedy) {
  SamplingParams p = plain(1.5f);
  p.top_k = 1;
  Sampler sampler(p), greedy(plain(0.0f));
  for (uint32_t pos = 0; pos < 200; ++pos) {
    const auto logits = test_logits(300, pos);
    EXPECT_EQ(sampler.sample(logits, {}, pos), greedy.sample(logits, {}, pos));
  }
  // Ties among the maxima go to the lowest id as in greedy.
  EXPECT_EQ(sampler.sample(std::vector<float>{0.0f, 2.0f, 2.0f}, {}, 0), 1);
}

TEST(Sampler, TinyTopPEqualsGreedy) {
  SamplingParams p = plain(1.0f);
  p.top_p = 1e-6f;
  Sampler sampler(p), greedy(plain(0.0f));
  for (uint32_t pos = 0; pos < 200; ++pos) {
    const auto logits = test_logits(300, pos + 1000);
    EXPECT_EQ(sampler.sample(logits, {}, pos), greedy.sample(logits, {}, pos));
  }
}

// ---- filters -------------------------------------------------------------------------------

// Temperature 1 probabilities of about {0.50, 0.30, 0.15, 0.05}.
const std::vector<float> kFourTokens = {std::log(0.50f), std::log(0.30f), std::log(0.15f),
                                        std::log(0.05f)};

TEST(Sampler, TopKKeepsOnlyTheKLargestLogits) {
  const auto logits = test_logits(1000, 77);
  std::vector<int32_t> order(logits.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  const std::set<int32_t> top5(order.begin(), order.begin() + 5);

  SamplingParams p = plain(100.0f);  // nearly uniform before the cut
  p.top_k = 5;
  Sampler sampler(p);
  std::set<int32_t> seen;
  for (uint64_t pos = 0; pos < 500; ++pos) {
    const int32_t token = sampler.sample(logits, {}, pos);
    EXPECT_TRUE(top5.count(token)) << token;
    seen.insert(token);
  }
  EXPECT_EQ(seen, top5);
}

TEST(Sampler, TopPKeepsSmallestPrefixReachingTheMass) {
  SamplingParams p = plain(1.0f);
  p.top_p = 0.75f;  // 0.50 < 0.75 <= 0.80: tokens 0 and 1
  Sampler sampler(p);
  const auto counts = histogram(sampler, kFourTokens, 2000);
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_EQ(counts[2], 0);
  EXPECT_EQ(counts[3], 0);
  // Renormalized over {0, 1}: 0.5 / 0.8 = 0.625.
  EXPECT_NEAR(counts[0] / 2000.0, 0.625, 0.05);
}

TEST(Sampler, MinPDropsTokensBelowFractionOfTheMostLikely) {
  SamplingParams p = plain(1.0f);
  p.min_p = 0.2f;  // threshold 0.10: token 3 (0.05) goes
  Sampler sampler(p);
  auto counts = histogram(sampler, kFourTokens, 3000);
  EXPECT_GT(counts[2], 0);
  EXPECT_EQ(counts[3], 0);

  p.min_p = 0.7f;  // threshold 0.35: only token 0 stays
  Sampler strict(p);
  counts = histogram(strict, kFourTokens, 500);
  EXPECT_EQ(counts[0], 500);
}

TEST(Sampler, NegativeInfinityLogitsAreNeverDrawn) {
  Sampler sampler(plain(1.0f));
  const std::vector<float> logits = {0.0f, -kInf, 0.0f, -kInf};
  const auto counts = histogram(sampler, logits, 1000);
  EXPECT_EQ(counts[1] + counts[3], 0);
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[2], 0);
}

// ---- distribution and determinism -------------------------------------------------------------

// Pearson chi-square of `counts` against `probs`; 3 degrees of freedom for four tokens.
double chi_square(const std::vector<int>& counts, const std::vector<double>& probs, int draws) {
  double chi2 = 0.0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double expected = probs[i] * draws;
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi2;
}

TEST(Sampler, EmpiricalDistributionMatchesSoftmax) {
  const std::vector<float> logits = {1.0f, 0.5f, 0.0f, -1.0f};
  const int draws = 10000;
  for (float temperature : {1.0f, 0.5f, 2.0f}) {
    Sampler sampler(plain(temperature));
    const auto counts = histogram(sampler, logits, draws);
    const auto probs = softmax(logits, temperature);
    EXPECT_LT(chi_square(counts, probs, draws), 16.27) << "temperature " << temperature;  // p=0.001
    for (size_t i = 0; i < logits.size(); ++i)
      EXPECT_NEAR(counts[i] / double(draws), probs[i], 0.02) << "token " << i;
  }
}

TEST(Sampler, SameSeedStreamAndPositionGiveSameToken) {
  SamplingParams p = plain(1.0f);
  Sampler a(p), b(p);
  const auto logits = test_logits(50, 3);
  for (uint64_t pos = 0; pos < 300; ++pos) {
    const int32_t first = a.sample(logits, {}, pos, 11);
    EXPECT_EQ(first, b.sample(logits, {}, pos, 11));
    EXPECT_EQ(first, a.sample(logits, {}, pos, 11));  // no hidden state between calls
  }
}

TEST(Sampler, DifferentPositionsSeedsAndStreamsDrawDifferentTokens) {
  const std::vector<float> uniform(8, 0.0f);
  Sampler sampler(plain(1.0f));
  const auto counts = histogram(sampler, uniform, 1000);
  for (int c : counts) EXPECT_GT(c, 60);  // expected 125 each

  SamplingParams other_seed = plain(1.0f);
  other_seed.seed = 99;
  Sampler reseeded(other_seed);
  int same_seed_match = 0, same_stream_match = 0;
  for (uint64_t pos = 0; pos < 1000; ++pos) {
    const int32_t base = sampler.sample(uniform, {}, pos, 0);
    same_seed_match += base == reseeded.sample(uniform, {}, pos, 0);
    same_stream_match += base == sampler.sample(uniform, {}, pos, 1);
  }
  // Independent draws agree 1/8 of the time (125 of 1000).
  EXPECT_LT(same_seed_match, 200);
  EXPECT_LT(same_stream_match, 200);
}

// ---- penalties -----------------------------------------------------------------------------

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplingParams p = plain(0.0f);
  p.repetition_penalty = 2.0f;
  Sampler sampler(p);
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f, 1.5f};
  const std::vector<int32_t> history = {0, 1, 0};  // repeats count once
  EXPECT_EQ(Sampler(plain(0.0f)).sample(logits, history, 0), 0);
  EXPECT_EQ(sampler.sample(logits, history, 0), 3);  // 2 / 2 = 1 < 1.5
  const auto rel = penalized_minus_first(sampler, logits, history);
  // Penalized: {1, -2, 0.5, 1.5}, relative to token 0.
  EXPECT_NEAR(rel[1], -3.0f, 1e-5);
  EXPECT_NEAR(rel[2], -0.5f, 1e-5);
  EXPECT_NEAR(rel[3], 0.5f, 1e-5);
}

TEST(Sampler, FrequencyPenaltySubtractsCountTimesPenalty) {
  SamplingParams p = plain(0.0f);
  p.frequency_penalty = 0.5f;
  Sampler sampler(p);
  const std::vector<float> logits = {3.0f, 2.5f, 0.0f};
  const std::vector<int32_t> history = {0, 2, 0, 0};
  EXPECT_EQ(sampler.sample(logits, history, 0), 1);  // 3 - 3 * 0.5 = 1.5 < 2.5
  const auto rel = penalized_minus_first(sampler, logits, history);
  // Penalized: {1.5, 2.5, -0.5}.
  EXPECT_NEAR(rel[1], 1.0f, 1e-5);
  EXPECT_NEAR(rel[2], -2.0f, 1e-5);
}

TEST(Sampler, PresencePenaltySubtractsOnceWhateverTheCount) {
  SamplingParams p = plain(0.0f);
  p.presence_penalty = 1.0f;
  Sampler sampler(p);
  const std::vector<float> logits = {3.0f, 2.5f, 0.0f};
  const std::vector<int32_t> history = {0, 0, 0, 2};
  EXPECT_EQ(sampler.sample(logits, history, 0), 1);  // 3 - 1 = 2 < 2.5
  const auto rel = penalized_minus_first(sampler, logits, history);
  // Penalized: {2, 2.5, -1}.
  EXPECT_NEAR(rel[1], 0.5f, 1e-5);
  EXPECT_NEAR(rel[2], -3.0f, 1e-5);
}

TEST(Sampler, NegativePresencePenaltyFavoursSeenTokens) {
  SamplingParams p = plain(0.0f);
  p.presence_penalty = -2.0f;
  Sampler sampler(p);
  EXPECT_EQ(sampler.sample(std::vector<float>{3.0f, 2.5f, 0.0f}, std::vector<int32_t>{1}, 0), 1);
}

TEST(Sampler, PenaltiesSeeOnlyTheLastNHistoryTokens) {
  SamplingParams p = plain(0.0f);
  p.presence_penalty = 1.0f;
  p.penalty_last_n = 2;
  const std::vector<float> logits = {3.0f, 2.5f, 0.0f};
  const std::vector<int32_t> history = {0, 2, 2};  // token 0 is outside the window
  EXPECT_EQ(Sampler(p).sample(logits, history, 0), 0);
  p.penalty_last_n = -1;  // the whole history
  EXPECT_EQ(Sampler(p).sample(logits, history, 0), 1);
  p.penalty_last_n = 0;  // none
  EXPECT_EQ(Sampler(p).sample(std::vector<float>{3.0f, 2.5f}, std::vector<int32_t>{0}, 0), 0);
}

TEST(Sampler, RejectsHistoryTokenOutsideVocabulary) {
  SamplingParams p = plain(0.0f);
  p.repetition_penalty = 1.1f;
  Sampler sampler(p);
  EXPECT_THROW(sampler.sample(std::vector<float>{1.0f, 2.0f}, std::vector<int32_t>{5}, 0), Error);
  EXPECT_THROW(sampler.sample(std::vector<float>{1.0f, 2.0f}, std::vector<int32_t>{-1}, 0), Error);
}

// ---- invalid logits ------------------------------------------------------------------------

TEST(Sampler, NaNLogitsThrow) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (float temperature : {0.0f, 1.0f}) {
    Sampler sampler(plain(temperature));
    EXPECT_THROW(sampler.sample(std::vector<float>{1.0f, nan, 0.0f}, {}, 0), Error);
    EXPECT_THROW(sampler.sample(std::vector<float>{nan}, {}, 0), Error);
  }
}

TEST(Sampler, PositiveInfinityAllNegativeInfinityAndEmptyLogitsThrow) {
  Sampler sampler(plain(1.0f));
  EXPECT_THROW(sampler.sample(std::vector<float>{1.0f, kInf}, {}, 0), Error);
  EXPECT_THROW(sampler.sample(std::vector<float>{-kInf, -kInf}, {}, 0), Error);
  EXPECT_THROW(sampler.sample(std::vector<float>{}, {}, 0), Error);
}

// ---- logprobs ------------------------------------------------------------------------------

TEST(Sampler, LogprobsAreLogSoftmaxOfScaledLogits) {
  const auto logits = test_logits(64, 5);
  for (float temperature : {0.0f, 0.7f}) {
    SamplingParams p = plain(temperature);
    p.top_k = 3;  // filters must not change the reported logprobs
    p.min_p = 0.1f;
    Sampler sampler(p);
    const auto probs = softmax(logits, temperature > 0.0f ? temperature : 1.0f);
    std::vector<int32_t> order(logits.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });

    SampleInfo info;
    const int32_t token = sampler.sample(logits, {}, 17, 0, &info, 5);
    EXPECT_EQ(token, sampler.sample(logits, {}, 17));  // asking for info does not change the draw
    EXPECT_NEAR(info.logprob, std::log(probs[static_cast<size_t>(token)]), 1e-4);
    ASSERT_EQ(info.top.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(info.top[i].token, order[i]);
      EXPECT_NEAR(info.top[i].logprob, std::log(probs[static_cast<size_t>(order[i])]), 1e-4);
    }
  }
}

TEST(Sampler, LogprobTopListIsCappedAtVocabularyAndTiesGoToLowestId) {
  Sampler sampler(plain(0.0f));
  SampleInfo info;
  info.top.assign(10, {});  // stale entries are replaced
  const int32_t token = sampler.sample(std::vector<float>{0.0f, 1.0f, 1.0f}, {}, 0, 0, &info, 8);
  EXPECT_EQ(token, 1);
  ASSERT_EQ(info.top.size(), 3u);
  EXPECT_EQ(info.top[0].token, 1);
  EXPECT_EQ(info.top[1].token, 2);
  EXPECT_EQ(info.top[2].token, 0);
  EXPECT_FLOAT_EQ(info.top[0].logprob, info.top[1].logprob);
  double total = 0.0;
  for (const TokenLogprob& t : info.top) total += std::exp(t.logprob);
  EXPECT_NEAR(total, 1.0, 1e-6);

  EXPECT_NO_THROW(sampler.sample(std::vector<float>{0.0f}, {}, 0, 0, &info, 0));
  EXPECT_TRUE(info.top.empty());
  EXPECT_THROW(sampler.sample(std::vector<float>{0.0f}, {}, 0, 0, &info, -1), Error);
}

}  // namespace
}  // namespace px

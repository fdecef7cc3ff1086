// `parallax chaos`'s conclusions: pauses less the time no pipeline covered the model, and the
// quantiles of the report.
#include <gtest/gtest.h>

#include "cli/chaos_stats.h"

namespace px::cli {
namespace {

using namespace std::chrono_literals;

TEST(ChaosStats, APauseCountsOnlyTheTimeSomePipelineCoveredTheModel) {
  const auto t0 = ChaosClock::now();
  const std::vector<Interval> uncovered = {{t0 + 1s, t0 + 2s}, {t0 + 5s, t0 + 8s}};
  EXPECT_DOUBLE_EQ(seconds_outside(t0, t0 + 1s, uncovered), 1.0);          // before any
  EXPECT_DOUBLE_EQ(seconds_outside(t0 + 1s, t0 + 2s, uncovered), 0.0);     // inside one
  EXPECT_NEAR(seconds_outside(t0 + 500ms, t0 + 6s, uncovered), 3.5, 1e-9);  // 5.5 s, 2 of them uncovered
  EXPECT_NEAR(seconds_outside(t0, t0 + 10s, uncovered), 6.0, 1e-9);
  EXPECT_DOUBLE_EQ(seconds_outside(t0 + 3s, t0 + 3s, uncovered), 0.0);
}

TEST(ChaosStats, QuantilesByNearestRank) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i / 100.0);
  EXPECT_DOUBLE_EQ(quantile(v, 0.5), 0.50);
  EXPECT_DOUBLE_EQ(quantile(v, 0.99), 0.99);
  EXPECT_DOUBLE_EQ(quantile(v, 1.0), 1.00);
  EXPECT_DOUBLE_EQ(quantile({}, 0.5), 0.0);
  EXPECT_DOUBLE_EQ(quantile({3.0}, 0.01), 3.0);
}

TEST(ChaosStats, TheReportSumsItsUncoveredTime) {
  const auto t0 = ChaosClock::now();
  ChaosRunReport r;
  r.completed = 10;
  r.failed = 1;
  r.pauses_s = {0.1, 0.2, 4.0};
  r.covered_pauses_s = {0.1, 0.2, 1.5};
  r.uncovered = {{t0, t0 + 2500ms}, {t0 + 10s, t0 + 11s}};
  EXPECT_EQ(r.requests(), 11);
  EXPECT_NEAR(r.uncovered_s(), 3.5, 1e-9);
  EXPECT_NEAR(r.longest_uncovered_s(), 2.5, 1e-9);
  const auto j = r.to_json();
  EXPECT_DOUBLE_EQ(j["pause_max_s"].get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(j["covered_pause_max_s"].get<double>(), 1.5);
}

}  // namespace
}  // namespace px::cli

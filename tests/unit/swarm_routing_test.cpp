// Routing as a pure function: the cheapest chain of stages over the layer DAG.
#include "swarm/routing.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "core/error.h"

namespace px::swarm {
namespace {

RttFn uniform_rtt(double seconds) {
  return [seconds](const std::string&, const std::string&) { return seconds; };
}

std::vector<std::string> nodes_of(const std::vector<StageState>& stages, const Route& r) {
  std::vector<std::string> out;
  for (size_t i : r.stages) out.push_back(stages[i].node_id);
  return out;
}

TEST(Routing, PicksTheCheapestChainCoveringAllLayers) {
  const std::vector<StageState> stages = {
      {"a", 0, 16, 0.010}, {"b", 16, 32, 0.010},  // 20 ms
      {"c", 0, 10, 0.004}, {"d", 10, 32, 0.004},  // 8 ms
      {"e", 0, 32, 0.030},                        // 30 ms, one stage
  };
  const RoutingConfig config{32};
  const auto route = find_route(stages, config, uniform_rtt(0.001));
  ASSERT_TRUE(route);
  EXPECT_EQ(nodes_of(stages, *route), (std::vector<std::string>{"c", "d"}));
  EXPECT_NEAR(route->cost_seconds, 0.008 + 0.001, 1e-12);
}

TEST(Routing, RoundTripTimesCanMakeFewerHopsWin) {
  const std::vector<StageState> stages = {{"c", 0, 10, 0.004}, {"d", 10, 32, 0.004}, {"e", 0, 32, 0.030}};
  const auto route = find_route(stages, {32}, uniform_rtt(0.050));
  ASSERT_TRUE(route);
  EXPECT_EQ(nodes_of(stages, *route), (std::vector<std::string>{"e"}));
}

TEST(Routing, UsesPerPairRoundTripTimes) {
  const std::vector<StageState> stages = {{"a", 0, 16, 0.01}, {"b1", 16, 32, 0.01}, {"b2", 16, 32, 0.01}};
  const std::map<std::pair<std::string, std::string>, double> rtts = {{{"a", "b1"}, 0.100}, {{"a", "b2"}, 0.002}};
  const auto route = find_route(stages, {32}, [&](const std::string& x, const std::string& y) { return rtts.at({x, y}); });
  ASSERT_TRUE(route);
  EXPECT_EQ(nodes_of(stages, *route), (std::vector<std::string>{"a", "b2"}));
}

TEST(Routing, LoadRaisesCostAndFullOrStaleStagesAreSkipped) {
  RoutingConfig config{32, 5.0};
  std::vector<StageState> stages = {{"busy", 0, 32, 0.010, 0.9}, {"idle", 0, 32, 0.020, 0.0}};
  auto route = find_route(stages, config, uniform_rtt(0));
  ASSERT_TRUE(route);
  EXPECT_EQ(nodes_of(stages, *route), (std::vector<std::string>{"idle"}));  // 0.1 s vs 0.02 s
  EXPECT_NEAR(stage_cost(stages[0], config), 0.1, 1e-12);

  stages[1].full = true;
  route = find_route(stages, config, uniform_rtt(0));
  ASSERT_TRUE(route);
  EXPECT_EQ(nodes_of(stages, *route), (std::vector<std::string>{"busy"}));

  stages[0].age_seconds = 6;  // stale: its node may be gone
  EXPECT_FALSE(find_route(stages, config, uniform_rtt(0)));
  EXPECT_TRUE(std::isinf(stage_cost(stages[0], config)));
}

TEST(Routing, NoRouteWhenALayerIsUncovered) {
  const std::vector<StageState> stages = {{"a", 0, 10, 0.01}, {"b", 11, 32, 0.01}, {"c", 10, 20, 0.01}};
  EXPECT_FALSE(find_route(stages, {32}, uniform_rtt(0)));
  EXPECT_FALSE(find_route({}, {32}, uniform_rtt(0)));
  EXPECT_THROW(find_route(stages, {0}, uniform_rtt(0)), Error);
}

TEST(Routing, IgnoresMalformedStages) {
  const std::vector<StageState> stages = {{"bad", 5, 3, 0.001}, {"beyond", 0, 40, 0.001}, {"ok", 0, 32, 0.5}};
  const auto route = find_route(stages, {32}, uniform_rtt(0));
  ASSERT_TRUE(route);
  EXPECT_EQ(nodes_of(stages, *route), (std::vector<std::string>{"ok"}));
}

}  // namespace
}  // namespace px::swarm

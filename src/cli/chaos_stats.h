#pragma once
// What `parallax chaos` concludes from one run, as pure functions: the longest pause each
// request saw (from its start or its previous token to the next one), and how much of that
// pause fell while no pipeline covered the model. A pause while some pipeline covered the model
// is the swarm's fault; one while nothing could serve is the fault pattern's.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace px::cli {

using ChaosClock = std::chrono::steady_clock;

// [begin, end) during which the head's /v1/cluster showed no pipeline covering the model.
struct Interval {
  ChaosClock::time_point begin, end;
};

// Seconds of [begin, end) outside every interval of `uncovered` (sorted, disjoint).
double seconds_outside(ChaosClock::time_point begin, ChaosClock::time_point end, const std::vector<Interval>& uncovered);

// The q-quantile (0..1) of `values` by nearest rank; 0 for none.
double quantile(std::vector<double> values, double q);

struct ChaosRunReport {
  int64_t completed = 0, failed = 0, differing = 0;
  int64_t kills = 0, same_port_restarts = 0, stalls = 0, sole_replica_stalls = 0;
  std::vector<double> pauses_s;          // each request's longest pause
  std::vector<double> covered_pauses_s;  // ... less the time no pipeline covered the model
  std::vector<Interval> uncovered;       // when no pipeline covered the model
  std::vector<std::string> failures;     // the first few, for the log

  int64_t requests() const { return completed + failed + differing; }
  double longest_uncovered_s() const;
  double uncovered_s() const;
  nlohmann::json to_json() const;
};

}  // namespace px::cli

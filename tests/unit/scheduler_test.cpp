#include "runtime/scheduler.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace px {
namespace {

// Drives a request through steps as the engine would: commit, then grow when a chunk completes.
void run_step(Scheduler& s, const SchedulePlan& plan, bool grow = true) {
  s.commit(plan);
  if (!grow) return;
  for (const ScheduledChunk& c : plan.chunks) {
    if (c.completes) s.grow(c.request);
  }
}

TEST(Scheduler, ChunksLongPromptsUnderTheTokenBudget) {
  Scheduler s({.max_batch_tokens = 8, .max_running = 4, .kv_capacity_tokens = 1000});
  s.add(1, 20);
  SchedulePlan p = s.schedule();
  ASSERT_EQ(p.chunks.size(), 1u);
  EXPECT_EQ(p.chunks[0].begin, 0);
  EXPECT_EQ(p.chunks[0].count, 8);
  EXPECT_FALSE(p.chunks[0].completes);
  run_step(s, p);
  p = s.schedule();
  EXPECT_EQ(p.chunks[0].begin, 8);
  EXPECT_EQ(p.chunks[0].count, 8);
  run_step(s, p);
  p = s.schedule();
  EXPECT_EQ(p.chunks[0].begin, 16);
  EXPECT_EQ(p.chunks[0].count, 4);
  EXPECT_TRUE(p.chunks[0].completes);
  run_step(s, p);
  p = s.schedule();  // now decoding: one token at position 20
  ASSERT_EQ(p.chunks.size(), 1u);
  EXPECT_EQ(p.chunks[0].begin, 20);
  EXPECT_EQ(p.chunks[0].count, 1);
  EXPECT_TRUE(p.chunks[0].completes);
}

TEST(Scheduler, DecodesComeFirstAndPrefillsFillTheRest) {
  Scheduler s({.max_batch_tokens = 6, .max_running = 4, .kv_capacity_tokens = 1000});
  s.add(1, 3);
  run_step(s, s.schedule());  // request 1 prefilled, now has 4 tokens
  s.add(2, 10);
  const SchedulePlan p = s.schedule();
  ASSERT_EQ(p.chunks.size(), 2u);
  EXPECT_EQ(p.chunks[0].request, 1);
  EXPECT_EQ(p.chunks[0].count, 1);
  EXPECT_EQ(p.chunks[1].request, 2);
  EXPECT_EQ(p.chunks[1].count, 5);
  EXPECT_EQ(p.tokens(), 6);
}

TEST(Scheduler, AdmitsFirstComeFirstServedUpToMaxRunning) {
  Scheduler s({.max_batch_tokens = 100, .max_running = 2, .kv_capacity_tokens = 1000});
  s.add(1, 2);
  s.add(2, 2);
  s.add(3, 2);
  const SchedulePlan p = s.schedule();
  ASSERT_EQ(p.chunks.size(), 2u);
  EXPECT_EQ(p.chunks[0].request, 1);
  EXPECT_EQ(p.chunks[1].request, 2);
  EXPECT_EQ(s.waiting(), 1u);
  run_step(s, p);
  s.remove(1);
  const SchedulePlan q = s.schedule();
  EXPECT_TRUE(std::any_of(q.chunks.begin(), q.chunks.end(), [](auto& c) { return c.request == 3; }));
}

TEST(Scheduler, WaitsForKvCapacityInsteadOfOvercommitting) {
  Scheduler s({.max_batch_tokens = 100, .max_running = 8, .kv_capacity_tokens = 20});
  s.add(1, 10);
  s.add(2, 10);  // 10 + 1 + 10 + 1 > 20: must wait
  const SchedulePlan p = s.schedule();
  ASSERT_EQ(p.chunks.size(), 1u);
  EXPECT_EQ(s.waiting(), 1u);
}

TEST(Scheduler, PreemptsTheNewestRequestWhenTheCacheFillsAndResumesItFirst) {
  Scheduler s({.max_batch_tokens = 100, .max_running = 8, .kv_capacity_tokens = 12});
  s.add(1, 4);
  s.add(2, 4);
  run_step(s, s.schedule());  // both prefilled: 5 tokens each = 10 positions next step
  run_step(s, s.schedule());  // decoded: 6 each = 12 positions next step, which still fit
  run_step(s, s.schedule());  // decoded: 7 each = 14 positions would not fit: preempt 2
  const SchedulePlan p = s.schedule();
  ASSERT_EQ(p.preempted.size(), 1u);
  EXPECT_EQ(p.preempted[0], 2);
  ASSERT_EQ(p.chunks.size(), 1u);
  EXPECT_EQ(p.chunks[0].request, 1);
  EXPECT_EQ(s.waiting(), 1u);
  s.remove(1);
  const SchedulePlan q = s.schedule();  // request 2 recomputes all 7 tokens
  ASSERT_EQ(q.chunks.size(), 1u);
  EXPECT_EQ(q.chunks[0].request, 2);
  EXPECT_EQ(q.chunks[0].begin, 0);
  EXPECT_EQ(q.chunks[0].count, 7);
  EXPECT_TRUE(q.chunks[0].completes);
}

TEST(Scheduler, RejectsARequestThatCanNeverFit) {
  Scheduler s({.max_batch_tokens = 100, .max_running = 8, .kv_capacity_tokens = 8});
  s.add(1, 10);
  EXPECT_THROW(s.schedule(), Error);
}

TEST(Scheduler, EveryRequestFinishesUnderSustainedLoad) {
  // 40 requests of varied sizes through a small budget and cache: each is eventually
  // scheduled to completion of 5 generated tokens (no starvation, no livelock).
  Scheduler s({.max_batch_tokens = 16, .max_running = 4, .kv_capacity_tokens = 64});
  std::vector<int> generated(41, 0);
  int next = 1;
  int finished = 0;
  for (int step = 0; step < 5000 && finished < 40; ++step) {
    if (next <= 40 && step % 3 == 0) {
      s.add(next, 3 + (next * 7) % 20);
      ++next;
    }
    const SchedulePlan p = s.schedule();
    s.commit(p);
    for (const ScheduledChunk& c : p.chunks) {
      if (!c.completes) continue;
      if (++generated[c.request] == 5) {
        s.remove(c.request);
        ++finished;
      } else {
        s.grow(c.request);
      }
    }
  }
  EXPECT_EQ(finished, 40);
  EXPECT_TRUE(s.idle());
}

}  // namespace
}  // namespace px

// LocalInbox: the in-process path of a node's messages to itself. Order, back-pressure,
// delivery on its own thread, stop() delivering what is queued, survival of a handler error.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"
#include "swarm/local_inbox.h"

namespace px::swarm {
namespace {

using namespace std::chrono_literals;

TEST(LocalInbox, DeliversInOrderOnItsOwnThread) {
  std::mutex mutex;
  std::vector<int32_t> positions;
  std::thread::id delivery_thread;
  LocalInbox inbox([&](PipelineMessage m) {
    std::lock_guard lock(mutex);
    positions.push_back(std::get<AppendMessage>(m).position);
    delivery_thread = std::this_thread::get_id();
  });
  for (int32_t i = 0; i < 100; ++i) ASSERT_TRUE(inbox.post(AppendMessage{7, i, 1}));
  inbox.stop();  // delivers what is queued first
  ASSERT_EQ(positions.size(), 100u);
  for (int32_t i = 0; i < 100; ++i) EXPECT_EQ(positions[i], i);
  EXPECT_NE(delivery_thread, std::this_thread::get_id());
  EXPECT_FALSE(inbox.post(ReleaseMessage{7}));
  inbox.stop();  // idempotent
}

TEST(LocalInbox, AFullQueueRefusesAndLeavesTheMessageIntact) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> busy{false};
  std::atomic<int> delivered{0};
  LocalInbox inbox(
      [&](PipelineMessage) {
        busy = true;
        released.wait();  // holds the thread: what is posted now stays queued
        ++delivered;
      },
      /*max_queued=*/2);
  ASSERT_TRUE(inbox.post(ReleaseMessage{1}));
  for (int i = 0; i < 5000 && !busy; ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(busy);
  EXPECT_TRUE(inbox.post(ReleaseMessage{2}));
  EXPECT_TRUE(inbox.post(ReleaseMessage{3}));
  PipelineMessage refused = TokensMessage{{SampledToken{9, 4, 5, {}, {}, {}}}};
  EXPECT_FALSE(inbox.post(std::move(refused)));
  ASSERT_TRUE(std::holds_alternative<TokensMessage>(refused));
  EXPECT_EQ(std::get<TokensMessage>(refused).tokens.size(), 1u);  // not moved from
  release.set_value();
  inbox.stop();
  EXPECT_EQ(delivered.load(), 3);
}

TEST(LocalInbox, AHandlerErrorIsLoggedAndDeliveryGoesOn) {
  std::atomic<int> delivered{0};
  LocalInbox inbox([&](PipelineMessage m) {
    if (std::get<ReleaseMessage>(m).request == 1) throw Error("bad message");
    ++delivered;
  });
  EXPECT_TRUE(inbox.post(ReleaseMessage{1}));
  EXPECT_TRUE(inbox.post(ReleaseMessage{2}));
  inbox.stop();
  EXPECT_EQ(delivered.load(), 1);
}

}  // namespace
}  // namespace px::swarm

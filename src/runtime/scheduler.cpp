#include "runtime/scheduler.h"

#include <algorithm>

#include "core/error.h"

namespace px {

int SchedulePlan::tokens() const {
  int total = 0;
  for (const ScheduledChunk& c : chunks) total += c.count;
  return total;
}

Scheduler::Scheduler(SchedulerConfig config) : config_(config) {
  if (config_.max_batch_tokens < 1 || config_.max_running < 1 || config_.kv_capacity_tokens < 2) {
    fail("scheduler needs max_batch_tokens >= 1, max_running >= 1 and a KV capacity of at least 2 tokens");
  }
}

void Scheduler::add(int64_t request, int n_tokens) {
  if (n_tokens < 1) fail("request {} has no tokens", request);
  waiting_.push_back({request, n_tokens, 0});
}

Scheduler::Entry* Scheduler::find_running(int64_t request) {
  for (Entry& e : running_) {
    if (e.request == request) return &e;
  }
  return nullptr;
}

void Scheduler::grow(int64_t request) {
  Entry* e = find_running(request);
  if (!e) {
    // A request preempted while its token was being sampled elsewhere grows in the queue.
    auto it = std::find_if(waiting_.begin(), waiting_.end(), [&](const Entry& w) { return w.request == request; });
    if (it == waiting_.end()) fail("scheduler: request {} is unknown", request);
    e = &*it;
  }
  ++e->n_tokens;
}

size_t Scheduler::ready_decodes() const {
  return size_t(std::count_if(running_.begin(), running_.end(),
                              [](const Entry& e) { return e.n_tokens - e.n_computed == 1 && e.n_computed > 0; }));
}

size_t Scheduler::decoding() const {
  return size_t(std::count_if(running_.begin(), running_.end(), [](const Entry& e) {
    return e.n_computed > 0 && e.n_tokens - e.n_computed <= 1;
  }));
}

bool Scheduler::has_uncomputed_tokens() const {
  if (!waiting_.empty()) return true;
  return std::any_of(running_.begin(), running_.end(), [](const Entry& e) { return e.n_computed < e.n_tokens; });
}

void Scheduler::remove(int64_t request) {
  std::erase_if(running_, [&](const Entry& e) { return e.request == request; });
  std::erase_if(waiting_, [&](const Entry& e) { return e.request == request; });
}

int64_t Scheduler::kv_tokens_in_use() const {
  int64_t total = 0;
  for (const Entry& e : running_) total += e.n_tokens;
  return total;
}

void Scheduler::preempt_last(SchedulePlan& plan) {
  Entry victim = running_.back();
  running_.pop_back();
  plan.preempted.push_back(victim.request);
  std::erase_if(plan.chunks, [&](const ScheduledChunk& c) { return c.request == victim.request; });
  victim.n_computed = 0;  // recompute from scratch: prompt plus generated tokens
  waiting_.push_front(victim);
}

SchedulePlan Scheduler::schedule(const AdmitFn& admit) {
  SchedulePlan plan;
  // KV positions the running requests will occupy after this step (each holds n_tokens).
  auto kv_needed = [&] { return kv_tokens_in_use(); };
  while (!running_.empty() && kv_needed() > config_.kv_capacity_tokens) preempt_last(plan);

  int budget = config_.max_batch_tokens;
  // 1. decodes
  for (const Entry& e : running_) {
    if (budget == 0) break;
    if (e.n_tokens - e.n_computed == 1) {
      plan.chunks.push_back({e.request, e.n_computed, 1, true});
      --budget;
    }
  }
  // 2. prefills in progress
  for (const Entry& e : running_) {
    if (budget == 0) break;
    const int left = e.n_tokens - e.n_computed;
    if (left > 1 || (left == 1 && e.n_computed == 0)) {
      const bool already = std::any_of(plan.chunks.begin(), plan.chunks.end(),
                                       [&](const ScheduledChunk& c) { return c.request == e.request; });
      if (already) continue;
      const int count = std::min(left, budget);
      plan.chunks.push_back({e.request, e.n_computed, count, count == left});
      budget -= count;
    }
  }
  // 3. admissions, first come first served; the head of the queue is never skipped.
  // A request is admitted only when its whole current length fits next to the others, plus
  // one position to grow into.
  while (budget > 0 && !waiting_.empty() && int(running_.size()) < config_.max_running) {
    Entry e = waiting_.front();
    if (kv_needed() + e.n_tokens + 1 > config_.kv_capacity_tokens) {
      if (running_.empty() && e.n_tokens + 1 > config_.kv_capacity_tokens) {
        fail("request {} needs {} KV positions but the cache holds {}", e.request, e.n_tokens + 1,
             config_.kv_capacity_tokens);
      }
      break;
    }
    const int cached = admit ? admit(e.request) : 0;
    if (cached < 0) break;
    waiting_.pop_front();
    e.n_computed = std::min(cached, e.n_tokens - 1);  // the last token always runs, for logits
    const int left = e.n_tokens - e.n_computed;
    const int count = std::min(left, budget);
    plan.chunks.push_back({e.request, e.n_computed, count, count == left});
    budget -= count;
    running_.push_back(e);
  }
  return plan;
}

void Scheduler::commit(const SchedulePlan& plan) {
  for (const ScheduledChunk& c : plan.chunks) {
    Entry* e = find_running(c.request);
    if (e && e->n_computed == c.begin) e->n_computed = c.begin + c.count;
  }
}

}  // namespace px

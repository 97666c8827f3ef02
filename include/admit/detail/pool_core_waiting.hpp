// admit/detail/pool_core_waiting.hpp - PoolCore's slow path: waiting,
// cancelling, closing, budget changes and the hand-over of released capacity
// to waiters. Included at the end of pool_core.hpp, which holds the class, its
// invariants and its fast path; split only to keep each file readable.
//
// Every function here that ends in _locked runs with mutex_ held. Async
// handlers are never called with mutex_ held: answered async waiters are
// collected on a ReadyList and completed after the mutex is released, which is
// what lets a handler call back into the pool.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "pool_core.hpp"

namespace admit::detail {

inline CoreAdmission PoolCore::acquire_until(std::uint64_t declared_size, std::uint64_t needed,
                                             Clock::time_point deadline,
                                             std::uint16_t partition) noexcept {
  if (auto refused = refuse_before_waiting(declared_size, needed, deadline, partition)) {
    return *refused;
  }
  if (partition == 0) {
    const Attempt now = attempt</*ForQueue=*/false>(needed);
    if (now.admitted) return {true, now.claim, {}};
  }

  std::condition_variable wakeup;
  Waiter self{declared_size, needed};
  self.wakeup = &wakeup;
  self.partition = partition;
  ReadyList ready;
  std::unique_lock lock{mutex_};
  if (auto decided = decide_before_queueing_locked(self)) return *decided;
  if (auto refused = enqueue_locked(self)) return *refused;
  // Capacity released before the attention bit was set is found here.
  dispatch_locked(ready);
  complete_outside(lock, ready);
  while (self.state == Waiter::State::queued) {
    if (deadline == Clock::time_point::max()) {
      wakeup.wait(lock);
    } else if (wakeup.wait_until(lock, deadline) == std::cv_status::timeout &&
               self.state == Waiter::State::queued) {
      answer_locked(self, Reason::timeout, ready);
      dispatch_locked(ready);  // the waiters behind us may fit now
      complete_outside(lock, ready);
    }
  }
  lock.unlock();
  wait_until_told(self);  // `wakeup` and `self` die on return
  if (self.state == Waiter::State::granted) return {true, self.claim, {}};
  return {false, {}, self.rejection};
}

inline void PoolCore::ensure_timer() {
  const std::scoped_lock lock{mutex_};
  if (!timer_.joinable()) timer_ = std::thread{[this] { run_timer(); }};
}

inline void PoolCore::async_acquire(const std::shared_ptr<AsyncWaiter>& waiter) noexcept {
  AsyncWaiter& w = *waiter;
  const Clock::time_point deadline = w.has_deadline ? w.deadline : Clock::time_point::max();
  if (auto refused = refuse_before_waiting(w.declared_size, w.needed, deadline, w.partition)) {
    record(w, *refused);  // answered at once, on this thread
    w.complete(*this);
    return;
  }
  if (w.partition == 0) {
    const Attempt now = attempt</*ForQueue=*/false>(w.needed);
    if (now.admitted) {
      record(w, {true, now.claim, {}});
      w.complete(*this);
      return;
    }
  }
  ReadyList ready;
  {
    std::unique_lock lock{mutex_};
    if (auto decided = decide_before_queueing_locked(w)) {
      lock.unlock();
      record(w, *decided);  // answered at once, on this thread
      w.complete(*this);
      return;
    }
    if (auto refused = enqueue_locked(w)) {
      record(w, *refused);  // completed below, once the mutex is released
      w.self = waiter;
      ready.push(w);
    } else {
      w.self = waiter;  // the queue's reference, handed to ReadyList when answered
      if (w.has_deadline) timer_wakeup_.notify_one();
      dispatch_locked(ready);
    }
  }
  ready.complete_all(*this);
}

inline bool PoolCore::cancel(AsyncWaiter& w) noexcept {
  ReadyList ready;
  {
    const std::scoped_lock lock{mutex_};
    if (w.state != Waiter::State::queued) return false;  // already answered
    answer_locked(w, Reason::cancelled, ready);
    dispatch_locked(ready);  // a cancelled head must not block those behind it
  }
  ready.complete_all(*this);
  return true;
}

inline void PoolCore::close() noexcept {
  ReadyList ready;
  {
    const std::scoped_lock lock{mutex_};
    if (closed_.load(std::memory_order_relaxed)) return;
    // relaxed: published by the release RMW in update_attention_locked.
    closed_.store(true, std::memory_order_relaxed);
    set_blocked_locked();
    while (Waiter* w = queue_.front()) answer_locked(*w, Reason::closed, ready);
    update_attention_locked();
  }
  ready.complete_all(*this);
}

inline void PoolCore::set_pressure(bool on) noexcept {
  ReadyList ready;
  {
    const std::scoped_lock lock{mutex_};
    if (pressure_.load(std::memory_order_relaxed) == on) return;
    // release: for under_pressure(); fast paths see it through the release
    // RMW in update_attention_locked.
    pressure_.store(on, std::memory_order_release);
    set_blocked_locked();
    // Off: the waiters that fit now are admitted (dispatch updates the bit).
    if (on) {
      update_attention_locked();
    } else {
      dispatch_locked(ready);
    }
  }
  ready.complete_all(*this);
}

inline bool PoolCore::wait_idle(Clock::time_point deadline) noexcept {
  std::unique_lock lock{mutex_};
  ++idle_waiters_;
  update_attention_locked();
  // relaxed: releases that happen after the attention bit is set dispatch
  // under mutex_ and notify; mutex_ orders what they did before us.
  const auto idle = [&] { return packed::slots(state_.load(std::memory_order_relaxed)) == 0; };
  bool result = true;
  if (deadline == Clock::time_point::max()) {
    idle_wakeup_.wait(lock, idle);
  } else {
    result = idle_wakeup_.wait_until(lock, deadline, idle);
  }
  --idle_waiters_;
  update_attention_locked();
  return result;
}

inline std::optional<std::uint64_t> PoolCore::head_waiter_needs() const noexcept {
  const std::scoped_lock lock{mutex_};
  if (const Waiter* head = queue_.front(); head != nullptr) return head->needed;
  return std::nullopt;
}

inline void PoolCore::set_memory_budget(std::uint64_t memory_budget) {
  validate_memory_budget(memory_budget);
  ReadyList ready;
  {
    const std::scoped_lock lock{mutex_};
    // relaxed: a setting, see attempt(); dispatch below runs under mutex_.
    budget_.store(memory_budget, std::memory_order_relaxed);
    // Every waiter that can never fit now is told so at once, wherever it is
    // in the queue: dispatch stops at a FIFO head that does not fit yet.
    for (Waiter* w = queue_.front(); w != nullptr;) {
      Waiter* const next = w->next;
      if (w->needed > memory_budget) {
        answer_locked(*w, Reason::too_large, ready);
      } else if (w->partition != 0 &&
                 w->needed > partitions_->at(w->partition).ceiling_bytes(memory_budget)) {
        // Refused by its partition's new ceiling: the partition's figures.
        const Rejection why = partition_rejection(Reason::too_large, w->declared_size, w->needed,
                                                  partitions_->at(w->partition), memory_budget);
        dequeue_locked(*w);
        record(*w, counted({false, {}, why}, w->partition));
        notify_locked(*w, ready);
      }
      w = next;
    }
    dispatch_locked(ready);
  }
  ready.complete_all(*this);
}

inline std::optional<CoreAdmission> PoolCore::refuse_before_waiting(
    std::uint64_t declared_size, std::uint64_t needed, Clock::time_point deadline,
    std::uint16_t partition) noexcept {
  const std::uint64_t budget = budget_.load(std::memory_order_relaxed);
  const std::uint64_t word = state_.load(std::memory_order_relaxed);
  if (closed()) return refuse(Reason::closed, declared_size, needed, word, budget, partition);
  if (needed > budget) {
    return refuse(Reason::too_large, declared_size, needed, word, budget, partition);
  }
  // An expired deadline fails at once and takes nothing.
  if (deadline <= Clock::now()) {
    if (partition != 0) {
      // too_large is the one permanent answer: a request over its partition's
      // whole ceiling hears it whatever its deadline, as one over the budget
      // does. The ceiling follows the budget, which changes under mutex_.
      const std::scoped_lock lock{mutex_};
      const std::uint64_t now_budget = budget_.load(std::memory_order_relaxed);
      const PartitionState& p = partitions_->at(partition);
      if (needed > p.ceiling_bytes(now_budget)) {
        return counted(
            {false,
             {},
             partition_rejection(Reason::too_large, declared_size, needed, p, now_budget)},
            partition);
      }
    }
    return refuse(Reason::timeout, declared_size, needed, word, budget, partition);
  }
  return std::nullopt;
}

inline std::optional<CoreAdmission> PoolCore::decide_before_queueing_locked(Waiter& w) noexcept {
  if (partitions_ == nullptr) return std::nullopt;  // decided by attempt() already
  const CoreAdmission now = admission_of(
      decide_partitioned_locked(w.declared_size, w.needed, w.partition), w.declared_size, w.needed);
  if (now.admitted) return now;
  // Those never fit by waiting; every other refusal waits for room.
  const Reason why = now.rejection.reason;
  if (why == Reason::too_large || why == Reason::closed) return counted(now, w.partition);
  return std::nullopt;
}

inline std::optional<CoreAdmission> PoolCore::enqueue_locked(Waiter& w) noexcept {
  const std::uint64_t budget = budget_.load(std::memory_order_relaxed);
  const std::uint64_t word = state_.load(std::memory_order_relaxed);
  if (closed_.load(std::memory_order_relaxed)) {
    return refuse(Reason::closed, w.declared_size, w.needed, word, budget, w.partition);
  }
  // The budget may have shrunk since refuse_before_waiting; set_memory_budget,
  // under mutex_ too, only refuses the waiters already queued.
  if (w.needed > budget) {
    return refuse(Reason::too_large, w.declared_size, w.needed, word, budget, w.partition);
  }
  if (max_waiters_ != 0 && queued_.load(std::memory_order_relaxed) >= max_waiters_) {
    return refuse(Reason::queue_full, w.declared_size, w.needed, word, budget, w.partition);
  }
  w.state = Waiter::State::queued;
  queue_.push_back(w);
  if (w.partition != 0) ++partitions_->at(w.partition).waiters;
  refresh_head_locked();
  // relaxed: published by the release RMW in update_attention_locked.
  queued_.fetch_add(1, std::memory_order_relaxed);
  // relaxed: a statistic, written only under mutex_.
  queued_bytes_.fetch_add(w.needed, std::memory_order_relaxed);
  update_attention_locked();
  return std::nullopt;
}

inline void PoolCore::dispatch_locked(ReadyList& ready) noexcept {
  // Under pressure nobody is admitted: the waiters wait for set_pressure(false)
  // or their deadlines. None needs more than the budget: those are refused
  // before they queue, or by set_memory_budget when it shrinks.
  refresh_head_locked();  // a release may have let a partition's waiter back in line
  // Partitions: first those their guarantee covers; a waiter its own
  // partition's ceiling holds back holds up nobody.
  if (!pressure_.load(std::memory_order_relaxed) &&
      (partitions_ == nullptr || dispatch_covered_locked(ready))) {
    for (Waiter* w = queue_.front(); w != nullptr;) {
      Waiter* const next = w->next;
      if (partitions_ != nullptr && held_by_ceiling_locked(*w)) {
        w = next;
        continue;
      }
      // Lanes: a waiter behind the head goes only through the head's window.
      const bool passing = lanes_ && w != head_;
      const Pass pass = passing ? may_pass_locked(w->needed) : Pass::open;
      if (pass == Pass::closed) break;
      if (pass == Pass::open) {
        if (const Attempt a = attempt</*ForQueue=*/true>(w->needed); a.admitted) {
          if (passing) passed_locked(w->needed);
          grant_locked(*w, a.claim, ready);
        } else if (fifo_ && !lanes_) {
          break;  // nobody passes the head
        }
      }
      w = next;
    }
  }
  if (idle_waiters_ != 0 && packed::slots(state_.load(std::memory_order_relaxed)) == 0) {
    idle_wakeup_.notify_all();
  }
  update_attention_locked();
}

inline void PoolCore::grant_locked(Waiter& w, SlotClaim claim, ReadyList& ready) noexcept {
  // Charged first: the lanes head that dequeue picks depends on it.
  charge_locked(w.partition, w.needed);
  claim.partition = w.partition;
  dequeue_locked(w);
  record(w, {true, claim, {}});
  notify_locked(w, ready);
}

inline void PoolCore::answer_locked(Waiter& w, Reason reason, ReadyList& ready) noexcept {
  dequeue_locked(w);
  const std::uint64_t budget = budget_.load(std::memory_order_relaxed);
  const std::uint64_t word = state_.load(std::memory_order_relaxed);
  record(w, refuse(reason, w.declared_size, w.needed, word, budget, w.partition));
  notify_locked(w, ready);
}

inline void PoolCore::dequeue_locked(Waiter& w) noexcept {
  queue_.remove(w);
  if (w.partition != 0) --partitions_->at(w.partition).waiters;
  // Forgotten before the next head is chosen: another waiter may later live
  // at this address, and it must get a window of its own.
  if (&w == head_) head_ = nullptr;
  refresh_head_locked();
  // relaxed: a count read by stats() and, after the attention bit, by
  // queue_has_priority(); update_attention_locked() follows every change.
  queued_.fetch_sub(1, std::memory_order_relaxed);
  // relaxed: a statistic, written only under mutex_.
  queued_bytes_.fetch_sub(w.needed, std::memory_order_relaxed);
}

// Out of line and cold: attempt() stays small enough to inline.
ADMIT_COLD inline PoolCore::Attempt PoolCore::behind_queue(std::uint64_t needed, std::uint64_t word,
                                                           std::uint64_t budget) noexcept {
  if (needed > budget) return {false, Reason::too_large, {}, word, budget};
  if (lanes_) {
    const std::scoped_lock lock{mutex_};
    if (const Blocked blocked = blocked_.load(std::memory_order_relaxed);
        blocked == Blocked::closed || blocked == Blocked::pressure) {
      // Closed or under pressure since the caller looked (under mutex_: exact).
      return {false,
              blocked == Blocked::closed ? Reason::closed : Reason::pressure,
              {},
              state_.load(std::memory_order_relaxed),
              budget};
    }
    if (may_pass_locked(needed) == Pass::open) {
      const Attempt a = attempt</*ForQueue=*/true>(needed);
      if (a.admitted) passed_locked(needed);
      return a;
    }
    // relaxed: the figures of the refusal only.
    word = state_.load(std::memory_order_relaxed);
  }
  const bool no_slot = packed::slots(word) >= slots_;
  return {false, no_slot ? Reason::no_slot : Reason::no_memory, {}, word, budget};
}

ADMIT_COLD inline bool PoolCore::pass_grow(std::uint64_t extra) noexcept {
  const std::scoped_lock lock{mutex_};
  // Closed or pressure since the caller looked: grown by nobody.
  if (const Blocked blocked = blocked_.load(std::memory_order_relaxed);
      blocked == Blocked::closed || blocked == Blocked::pressure) {
    return false;
  }
  if (may_pass_locked(extra) != Pass::open) return false;
  // relaxed: the budget is a plain setting, as in attempt().
  const std::uint64_t budget = budget_.load(std::memory_order_relaxed);
  // relaxed: a first guess, validated by the CAS below.
  std::uint64_t word = state_.load(std::memory_order_relaxed);
  do {
    if (extra > available(word, budget)) return false;
    // acquire/relaxed: as in attempt().
  } while (!state_.compare_exchange_weak(word, word + extra, std::memory_order_acquire,
                                         std::memory_order_relaxed));
  note_peaks(word + extra);
  passed_locked(extra);
  return true;
}

inline PoolCore::Pass PoolCore::may_pass_locked(std::uint64_t needed) const noexcept {
  const Waiter* const head = head_;
  if (head == nullptr) return Pass::open;  // nobody to pass
  // At most 2^43 * 100: no overflow.
  const std::uint64_t share = head->needed * max_pass_percent_ / 100;
  // Compared in whole milliseconds (floored, so exactly when W has passed):
  // max_head_wait_ in the clock's nanoseconds would overflow beyond ~292 years.
  const auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(lanes_now() - head_since_);
  if (passed_bytes_ >= share || waited >= max_head_wait_) return Pass::closed;
  return needed > share - passed_bytes_ ? Pass::too_big : Pass::open;
}

inline void PoolCore::complete_outside(std::unique_lock<std::mutex>& lock,
                                       ReadyList& ready) noexcept {
  lock.unlock();
  ready.complete_all(*this);
  lock.lock();
}

inline void PoolCore::update_attention_locked() noexcept {
  const bool wanted = !queue_.empty() || idle_waiters_ != 0 || partitions_ != nullptr ||
                      closed_.load(std::memory_order_relaxed) ||
                      pressure_.load(std::memory_order_relaxed);
  // relaxed: the bit only changes under mutex_, so this load is exact.
  const bool set = packed::has_attention(state_.load(std::memory_order_relaxed));
  if (wanted && !set) {
    // release: publishes closed_ / pressure_ / queued_ to fast paths that see the bit
    // (their acquire load in see_slow_path_state).
    state_.fetch_or(packed::attention_bit, std::memory_order_release);
  } else if (!wanted && set) {
    // relaxed: clearing only lets fast paths skip the slow path again.
    state_.fetch_and(~packed::attention_bit, std::memory_order_relaxed);
  }
}

inline void PoolCore::capacity_returned(std::uint16_t partition, std::uint64_t bytes,
                                        bool slot) noexcept {
  ReadyList ready;
  {
    const std::scoped_lock lock{mutex_};
    if (partition != 0) {
      PartitionState& p = partitions_->at(partition);
      p.bytes -= bytes;
      if (slot) --p.slots;
    }
    dispatch_locked(ready);
  }
  ready.complete_all(*this);
}

inline void PoolCore::run_timer() noexcept {
  std::unique_lock lock{mutex_};
  while (!timer_stop_) {
    ReadyList ready;
    const Clock::time_point next = expire_locked(Clock::now(), ready);
    if (!ready.empty()) {
      // Only an expiry changes what the waiters may get. Dispatching on every
      // wake-up would also take capacity that a concurrent release is about to
      // hand out, and run that waiter's handler here instead of on the
      // releasing thread, after release() has returned.
      dispatch_locked(ready);
      // Handlers run with the mutex released; a deadline queued meanwhile
      // notifies nobody and `next` may be stale: look again before sleeping.
      complete_outside(lock, ready);
      continue;
    }
    // Locked since `next` was computed, so a deadline queued from now on
    // notifies this wait: no wake-up is lost.
    if (next == Clock::time_point::max()) {
      timer_wakeup_.wait(lock);
    } else {
      timer_wakeup_.wait_until(lock, next);
    }
  }
}

inline Clock::time_point PoolCore::expire_locked(Clock::time_point now, ReadyList& ready) noexcept {
  Clock::time_point next = Clock::time_point::max();
  for (Waiter* w = queue_.front(); w != nullptr;) {
    Waiter* const after = w->next;
    if (const AsyncWaiter* async = w->async; async != nullptr && async->has_deadline) {
      if (async->deadline <= now) {
        answer_locked(*w, Reason::timeout, ready);
      } else if (async->deadline < next) {
        next = async->deadline;
      }
    }
    w = after;
  }
  return next;
}
}  // namespace admit::detail

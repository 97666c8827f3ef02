// admit/detail/waiter.hpp - requests waiting for room, and the queue they wait in.
//
// Everything here is guarded by PoolCore's mutex except where a comment says
// otherwise. A waiter is answered exactly once: PoolCore moves it out of the
// queue and sets its outcome in one critical section, and only a queued
// waiter can be answered. A blocking waiter lives on its thread's stack and is
// woken through its own condition variable, after the mutex is released; it
// outlives that notification (Waiter::notify_pending). An async waiter lives
// on the heap, kept alive by its Ticket and, while queued, by its own `self`
// reference, and is completed (its handler called) after the mutex is
// released.
#pragma once

#include <atomic>
#include <cassert>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <thread>

#include "../rejection.hpp"
#include "slot_bitmap.hpp"

namespace admit::detail {

class PoolCore;
struct AsyncWaiter;

using Clock = std::chrono::steady_clock;

struct Waiter {
  enum class State : std::uint8_t { created, queued, granted, refused };

  Waiter(std::uint64_t declared, std::uint64_t bytes) noexcept
      : declared_size{declared}, needed{bytes} {}
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  std::uint64_t declared_size;
  std::uint64_t needed;
  State state = State::created;
  std::uint16_t partition = 0;  // the partition asked in (partition.hpp); 0: none
  SlotClaim claim{};            // valid once granted: the slot and its generation
  Rejection rejection{};        // valid once refused

  // Queue links; null when not queued.
  Waiter* prev = nullptr;
  Waiter* next = nullptr;

  // Exactly one of these is set. An answered waiter is pushed on a
  // ReadyList, and once the mutex is released a blocking one is notified
  // through `wakeup` and an async one is completed.
  std::condition_variable* wakeup = nullptr;
  AsyncWaiter* async = nullptr;
  // Link in a ReadyList once answered.
  Waiter* ready_next = nullptr;
  // A blocking waiter's: set (under the mutex) when it is answered, cleared
  // by whoever notifies it once notify_one has returned. The waiter does not
  // return (destroying `wakeup` and itself) while it is set, so it can be
  // notified without the mutex held: woken, it need not wait for the
  // notifier to release the mutex first. Not atomic under the mutex only:
  // the clear and the waiter's wait for it are outside.
  std::atomic<bool> notify_pending{false};
};

/// An async_acquire request: the handler is type-erased behind complete().
struct AsyncWaiter : Waiter {
  AsyncWaiter(std::uint64_t declared, std::uint64_t bytes) noexcept : Waiter{declared, bytes} {
    async = this;
  }
  virtual ~AsyncWaiter() = default;

  /// Calls the handler with the outcome. Runs once, outside the pool's mutex.
  virtual void complete(PoolCore& core) noexcept = 0;

  bool has_deadline = false;
  Clock::time_point deadline{};
  // Keeps the node alive while it is queued or waiting to be completed.
  std::shared_ptr<AsyncWaiter> self;
};

/// Intrusive FIFO of waiters: no allocation to queue or dequeue.
class WaitQueue {
 public:
  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  [[nodiscard]] Waiter* front() const noexcept { return head_; }

  void push_back(Waiter& w) noexcept {
    w.prev = tail_;
    w.next = nullptr;
    (tail_ != nullptr ? tail_->next : head_) = &w;
    tail_ = &w;
  }

  void remove(Waiter& w) noexcept {
    (w.prev != nullptr ? w.prev->next : head_) = w.next;
    (w.next != nullptr ? w.next->prev : tail_) = w.prev;
    w.prev = w.next = nullptr;
  }

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

/// Waiters answered under the mutex, to be notified (blocking ones) or
/// completed (async ones) after it is released.
class ReadyList {
 public:
  ReadyList() = default;
  ReadyList(const ReadyList&) = delete;
  ReadyList& operator=(const ReadyList&) = delete;
  ~ReadyList() { assert(empty() && "admit: answered waiters were never told"); }

  void push(Waiter& w) noexcept {
    if (w.async == nullptr) {
      // relaxed: under the mutex, before the waiter can see its answer (it
      // reads its state under the mutex too); cleared with release below.
      w.notify_pending.store(true, std::memory_order_relaxed);
    }
    w.ready_next = nullptr;
    (tail_ != nullptr ? tail_->ready_next : head_) = &w;
    tail_ = &w;
  }

  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }

  /// Tells every waiter, in the order answered. Call without the mutex.
  void complete_all(PoolCore& core) noexcept {
    while (head_ != nullptr) {
      Waiter* w = head_;
      head_ = w->ready_next;
      if (head_ == nullptr) tail_ = nullptr;
      if (w->async == nullptr) {
        w->wakeup->notify_one();
        // release: the waiter's acquire load that sees this happens after
        // notify_one returned; `w` may be gone right after this store.
        w->notify_pending.store(false, std::memory_order_release);
        continue;
      }
      // The node may die with `keep` (if its Ticket is gone): complete first.
      const std::shared_ptr<AsyncWaiter> keep = std::move(w->async->self);
      w->async->complete(core);
    }
  }

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

/// A blocking waiter, answered: waits until whoever answered it has
/// finished notifying it, so that it may be destroyed. The notifier is
/// past the answer and about to call notify_one, so this is short.
inline void wait_until_told(const Waiter& w) noexcept {
  // acquire: pairs with the release store in ReadyList::complete_all.
  while (w.notify_pending.load(std::memory_order_acquire)) std::this_thread::yield();
}

}  // namespace admit::detail

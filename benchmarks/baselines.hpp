// benchmarks/baselines.hpp - what admit's admission path is measured against.
//
// Three ways to do (part of) admit's job without admit, written the obvious
// way, so that a benchmark can say "x times the floor" instead of "n ns":
//
//   AtomicBudget      a bare std::atomic<std::uint64_t> byte counter: a CAS
//                     loop to take, fetch_sub to give back. No slots, no
//                     policy, no slot index, no statistics, no waiting: the
//                     floor under any lock-free admission on one word.
//   MutexSemaphore    the textbook weighted semaphore: a mutex, a
//                     condition_variable, and counters for bytes and slots
//                     (admit admits both, so this does too; the slot count is
//                     one more compare under a lock already held). Blocking
//                     acquire waits on the condition variable; release
//                     notify_all()s, as a weighted semaphore must (the next
//                     waiter that fits is not necessarily any given one).
//   SlotSemaphore     std::counting_semaphore for slots only: what a server
//                     that does not account memory at all would use.
//
// Memory orders match admit's: taking is acquire, giving back is release.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <semaphore>

namespace admit_bench {

/// The floor: one atomic byte counter.
class AtomicBudget {
 public:
  explicit AtomicBudget(std::uint64_t budget) noexcept : budget_{budget} {}

  [[nodiscard]] bool try_acquire(std::uint64_t bytes) noexcept {
    // relaxed: a first guess, validated by the CAS.
    std::uint64_t used = used_.load(std::memory_order_relaxed);
    do {
      if (bytes > budget_ - used) return false;
      // acquire: pairs with the fetch_sub(release) in release().
    } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_acquire,
                                          std::memory_order_relaxed));
    return true;
  }

  void release(std::uint64_t bytes) noexcept {
    // release: pairs with the acquire CAS of the next try_acquire.
    used_.fetch_sub(bytes, std::memory_order_release);
  }

  [[nodiscard]] std::uint64_t in_use() const noexcept {
    return used_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t> used_{0};
  const std::uint64_t budget_;
};

/// The textbook weighted semaphore over bytes and slots.
class MutexSemaphore {
 public:
  MutexSemaphore(std::uint64_t budget, std::uint32_t slots) noexcept
      : free_bytes_{budget}, free_slots_{slots} {}

  [[nodiscard]] bool try_acquire(std::uint64_t bytes) {
    const std::scoped_lock lock{mutex_};
    if (!fits(bytes)) return false;
    take(bytes);
    return true;
  }

  /// Waits until one slot and `bytes` are free, or until `deadline`.
  [[nodiscard]] bool acquire_until(std::uint64_t bytes,
                                   std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock{mutex_};
    ++waiting_;
    const bool admitted = room_.wait_until(lock, deadline, [&] { return fits(bytes); });
    --waiting_;
    if (admitted) take(bytes);
    return admitted;
  }

  /// Threads waiting in acquire_until now (a snapshot; for the handoff benchmark).
  [[nodiscard]] std::uint64_t waiters() {
    const std::scoped_lock lock{mutex_};
    return waiting_;
  }

  void release(std::uint64_t bytes) {
    {
      const std::scoped_lock lock{mutex_};
      free_bytes_ += bytes;
      ++free_slots_;
    }
    room_.notify_all();
  }

 private:
  bool fits(std::uint64_t bytes) const noexcept { return free_slots_ > 0 && bytes <= free_bytes_; }
  void take(std::uint64_t bytes) noexcept {
    free_bytes_ -= bytes;
    --free_slots_;
  }

  std::mutex mutex_;
  std::condition_variable room_;
  std::uint64_t free_bytes_;   // guarded by mutex_
  std::uint32_t free_slots_;   // guarded by mutex_
  std::uint64_t waiting_ = 0;  // guarded by mutex_
};

/// Slots only, from the standard library.
class SlotSemaphore {
 public:
  static constexpr std::ptrdiff_t max_slots = 1 << 20;

  explicit SlotSemaphore(std::uint32_t slots) noexcept : slots_{slots} {}

  [[nodiscard]] bool try_acquire(std::uint64_t /*bytes*/) noexcept { return slots_.try_acquire(); }
  void release(std::uint64_t /*bytes*/) noexcept { slots_.release(); }

 private:
  std::counting_semaphore<max_slots> slots_;
};

}  // namespace admit_bench

// tests/wait_support.hpp - helpers for tests that involve other threads.
#pragma once

#include <admit/stats.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <latch>
#include <thread>

namespace admit_test {

/// Polls `condition` until it holds or `limit` passes; true if it held. Used
/// to wait for another thread to reach a state (e.g. "is queued"), never to
/// measure time.
template <class Condition>
bool eventually(Condition&& condition, std::chrono::milliseconds limit = std::chrono::seconds{10}) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::microseconds{200});
  }
  return true;
}

/// A stress test's watcher of conserved quantities: a thread that arrives at
/// `start` with the workers, then keeps taking `stats()` snapshots until
/// stop(), counting those that `broken` says violate the limits.
class StatsWatcher {
 public:
  StatsWatcher(std::function<admit::Stats()> stats, std::function<bool(const admit::Stats&)> broken,
               std::latch& start)
      : thread_{[this, stats = std::move(stats), broken = std::move(broken), &start] {
          start.arrive_and_wait();
          // acquire: pairs with stop(); nothing else is published through it.
          while (!done_.load(std::memory_order_acquire)) {
            if (broken(stats())) ++violations_;
            ++checks_;
            std::this_thread::yield();
          }
        }} {}

  StatsWatcher(const StatsWatcher&) = delete;
  StatsWatcher& operator=(const StatsWatcher&) = delete;
  ~StatsWatcher() { stop(); }

  /// Ends the watch and joins the thread; the counts are final afterwards.
  void stop() {
    done_.store(true, std::memory_order_release);
    if (thread_.joinable()) thread_.join();
  }

  /// Snapshots taken, and those over the limits. Read after stop().
  [[nodiscard]] std::uint64_t checks() const { return checks_; }
  [[nodiscard]] std::uint64_t violations() const { return violations_; }

 private:
  std::atomic<bool> done_{false};
  std::uint64_t checks_ = 0;
  std::uint64_t violations_ = 0;
  std::thread thread_;  // last: starts once the counters exist
};

}  // namespace admit_test

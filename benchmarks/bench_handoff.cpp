// benchmarks/bench_handoff.cpp - handoff latency: how long from a release to a
// blocked waiter running (handoff/admit, handoff/mutex_cv), one handoff at a
// time, timed manually (UseManualTime) over a fixed 4000 iterations. admit's
// side is a one-slot SlotPool<FixedPolicy> whose waiter blocks in
// acquire_for; the baseline is MutexSemaphore of baselines.hpp (one slot, one
// byte), whose waiter blocks on its condition variable in acquire_until, the
// textbook weighted semaphore's wake-up. benchmarks/report.py compares the
// two (its "x floor" column, against the 1-thread atomic floor, which never
// waits, is only a scale here). The protocol, which makes every timed handoff
// one to a thread that is really asleep, is described below.
#include <admit/admit.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string_view>
#include <thread>
#include <utility>

#if defined(__linux__)
#include <fcntl.h>  // open: to read a thread's state in /proc
#include <sys/syscall.h>
#include <unistd.h>  // read, close, syscall(SYS_gettid)
#endif

#include "baselines.hpp"
#include "bench_support.hpp"

namespace {

using admit::MiB;
using admit_bench::Counters;

// --- Handoff latency ----------------------------------------------------------------
//
// How long from a release to a blocked waiter running, measured one handoff
// at a time with manual timing. A pool of one slot (or a MutexSemaphore of one
// slot and one byte): this thread holds it and a partner thread waits in
// acquire_for. Each iteration:
//   1. wait until the partner is queued (the pool's waiter count; the
//      semaphore counts its waiters too) and then until the kernel reports it
//      asleep (state S in /proc/self/task/TID/stat; elsewhere than Linux, a
//      200 us sleep stands in). Being counted as a waiter is not enough: the
//      partner is then still on its way to the futex, holding the pool's
//      mutex, and a release at that moment measures a mutex collision;
//   2. t0 = steady_clock::now(); release;                 <- timed from here
//   3. the partner returns from acquire_for, takes t1 = steady_clock::now()
//      and publishes it;                                  <- to here
//   4. the partner drops the slot; this thread takes it back and lets the
//      partner go round again (not timed).
// SetIterationTime(t1 - t0): the release itself, the hand-over, the futex
// wake-up, the context switch and the return from acquire_for. Steps 1 and 4
// make every timed handoff one to a thread that is really blocked, whatever
// the primitive's fairness (the mutex semaphore lets a releaser barge back in,
// so a plain ping-pong would mostly measure barging, not handoffs).
// steady_clock is CLOCK_MONOTONIC, one clock for both threads. A fixed
// number of iterations, because the untimed steps cost more than the timed one.
constexpr auto handoff_timeout = std::chrono::seconds{10};
constexpr benchmark::IterationCount handoff_iterations = 4000;
using steady = std::chrono::steady_clock;

/// admit's side of the handoff protocol.
class AdmitHandoff {
 public:
  AdmitHandoff() : mine_{pool_.try_acquire(1).value()} {}
  void release() noexcept { mine_.release(); }
  bool take_back() noexcept {
    admit::Admission admission = pool_.acquire_for(1, handoff_timeout);
    if (!admission) return false;
    mine_ = std::move(admission).value();
    return true;
  }
  /// The partner's wait: the slot, held until the returned object dies.
  admit::Admission wait() noexcept { return pool_.acquire_for(1, handoff_timeout); }
  std::uint64_t waiters() const noexcept { return pool_.stats().waiters; }
  bool holds() const noexcept { return static_cast<bool>(mine_); }

 private:
  admit::SlotPool<admit::FixedPolicy> pool_{{.memory_budget = MiB, .slots = 1},
                                            admit::FixedPolicy{MiB}};
  admit::SlotReservation mine_;
};

/// MutexSemaphore's side of the same protocol.
class MutexHandoff {
 public:
  MutexHandoff() { held_ = semaphore_.try_acquire(1); }
  void release() {
    semaphore_.release(1);
    held_ = false;
  }
  bool take_back() {
    held_ = semaphore_.acquire_until(1, steady::now() + handoff_timeout);
    return held_;
  }
  /// Releases the slot when it dies, if it was granted.
  class Held {
   public:
    Held(admit_bench::MutexSemaphore& s, bool granted) noexcept : s_{s}, granted_{granted} {}
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    ~Held() {
      if (granted_) s_.release(1);
    }

   private:
    admit_bench::MutexSemaphore& s_;
    bool granted_;
  };
  Held wait() {
    return Held{semaphore_, semaphore_.acquire_until(1, steady::now() + handoff_timeout)};
  }
  std::uint64_t waiters() { return semaphore_.waiters(); }
  bool holds() const noexcept { return held_; }
  ~MutexHandoff() {
    if (held_) semaphore_.release(1);
  }

 private:
  admit_bench::MutexSemaphore semaphore_{1, 1};
  bool held_ = false;
};

#if defined(__linux__)
using ThreadId = pid_t;
ThreadId this_thread_id() noexcept { return static_cast<ThreadId>(::syscall(SYS_gettid)); }

/// Whether the kernel has thread `tid` of this process asleep. Plain system
/// calls: no allocation, so allocs/op stays the pool's.
bool asleep(ThreadId tid) noexcept {
  std::array<char, 64> path{};
  std::snprintf(path.data(), path.size(), "/proc/self/task/%d/stat", static_cast<int>(tid));
  const int fd = ::open(path.data(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;  // cannot tell: do not spin for ever
  std::array<char, 512> stat{};
  const ssize_t n = ::read(fd, stat.data(), stat.size() - 1);
  ::close(fd);
  if (n <= 0) return true;
  // "tid (comm) S ...": the state follows the last ')'.
  const std::string_view text{stat.data(), static_cast<std::size_t>(n)};
  const std::size_t paren = text.rfind(')');
  return paren == std::string_view::npos || paren + 2 >= text.size() || text[paren + 2] == 'S';
}

void wait_until_asleep(const std::atomic<ThreadId>& tid) noexcept {
  // acquire: pairs with the partner's release store of its id.
  ThreadId id = 0;
  while ((id = tid.load(std::memory_order_acquire)) == 0) std::this_thread::yield();
  for (int i = 0; i < 100'000 && !asleep(id); ++i) std::this_thread::yield();
}
#else
using ThreadId = int;
ThreadId this_thread_id() noexcept { return 1; }
void wait_until_asleep(const std::atomic<ThreadId>&) noexcept {
  std::this_thread::sleep_for(std::chrono::microseconds{200});
}
#endif

template <class Handoff>
void handoff(benchmark::State& state) {
  Handoff h;
  std::atomic<ThreadId> partner_id{0};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> woken{0};  // rounds the partner has been granted
  std::atomic<std::uint64_t> go{0};     // rounds this thread has let it start
  std::atomic<steady::rep> woke_at{0};  // t1 of the last round
  std::thread partner{[&] {
    // release: pairs with the acquire load in wait_until_asleep().
    partner_id.store(this_thread_id(), std::memory_order_release);
    for (std::uint64_t round = 1;; ++round) {
      {
        const auto held = h.wait();
        const steady::time_point t1 = steady::now();
        // acquire: pairs with the release store of `stop` below.
        if (stop.load(std::memory_order_acquire)) return;
        woke_at.store(t1.time_since_epoch().count(), std::memory_order_relaxed);
        // release: publishes woke_at to the acquire load of `woken`.
        woken.store(round, std::memory_order_release);
      }  // the slot goes back (step 4)
      // acquire: pairs with the release store of `go`.
      while (go.load(std::memory_order_acquire) < round) std::this_thread::yield();
    }
  }};
  Counters counters{state};
  std::uint64_t round = 0;
  for (auto _ : state) {
    ++round;
    while (h.waiters() == 0) std::this_thread::yield();  // step 1
    wait_until_asleep(partner_id);
    const steady::time_point t0 = steady::now();
    h.release();  // step 2
    // acquire: pairs with the partner's release store of `woken`.
    while (woken.load(std::memory_order_acquire) < round) std::this_thread::yield();
    const steady::time_point t1{steady::duration{woke_at.load(std::memory_order_relaxed)}};
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    if (!h.take_back()) {  // step 4
      state.SkipWithError("taking the slot back timed out");
      break;
    }
    // release: the partner may start its next round.
    go.store(round, std::memory_order_release);
  }
  // The partner runs one more round, or is already in it: it must be granted
  // (or time out) to see `stop`.
  stop.store(true, std::memory_order_release);
  go.store(std::numeric_limits<std::uint64_t>::max(), std::memory_order_release);
  if (h.holds()) {
    while (h.waiters() == 0) std::this_thread::yield();
    h.release();
  }
  partner.join();
}

}  // namespace

void admit_bench::register_handoff() {
  add_with_min("handoff/admit", handoff<AdmitHandoff>)
      ->UseManualTime()
      ->Iterations(handoff_iterations);
  add_with_min("handoff/mutex_cv", handoff<MutexHandoff>)
      ->UseManualTime()
      ->Iterations(handoff_iterations);
}

// Race stress for waiting: blocking and async acquires with timeouts, cancels
// racing grants, grows and shrinks, live budget changes and a close, all at
// once on one pool, under a watchdog.
//
// Checked throughout (by a checker thread): slots in use never exceed the
// slot count; bytes in use never exceed the largest budget ever set (a budget
// shrink may leave more in use than the new budget, by design); waiters never
// exceed max_waiters. Checked at the end: every async handler was called
// exactly once (each request counts its own calls); every blocking waiter got
// an answer; after close and release, wait_idle succeeds and zero bytes and
// slots are in use. If anything deadlocks, the watchdog aborts the process
// with a message instead of letting the test hang. Size: ADMIT_WAIT_STRESS_OPS
// operations per thread (default 30,000) on ADMIT_STRESS_THREADS threads
// (default 4).
#include <admit/admit.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <latch>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "support.hpp"
#include "wait_support.hpp"

namespace {

using admit::MiB;
using admit_test::env_or;
using namespace std::chrono_literals;

constexpr std::uint64_t initial_budget = 64 * MiB;
constexpr std::uint64_t largest_budget = 96 * MiB;
constexpr std::uint32_t slot_count = 8;
constexpr std::uint32_t max_waiters = 12;

/// Fails the process loudly if the test does not finish in time.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit)
      : thread_{[this, limit] {
          std::unique_lock lock{mutex_};
          if (!done_cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr,
                         "wait stress: watchdog fired after %llds: deadlock or lost "
                         "wake-up\n",
                         static_cast<long long>(limit.count()));
            std::abort();
          }
        }} {}
  ~Watchdog() {
    {
      const std::scoped_lock lock{mutex_};
      done_ = true;
    }
    done_cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::thread thread_;
};

struct AsyncRequest {
  std::atomic<int> calls{0};
  admit::Ticket ticket;
};

struct Shared {
  explicit Shared(admit::Fairness fairness)
      : pool{admit::PoolConfig{.memory_budget = initial_budget,
                               .slots = slot_count,
                               .max_waiters = max_waiters,
                               .fairness = fairness}} {}

  admit::SlotPool<> pool;
  std::atomic<std::uint64_t> blocking_answers{0};
  std::atomic<std::uint64_t> blocking_calls{0};
  std::atomic<std::uint64_t> async_issued{0};
  std::atomic<std::uint64_t> async_admitted{0};
  std::atomic<std::uint64_t> cancels_won{0};
  std::array<std::atomic<std::uint64_t>, admit::reason_count> answers{};
  std::atomic<std::uint64_t> ops{0};

  // Reservations delivered to async handlers, released later by a worker.
  // Never release while holding this mutex: a release may run handlers that
  // take it (the test's plumbing, not the pool's).
  std::mutex delivered_mutex;
  std::deque<admit::SlotReservation> delivered;

  void count(const admit::Admission& a) {
    if (!a) answers[static_cast<std::size_t>(a.error().reason)].fetch_add(1);
  }
  void drain_delivered() {
    std::deque<admit::SlotReservation> mine;
    {
      const std::scoped_lock lock{delivered_mutex};
      mine.swap(delivered);
    }
    mine.clear();  // releases, outside the lock
  }
};

std::uint64_t random_size(std::mt19937_64& rng) {
  // Mostly small; sometimes past the 5 % cap of 100 MiB (too_large at 64 MiB).
  const unsigned magnitude = 12 + static_cast<unsigned>(rng() % 20);  // 4 KiB .. 2 GiB
  return rng() % (std::uint64_t{1} << magnitude);
}

void worker(Shared& shared, std::latch& start, std::uint64_t ops, std::uint64_t seed, bool closer) {
  std::mt19937_64 rng{seed};
  std::array<admit::SlotReservation, 3> held;
  std::deque<AsyncRequest> requests;  // stable addresses for the handlers
  start.arrive_and_wait();
  for (std::uint64_t op = 0; op < ops; ++op) {
    if (closer && op == ops * 9 / 10) shared.pool.close();
    admit::SlotReservation& r = held[rng() % held.size()];
    const unsigned dice = static_cast<unsigned>(rng() % 100);
    if (dice < 20) {
      admit::Admission a = shared.pool.try_acquire(random_size(rng));
      shared.count(a);
      if (a) r = std::move(a).value();
    } else if (dice < 40) {
      r.release();  // never wait while holding: that is how real handlers deadlock
      admit::Admission a =
          shared.pool.acquire_for(random_size(rng), std::chrono::microseconds{rng() % 2000});
      shared.blocking_calls.fetch_add(1);
      shared.blocking_answers.fetch_add(1);
      shared.count(a);
      if (a) r = std::move(a).value();
    } else if (dice < 60) {
      AsyncRequest& req = requests.emplace_back();
      shared.async_issued.fetch_add(1);
      auto handler = [&shared, &req](admit::Admission a) {
        if (req.calls.fetch_add(1) != 0) return;  // counted; the check is at the end
        shared.count(a);
        if (a) {
          shared.async_admitted.fetch_add(1);
          const std::scoped_lock lock{shared.delivered_mutex};
          shared.delivered.push_back(std::move(a).value());
        }
      };
      if (rng() % 2 == 0) {
        req.ticket = shared.pool.async_acquire(random_size(rng), handler);
      } else {
        req.ticket = shared.pool.async_acquire_for(
            random_size(rng), std::chrono::microseconds{rng() % 3000}, handler);
      }
    } else if (dice < 70) {
      if (!requests.empty()) {  // cancel a recent request: races its grant or timeout
        if (requests[rng() % requests.size()].ticket.cancel()) shared.cancels_won.fetch_add(1);
      }
    } else if (dice < 78) {
      (void)r.try_grow(rng() % (4 * MiB));
    } else if (dice < 86) {
      (void)r.shrink(rng() % (4 * MiB));
    } else if (dice < 95) {
      r.release();
      shared.drain_delivered();
    } else if (dice < 97) {
      const std::uint64_t budget = (32 + rng() % 65) * MiB;  // 32 .. 96 MiB
      shared.pool.set_memory_budget(budget);
    } else {
      (void)shared.pool.stats();
    }
    shared.ops.fetch_add(1, std::memory_order_relaxed);
  }
  for (admit::SlotReservation& r : held) r.release();
  // Every request must have been answered by now or be answered by close().
  // The requests (and the handlers' references to them) must outlive that:
  // wait for them here, bounded by the watchdog.
  for (AsyncRequest& req : requests) {
    while (req.calls.load() == 0) std::this_thread::sleep_for(100us);
  }
  shared.drain_delivered();
  for (AsyncRequest& req : requests) {
    if (req.calls.load() != 1) {
      std::fprintf(stderr, "wait stress: a handler was called %d times\n", req.calls.load());
      std::abort();
    }
  }
}

void run(admit::Fairness fairness) {
  const std::uint64_t threads = std::max<std::uint64_t>(env_or("ADMIT_STRESS_THREADS", 4), 2);
  const std::uint64_t ops = env_or("ADMIT_WAIT_STRESS_OPS", 30'000);
  const Watchdog watchdog{std::chrono::seconds{env_or("ADMIT_STRESS_WATCHDOG_S", 300)}};

  Shared shared{fairness};
  std::latch start{static_cast<std::ptrdiff_t>(threads + 1)};
  admit_test::StatsWatcher watcher{[&] { return shared.pool.stats(); },
                                   [](const admit::Stats& s) {
                                     return s.slots_in_use > slot_count ||
                                            s.bytes_in_use > largest_budget ||
                                            s.waiters > max_waiters;
                                   },
                                   start};
  const auto began = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (std::uint64_t t = 0; t < threads; ++t) {
    workers.emplace_back(worker, std::ref(shared), std::ref(start), ops, 77 + t, t == 0);
  }
  for (std::thread& w : workers) w.join();
  watcher.stop();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();

  shared.pool.close();  // the closer did already; must be idempotent
  shared.drain_delivered();
  const bool idle = shared.pool.wait_idle(admit::SlotPool<>::clock::now() + 10s);

  const admit::Stats s = shared.pool.stats();
  std::uint64_t answered = 0;
  for (const auto& n : shared.answers) answered += n.load();
  std::printf(
      "wait stress (%s): %llu ops on %llu threads in %.2f s; %llu blocking, %llu async "
      "(%llu admitted), %llu cancels won, %llu refusals, %llu checker passes\n",
      fairness == admit::Fairness::fifo ? "fifo" : "barging",
      static_cast<unsigned long long>(shared.ops.load()), static_cast<unsigned long long>(threads),
      seconds, static_cast<unsigned long long>(shared.blocking_calls.load()),
      static_cast<unsigned long long>(shared.async_issued.load()),
      static_cast<unsigned long long>(shared.async_admitted.load()),
      static_cast<unsigned long long>(shared.cancels_won.load()),
      static_cast<unsigned long long>(answered), static_cast<unsigned long long>(watcher.checks()));

  CHECK(watcher.violations() == 0);
  CHECK(watcher.checks() > 0);
  CHECK(idle);
  CHECK(s.bytes_in_use == 0);
  CHECK(s.slots_in_use == 0);
  CHECK(s.waiters == 0);
  CHECK(s.peak_slots_in_use <= slot_count);
  CHECK(s.peak_bytes_in_use <= largest_budget);
  CHECK(shared.blocking_answers.load() == shared.blocking_calls.load());
  // The pool's refusal counts match what the callers were told, reason by
  // reason (each answer was counted once by whoever received it).
  for (std::size_t reason = 0; reason < admit::reason_count; ++reason) {
    CAPTURE(admit::to_string(static_cast<admit::Reason>(reason)));
    CHECK(s.rejected[static_cast<admit::Reason>(reason)] == shared.answers[reason].load());
  }
  CHECK(s.rejected.closed > 0);
  CHECK(s.rejected.timeout > 0);
  CHECK(s.rejected.cancelled == shared.cancels_won.load());
}

}  // namespace

TEST_CASE("waiting under races: FIFO", "[stress][wait]") { run(admit::Fairness::fifo); }

TEST_CASE("waiting under races: barging", "[stress][wait]") { run(admit::Fairness::barging); }

// ticket.hpp promises that a waiter admitted by a release is answered on the
// releasing thread, before release() returns. The pool's timer thread, woken
// by each new deadline, must not take that hand-over: it used to dispatch on
// every wake-up, and when it got the mutex between a release's counter update
// and the release's own dispatch, it ran the handler itself, late. The delay
// before each release varies so that some releases meet the timer's wake-up.
TEST_CASE("a waiter admitted by a release is answered on the releasing thread", "[stress][wait]") {
  const std::uint64_t rounds = env_or("ADMIT_WAIT_STRESS_OPS", 30'000);
  admit::SlotPool<> pool{admit::PoolConfig{.memory_budget = 1 * MiB, .slots = 1}};
  admit::SlotReservation held = pool.try_acquire(1).value();
  std::mt19937_64 rng{12345};
  std::uint64_t late = 0;
  for (std::uint64_t round = 0; round < rounds; ++round) {
    std::thread::id answered_on;
    admit::SlotReservation next;
    std::atomic<int> calls{0};
    admit::Ticket ticket =
        pool.async_acquire(1, std::chrono::steady_clock::now() + 1h, [&](admit::Admission&& a) {
          answered_on = std::this_thread::get_id();
          if (a) next = std::move(*a);
          calls.fetch_add(1, std::memory_order_release);
        });
    const auto spin_until =
        std::chrono::steady_clock::now() + std::chrono::nanoseconds{rng() % 40'000};
    while (std::chrono::steady_clock::now() < spin_until) {
    }
    held.release();
    if (calls.load(std::memory_order_acquire) != 1 || answered_on != std::this_thread::get_id()) {
      ++late;
      // Wait (bounded) for the handler wherever it runs, then go on with its reservation.
      const auto give_up = std::chrono::steady_clock::now() + 10s;
      while (calls.load(std::memory_order_acquire) == 0) {
        REQUIRE(std::chrono::steady_clock::now() < give_up);
        std::this_thread::yield();
      }
    }
    REQUIRE(next);
    held = std::move(next);
  }
  CHECK(late == 0);
}

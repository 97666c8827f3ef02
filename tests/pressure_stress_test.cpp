// Concurrency stress for pool pressure (set_pressure): worker threads admit,
// grow, shrink and release, and wait with short deadlines (blocking and
// async), while a toggler thread turns pressure on and off. Checked
// throughout: bytes and slots in use within the limits (a watcher thread),
// and no admission or grow ever succeeds while pressure was on for the whole
// call. At the end: every waiter answered exactly once, the pressure refusals
// counted by the pool are the ones the workers saw, and everything is back.
//
// "Pressure was on for the whole call": the toggler moves `phase` to an odd
// value after set_pressure(true) and to the next even one before
// set_pressure(false). A worker that reads the same odd phase before and after
// a call made the call entirely under pressure (for an async request: from
// the call to its handler).
//
// "a MemoryWatch polling while the pool is in use": a thread rewrites a fake
// cgroup (the limit and the usage move), another polls a MemoryWatch on it
// (start()'s thread, and poll() from the test too), while workers admit and
// release: never more slots or bytes than the largest budget set, and
// everything back at the end.
//
// Bounded by ADMIT_STRESS_OPS (default 2,000,000 operations in all, a quarter
// of them here) and ADMIT_STRESS_THREADS (default 4).
#include <admit/admit.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <latch>
#include <random>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "fake_root.hpp"
#include "support.hpp"
#include "wait_support.hpp"

namespace {

using admit::MiB;
using admit_test::env_or;

constexpr std::uint64_t budget = 64 * MiB;
constexpr std::uint32_t slot_count = 12;
// The workers go on past their operations until pressure has come and gone
// this often, however the threads are scheduled.
constexpr std::uint64_t min_pressure_cycles = 50;

struct AsyncRequest {
  std::atomic<int> calls{0};
  admit::Ticket ticket;
};

struct Shared {
  explicit Shared(admit::Fairness fairness, unsigned threads)
      : requests(threads),
        pool{admit::PoolConfig{.memory_budget = budget, .slots = slot_count, .fairness = fairness},
             admit::FlatPolicy{100}} {}

  // Each worker's async requests (stable addresses for the handlers), declared
  // before the pool so that a handler that never ran cannot outlive its target.
  std::vector<std::deque<AsyncRequest>> requests;
  admit::SlotPool<admit::FlatPolicy> pool;
  std::atomic<std::uint64_t> phase{0};  // odd: pressure is on (see the file comment)
  std::atomic<bool> workers_done{false};
  std::atomic<std::uint64_t> admitted_under_pressure{0};
  std::atomic<std::uint64_t> grown_under_pressure{0};
  std::atomic<std::uint64_t> pressure_refusals{0};  // of try_acquire, as the workers saw them
  std::atomic<std::uint64_t> async_issued{0};
  std::atomic<std::uint64_t> async_answered{0};
  std::atomic<std::uint64_t> answered_twice{0};
  std::atomic<std::uint64_t> unanswered{0};  // workers whose handlers did not all run
  std::atomic<std::uint64_t> ops{0};         // by all workers: the toggler's clock
};

bool whole_call_under_pressure(std::uint64_t before, std::uint64_t after) {
  return before == after && before % 2 == 1;
}

void worker(Shared& shared, std::latch& start, unsigned index, std::uint64_t ops,
            std::uint64_t seed) {
  std::mt19937_64 rng{seed};
  std::array<admit::SlotReservation, 3> held;
  std::deque<AsyncRequest>& requests = shared.requests[index];
  start.arrive_and_wait();
  for (std::uint64_t op = 0;
       op < ops || shared.phase.load(std::memory_order_relaxed) < 2 * min_pressure_cycles; ++op) {
    // relaxed: a progress count that orders nothing.
    shared.ops.fetch_add(1, std::memory_order_relaxed);
    admit::SlotReservation& r = held[rng() % held.size()];
    const std::uint64_t size = 1 + rng() % (12 * MiB);
    const unsigned dice = static_cast<unsigned>(rng() % 100);
    // acquire: pairs with the toggler's release stores (see the file comment).
    const std::uint64_t before = shared.phase.load(std::memory_order_acquire);
    if (dice < 35) {
      admit::Admission a = shared.pool.try_acquire(size);
      const std::uint64_t after = shared.phase.load(std::memory_order_acquire);
      if (a) {
        if (whole_call_under_pressure(before, after)) ++shared.admitted_under_pressure;
        r = std::move(a).value();
      } else if (a.error().reason == admit::Reason::pressure) {
        ++shared.pressure_refusals;
      }
    } else if (dice < 50) {
      if (r && r.try_grow(rng() % (2 * MiB)) &&
          whole_call_under_pressure(before, shared.phase.load(std::memory_order_acquire))) {
        ++shared.grown_under_pressure;
      }
    } else if (dice < 60) {
      r.shrink(rng() % (2 * MiB));
    } else if (dice < 80) {
      r.release();
    } else if (dice < 90) {
      r.release();  // never wait while holding: that is how real handlers deadlock
      admit::Admission a = shared.pool.acquire_for(size, std::chrono::microseconds{rng() % 1500});
      if (a) {
        if (whole_call_under_pressure(before, shared.phase.load(std::memory_order_acquire))) {
          ++shared.admitted_under_pressure;
        }
        r = std::move(a).value();
      }
    } else {
      AsyncRequest& request = requests.emplace_back();
      ++shared.async_issued;
      request.ticket = shared.pool.async_acquire_for(
          size, std::chrono::microseconds{rng() % 1500},
          [&shared, &request, before](admit::Admission&& a) {
            // Admitted with pressure on since before it was asked for: wrong.
            if (a &&
                whole_call_under_pressure(before, shared.phase.load(std::memory_order_acquire))) {
              ++shared.admitted_under_pressure;
            }
            // The reservation, if any, goes back at once, on whichever thread answers.
            if (request.calls.fetch_add(1) != 0) ++shared.answered_twice;
            ++shared.async_answered;
          });
      if (rng() % 4 == 0) request.ticket.cancel();
      if (requests.size() > 64) {
        // Answered ones only: a handler may still run for the others.
        while (!requests.empty() && requests.front().calls.load() != 0) requests.pop_front();
      }
    }
  }
  for (admit::SlotReservation& h : held) h.release();
  // Every handler of ours must have run before `requests` goes. Counted, not
  // REQUIREd: Catch's assertions are for the test's own thread.
  const bool all_answered = admit_test::eventually([&] {
    for (const AsyncRequest& request : requests) {
      if (request.calls.load() == 0) return false;
    }
    return true;
  });
  if (!all_answered) ++shared.unanswered;  // `requests` outlives the pool: see Shared
}

// Waits until the workers have done a few hundred to a few thousand more
// operations: each phase spans real work however the threads are scheduled.
void let_workers_run(Shared& shared, std::mt19937_64& rng) {
  const std::uint64_t until = shared.ops.load(std::memory_order_relaxed) + 200 + rng() % 2000;
  while (shared.ops.load(std::memory_order_relaxed) < until &&
         !shared.workers_done.load(std::memory_order_acquire)) {
    std::this_thread::yield();
  }
}

void toggler(Shared& shared, std::latch& start, std::uint64_t seed) {
  std::mt19937_64 rng{seed};
  start.arrive_and_wait();
  // acquire: pairs with the main thread's release store once the workers end.
  while (!shared.workers_done.load(std::memory_order_acquire)) {
    shared.pool.set_pressure(true);
    // release: a worker that reads this phase sees pressure set before it.
    shared.phase.fetch_add(1, std::memory_order_release);
    let_workers_run(shared, rng);
    shared.phase.fetch_add(1, std::memory_order_release);
    shared.pool.set_pressure(false);
    let_workers_run(shared, rng);
  }
}

}  // namespace

TEST_CASE("pressure turned on and off under load never admits and never loses capacity",
          "[stress][pressure]") {
  const admit::Fairness fairness = GENERATE(admit::Fairness::fifo, admit::Fairness::barging);
  const auto threads = static_cast<unsigned>(env_or("ADMIT_STRESS_THREADS", 4));
  const std::uint64_t ops_per_thread = env_or("ADMIT_STRESS_OPS", 2'000'000) / 4 / threads;
  Shared shared{fairness, threads};
  std::latch start{static_cast<std::ptrdiff_t>(threads) + 2};
  admit_test::StatsWatcher watcher{
      [&] { return shared.pool.stats(); },
      [](const admit::Stats& s) { return s.bytes_in_use > budget || s.slots_in_use > slot_count; },
      start};
  std::thread flipper{[&] { toggler(shared, start, 7); }};
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] { worker(shared, start, t, ops_per_thread, 1000 + t); });
  }
  for (std::thread& w : workers) w.join();
  shared.workers_done.store(true, std::memory_order_release);
  flipper.join();
  watcher.stop();

  INFO(watcher.checks() << " snapshots; phase " << shared.phase.load());
  CHECK(watcher.violations() == 0);
  CHECK(shared.phase.load() >= 2 * min_pressure_cycles);
  CHECK_FALSE(shared.pool.under_pressure());
  CHECK(shared.admitted_under_pressure.load() == 0);
  CHECK(shared.grown_under_pressure.load() == 0);
  CHECK(shared.answered_twice.load() == 0);
  CHECK(shared.unanswered.load() == 0);
  CHECK(shared.async_answered.load() == shared.async_issued.load());
  const admit::Stats s = shared.pool.stats();
  CHECK(s.rejected.pressure == shared.pressure_refusals.load());
  CHECK(s.rejected.pressure > 0);
  CHECK(s.bytes_in_use == 0);
  CHECK(s.slots_in_use == 0);
  CHECK(s.waiters == 0);
  CHECK(s.double_releases == 0);
  // And the whole capacity is there to take.
  std::vector<admit::SlotReservation> all;
  for (std::uint32_t i = 0; i < slot_count; ++i) {
    all.push_back(std::move(shared.pool.try_acquire(budget / slot_count)).value());
  }
  CHECK(shared.pool.stats().bytes_in_use == budget / slot_count * slot_count);
}

TEST_CASE("a MemoryWatch polling while the pool is in use loses nothing", "[stress][pressure]") {
  const auto threads = static_cast<unsigned>(env_or("ADMIT_STRESS_THREADS", 4));
  const std::uint64_t ops_per_thread = env_or("ADMIT_STRESS_OPS", 2'000'000) / 8 / threads;
  admit_test::FakeRoot root;
  const auto write_cgroup = [&](std::uint64_t limit, std::uint64_t usage) {
    root.write("sys/fs/cgroup/memory.max", std::to_string(limit) + "\n");
    root.write("sys/fs/cgroup/memory.current", std::to_string(usage) + "\n");
  };
  root.write("proc/self/cgroup", "0::/\n");
  write_cgroup(64 * MiB, MiB);
  admit::SlotPool<admit::FlatPolicy> pool{
      admit::PoolConfig{.memory_budget = budget, .slots = slot_count}, admit::FlatPolicy{100}};
  // Budgets are 50 % of limits in 32..128 MiB: at most 64 MiB.
  admit::MemoryWatch watch{pool, admit::WatchConfig{.rule = {.percent = 50}, .root = root.path()}};
  std::latch start{static_cast<std::ptrdiff_t>(threads) + 2};
  admit_test::StatsWatcher watcher{
      [&] { return pool.stats(); },
      [](const admit::Stats& s) { return s.bytes_in_use > budget || s.slots_in_use > slot_count; },
      start};
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> polls{0};
  constexpr std::uint64_t min_polls = 200;
  std::thread rewriter{[&] {
    std::mt19937_64 rng{3};
    start.arrive_and_wait();
    watch.start(std::chrono::milliseconds{1});
    while (!done.load(std::memory_order_acquire)) {
      const std::uint64_t limit = (32 + rng() % 97) * MiB;
      write_cgroup(limit, rng() % limit);
      if (watch.poll().facts) ++polls;
      std::this_thread::yield();
    }
    watch.stop();
  }};
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng{500 + t};
      std::array<admit::SlotReservation, 2> held;
      start.arrive_and_wait();
      // Past the operations until the watch has polled often, however the
      // threads are scheduled.
      for (std::uint64_t op = 0; op < ops_per_thread || polls.load() < min_polls; ++op) {
        admit::SlotReservation& r = held[rng() % held.size()];
        if (rng() % 2 == 0) {
          admit::Admission a = pool.try_acquire(1 + rng() % (8 * MiB));
          if (a) r = std::move(a).value();
        } else {
          r.release();
        }
      }
    });
  }
  for (std::thread& w : workers) w.join();
  done.store(true, std::memory_order_release);
  rewriter.join();
  watcher.stop();
  INFO(polls.load() << " polls with facts, " << watcher.checks() << " snapshots");
  CHECK(polls.load() >= min_polls);
  CHECK(watcher.violations() == 0);
  const admit::Stats s = pool.stats();
  CHECK(s.bytes_in_use == 0);
  CHECK(s.slots_in_use == 0);
  CHECK(s.waiters == 0);
  CHECK(s.double_releases == 0);
}

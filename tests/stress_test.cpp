// Concurrency stress for SlotPool and SlotReservation.
//
// Worker threads hammer one pool with a random mix of admissions, grows,
// shrinks, releases, moves within a thread and hand-overs to other threads
// (a reservation released on a thread other than the one that acquired it).
// Meanwhile a checker thread keeps asserting the pool's invariants:
//   - bytes in use never exceed the budget, slots in use never exceed slots;
//   - no slot index is held by two reservations at once (every holder marks
//     its index in `owners`; a second mark on a held index is a violation);
// and at the end, once every reservation is gone:
//   - zero bytes and zero slots in use;
//   - the pool's admitted and per-reason rejected totals equal what the
//     workers counted, one by one.
// All threads start together at a latch; the run is bounded by an operation
// count (ADMIT_STRESS_OPS, default 2,000,000 in all; ADMIT_STRESS_THREADS,
// default 4) and ctest's timeout fails it instead of letting it hang.
#include <admit/admit.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <latch>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "support.hpp"
#include "wait_support.hpp"

namespace {

using admit::MiB;
using admit_test::env_or;

constexpr std::uint64_t budget = 64 * MiB;
constexpr std::uint32_t slot_count = 16;
constexpr std::size_t held_per_thread = 4;

struct Shared {
  admit::SlotPool<> pool{admit::PoolConfig{.memory_budget = budget, .slots = slot_count}};
  std::array<std::atomic<int>, slot_count> owners{};  // 1 while some reservation holds the index
  std::atomic<std::uint64_t> violations{0};
  std::atomic<std::uint64_t> admitted{0};
  std::array<std::atomic<std::uint64_t>, admit::reason_count> rejected{};
  std::atomic<std::uint64_t> handed_over{0};

  // Reservations in transit between threads. A mutex is fine here: this is
  // the test's plumbing, not the admission path.
  std::mutex mailbox_mutex;
  std::deque<admit::SlotReservation> mailbox;

  void mark_held(const admit::SlotReservation& r) {
    // A previous value of 1 means another live reservation has this index.
    if (owners[r.slot()].exchange(1, std::memory_order_acq_rel) != 0) violation("slot held twice");
  }
  void mark_free(const admit::SlotReservation& r) {
    if (r && owners[r.slot()].exchange(0, std::memory_order_acq_rel) != 1) {
      violation("slot freed but was not marked held");
    }
  }
  void violation(const char* what) {
    if (violations.fetch_add(1) < 10) std::fprintf(stderr, "stress violation: %s\n", what);
  }
};

// A size drawn so that every outcome happens: mostly small uploads, a long
// tail to 2 GiB (whose 5 %, capped at 100 MiB, exceeds the 64 MiB budget).
std::uint64_t random_size(std::mt19937_64& rng) {
  const unsigned magnitude = 10 + static_cast<unsigned>(rng() % 22);  // 1 KiB .. 2 GiB
  return rng() % (std::uint64_t{1} << magnitude);
}

void worker(Shared& shared, std::latch& start, std::uint64_t ops, std::uint64_t seed) {
  std::mt19937_64 rng{seed};
  std::array<admit::SlotReservation, held_per_thread> held;
  start.arrive_and_wait();
  for (std::uint64_t op = 0; op < ops; ++op) {
    admit::SlotReservation& r = held[rng() % held_per_thread];
    const unsigned dice = static_cast<unsigned>(rng() % 100);
    if (dice < 40) {  // admit into this place, releasing what it held
      shared.mark_free(r);
      r.release();
      admit::Admission a = shared.pool.try_acquire(random_size(rng));
      if (a) {
        shared.admitted.fetch_add(1, std::memory_order_relaxed);
        shared.mark_held(*a);
        r = std::move(a).value();
      } else {
        shared.rejected[static_cast<std::size_t>(a.error().reason)].fetch_add(
            1, std::memory_order_relaxed);
        if (a.error().reason == admit::Reason::too_large && a.error().needed_bytes <= budget) {
          shared.violation("too_large for a request that fits the budget");
        }
      }
    } else if (dice < 55) {  // grow
      const std::uint64_t before = r.bytes();
      const std::uint64_t extra = rng() % (8 * MiB);
      const admit::GrowResult g = r.try_grow(extra);
      if (g && r.bytes() != before + extra) shared.violation("grow changed bytes wrongly");
      if (!g && r.bytes() != before) shared.violation("refused grow changed bytes");
    } else if (dice < 70) {  // shrink
      const std::uint64_t before = r.bytes();
      const std::uint64_t given = r.shrink(rng() % (4 * MiB));
      if (r.bytes() != before - given) shared.violation("shrink changed bytes wrongly");
    } else if (dice < 85) {  // release
      shared.mark_free(r);
      r.release();
    } else if (dice < 95) {  // move within the thread; the target's holding is released
      admit::SlotReservation& target = held[rng() % held_per_thread];
      if (&target != &r) {
        shared.mark_free(target);
        target = std::move(r);
        if (r) shared.violation("moved-from reservation still holds");
      }
    } else {  // hand over to whichever thread takes it
      std::optional<admit::SlotReservation> taken;
      {
        const std::scoped_lock lock{shared.mailbox_mutex};
        if (r && shared.mailbox.size() < 8) {
          shared.mailbox.push_back(std::move(r));
        } else if (!shared.mailbox.empty()) {
          taken.emplace(std::move(shared.mailbox.front()));
          shared.mailbox.pop_front();
        }
      }
      if (taken) {
        shared.mark_free(r);
        r = std::move(*taken);
        shared.handed_over.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
  for (admit::SlotReservation& r : held) {
    shared.mark_free(r);
    r.release();
  }
}

}  // namespace

TEST_CASE("concurrent admissions never exceed the limits and give everything back", "[stress]") {
  const std::uint64_t threads = std::max<std::uint64_t>(env_or("ADMIT_STRESS_THREADS", 4), 2);
  const std::uint64_t total_ops = env_or("ADMIT_STRESS_OPS", 2'000'000);
  const std::uint64_t ops_per_thread = total_ops / threads;

  Shared shared;
  std::latch start{static_cast<std::ptrdiff_t>(threads + 1)};
  admit_test::StatsWatcher watcher{[&] { return shared.pool.stats(); },
                                   [](const admit::Stats& s) {
                                     return s.bytes_in_use > budget ||
                                            s.slots_in_use > slot_count ||
                                            s.peak_bytes_in_use > budget ||
                                            s.peak_slots_in_use > slot_count;
                                   },
                                   start};
  const auto began = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (std::uint64_t t = 0; t < threads; ++t) {
    workers.emplace_back(worker, std::ref(shared), std::ref(start), ops_per_thread, 1000 + t);
  }
  for (std::thread& w : workers) w.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  watcher.stop();
  for (admit::SlotReservation& r : shared.mailbox) shared.mark_free(r);
  shared.mailbox.clear();

  std::printf(
      "stress: %llu threads x %llu ops = %llu ops in %.2f s; %llu admitted, "
      "%llu handed over, %llu checker passes\n",
      static_cast<unsigned long long>(threads), static_cast<unsigned long long>(ops_per_thread),
      static_cast<unsigned long long>(threads * ops_per_thread), seconds,
      static_cast<unsigned long long>(shared.admitted.load()),
      static_cast<unsigned long long>(shared.handed_over.load()),
      static_cast<unsigned long long>(watcher.checks()));

  CHECK(threads * ops_per_thread >= std::min<std::uint64_t>(total_ops, 2'000'000) - threads);
  CHECK(shared.violations.load() == 0);
  CHECK(watcher.violations() == 0);
  CHECK(watcher.checks() > 0);

  const admit::Stats s = shared.pool.stats();
  CHECK(s.bytes_in_use == 0);
  CHECK(s.slots_in_use == 0);
  CHECK(s.peak_bytes_in_use <= budget);
  CHECK(s.peak_slots_in_use == slot_count);  // the load is heavy enough to fill every slot
  CHECK(s.admitted == shared.admitted.load());
  for (std::size_t reason = 0; reason < admit::reason_count; ++reason) {
    CAPTURE(admit::to_string(static_cast<admit::Reason>(reason)));
    CHECK(s.rejected[static_cast<admit::Reason>(reason)] == shared.rejected[reason].load());
  }
  // Every kind of refusal the fast path can give actually happened.
  CHECK(s.rejected.too_large > 0);
  CHECK(s.rejected.no_slot > 0);
  CHECK(s.rejected.no_memory > 0);
  for (std::uint32_t slot = 0; slot < slot_count; ++slot) CHECK(shared.owners[slot].load() == 0);
}

// Concurrency stress for reservations given back twice (reservation.hpp).
//
// "stale copies in a busy pool": worker threads hammer one pool as in
// stress_test.cpp (admissions, grows, shrinks, releases, hand-overs to other
// threads) and also make bitwise copies of reservations they hold (what GCC
// 12's coroutine bug makes), give the original back, and later - after up to
// `max_copy_age` more operations, long enough for the slot to be claimed
// again by anyone - shrink, grow or release the stale copy, on their own
// thread or on another one through the mailbox. Every such later release is
// ordered after the original's, which is what slot_bitmap.hpp guarantees to
// catch. A checker thread asserts throughout that bytes and slots in use stay
// within the limits (an underflow would show as a huge figure); the workers
// assert that a stale copy never moves bytes nor keeps holding, and that no
// slot index is ever held twice (a stale copy that freed a live holder's
// slot would let a newcomer claim it). At the end: zero in use, one
// double release counted per copy, and the pool admits its full capacity.
//
// "copies released concurrently": two threads release two copies of one
// reservation at the same moment, round after round, with nobody else
// claiming: exactly one gives the slot and the bytes back, every time.
//
// Threads start at a latch or barrier; runs are bounded by ADMIT_STRESS_OPS
// (default 2,000,000 operations in all) and ADMIT_STRESS_THREADS (default 4).
#include <admit/admit.hpp>

#include <array>
#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "bitwise_copy.hpp"
#include "catch.hpp"
#include "support.hpp"
#include "wait_support.hpp"

namespace {

using admit::MiB;
using admit_test::BitwiseCopy;
using admit_test::env_or;

constexpr std::uint64_t budget = 64 * MiB;
constexpr std::uint32_t slot_count = 40;  // three bitmap words: the scan and its hint move
constexpr std::size_t held_per_thread = 4;
constexpr std::size_t copies_per_thread = 4;
// Far fewer claims of one slot than its 16-bit generation takes to wrap.
constexpr std::uint64_t max_copy_age = 200;

struct StaleCopy {
  std::unique_ptr<BitwiseCopy> copy;
  std::uint64_t made_at = 0;  // the maker's operation count
};

struct Shared {
  admit::SlotPool<admit::FlatPolicy> pool{
      admit::PoolConfig{.memory_budget = budget, .slots = slot_count}, admit::FlatPolicy{100}};
  std::array<std::atomic<int>, slot_count> owners{};  // 1 while a live reservation holds the index
  std::atomic<std::uint64_t> violations{0};
  std::atomic<std::uint64_t> copies_made{0};
  std::atomic<std::uint64_t> admitted{0};

  // Originals and stale copies in transit between threads: the test's
  // plumbing, not the admission path, so a mutex is fine.
  std::mutex mailbox_mutex;
  std::deque<admit::SlotReservation> originals;
  std::deque<std::unique_ptr<BitwiseCopy>> copies;

  void mark_held(const admit::SlotReservation& r) {
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

/// What a thread does with a stale copy: any operation must give back nothing.
void retire(Shared& shared, BitwiseCopy& copy, std::mt19937_64& rng) {
  switch (rng() % 4) {
    case 0:
      if (copy->shrink(rng() % (2 * MiB)) != 0) shared.violation("a stale copy shrank");
      break;
    case 1:
      if (copy->try_grow(rng() % (2 * MiB))) shared.violation("a stale copy grew");
      break;
    case 2:
      copy->release();
      break;
    default:
      copy.destroy();  // the destructor is the release
      return;
  }
  if (copy.get()) shared.violation("a stale copy still holds after an operation on the pool");
  copy.destroy();
}

void worker(Shared& shared, std::latch& start, std::uint64_t ops, std::uint64_t seed) {
  std::mt19937_64 rng{seed};
  std::array<admit::SlotReservation, held_per_thread> held;
  std::array<StaleCopy, copies_per_thread> stale;
  start.arrive_and_wait();
  for (std::uint64_t op = 0; op < ops; ++op) {
    admit::SlotReservation& r = held[rng() % held_per_thread];
    const unsigned dice = static_cast<unsigned>(rng() % 100);
    if (dice < 35) {  // admit into this place, releasing what it held
      shared.mark_free(r);
      r.release();
      admit::Admission a = shared.pool.try_acquire(rng() % (12 * MiB));
      if (a) {
        shared.admitted.fetch_add(1, std::memory_order_relaxed);
        shared.mark_held(*a);
        r = std::move(a).value();
      }
    } else if (dice < 45) {  // grow
      const std::uint64_t before = r.bytes();
      const std::uint64_t extra = rng() % (4 * MiB);
      const admit::GrowResult g = r.try_grow(extra);
      if ((g && r.bytes() != before + extra) || (!g && r.bytes() != before)) {
        shared.violation("a live reservation's grow changed bytes wrongly");
      }
    } else if (dice < 55) {  // shrink
      const std::uint64_t before = r.bytes();
      if (r.shrink(rng() % (2 * MiB)) > before) shared.violation("shrank more than held");
    } else if (dice < 65) {  // release
      shared.mark_free(r);
      r.release();
    } else if (dice < 80) {  // copy, give the original back, keep the stale copy
      StaleCopy& place = stale[rng() % copies_per_thread];
      if (place.copy) retire(shared, *place.copy, rng);
      place.copy.reset();
      if (r) {
        place.copy = std::make_unique<BitwiseCopy>(r);
        place.made_at = op;
        shared.copies_made.fetch_add(1, std::memory_order_relaxed);
        shared.mark_free(r);
        r.release();
      }
    } else if (dice < 90) {  // retire the stale copies that are old enough
      for (StaleCopy& place : stale) {
        if (place.copy && (op - place.made_at > max_copy_age || rng() % 4 == 0)) {
          retire(shared, *place.copy, rng);
          place.copy.reset();
        }
      }
    } else {  // hand an original or a stale copy over to whichever thread takes it
      std::optional<admit::SlotReservation> taken;
      std::unique_ptr<BitwiseCopy> taken_copy;
      StaleCopy& place = stale[rng() % copies_per_thread];
      {
        const std::scoped_lock lock{shared.mailbox_mutex};
        if (r && shared.originals.size() < 8) {
          shared.originals.push_back(std::move(r));
        } else if (!shared.originals.empty()) {
          taken.emplace(std::move(shared.originals.front()));
          shared.originals.pop_front();
        }
        if (place.copy && shared.copies.size() < 8) {
          shared.copies.push_back(std::move(place.copy));
        } else if (!shared.copies.empty()) {
          taken_copy = std::move(shared.copies.front());
          shared.copies.pop_front();
        }
      }
      if (taken) {
        shared.mark_free(r);
        r = std::move(*taken);
      }
      if (taken_copy) retire(shared, *taken_copy, rng);  // on another thread than its maker
    }
    // The age bound holds whatever the dice say.
    for (StaleCopy& place : stale) {
      if (place.copy && op - place.made_at > max_copy_age) {
        retire(shared, *place.copy, rng);
        place.copy.reset();
      }
    }
  }
  for (StaleCopy& place : stale) {
    if (place.copy) retire(shared, *place.copy, rng);
  }
  for (admit::SlotReservation& r : held) {
    shared.mark_free(r);
    r.release();
  }
}

}  // namespace

TEST_CASE("stale copies released in a busy pool are refused and leave it exact",
          "[stress][double_release]") {
  const std::uint64_t threads = std::max<std::uint64_t>(env_or("ADMIT_STRESS_THREADS", 4), 2);
  const std::uint64_t ops_per_thread = env_or("ADMIT_STRESS_OPS", 2'000'000) / threads;

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
  std::vector<std::thread> workers;
  for (std::uint64_t t = 0; t < threads; ++t) {
    workers.emplace_back(worker, std::ref(shared), std::ref(start), ops_per_thread, 7000 + t);
  }
  for (std::thread& w : workers) w.join();
  watcher.stop();
  for (admit::SlotReservation& r : shared.originals) shared.mark_free(r);
  shared.originals.clear();
  shared.copies.clear();  // their destructors: the last stale releases

  const admit::Stats s = shared.pool.stats();
  std::printf(
      "double release stress: %llu threads x %llu ops; %llu admitted, %llu stale copies, "
      "%llu checker passes\n",
      static_cast<unsigned long long>(threads), static_cast<unsigned long long>(ops_per_thread),
      static_cast<unsigned long long>(shared.admitted.load()),
      static_cast<unsigned long long>(shared.copies_made.load()),
      static_cast<unsigned long long>(watcher.checks()));
  CHECK(shared.violations.load() == 0);
  CHECK(watcher.violations() == 0);
  CHECK(watcher.checks() > 0);
  CHECK(shared.copies_made.load() > 1000);
  CHECK(s.double_releases == shared.copies_made.load());  // each copy counted exactly once
  CHECK(s.bytes_in_use == 0);
  CHECK(s.slots_in_use == 0);
  CHECK(s.admitted == shared.admitted.load());
  for (std::uint32_t slot = 0; slot < slot_count; ++slot) CHECK(shared.owners[slot].load() == 0);

  std::vector<admit::SlotReservation> all;  // the whole capacity is admittable again
  for (std::uint32_t i = 0; i < slot_count; ++i) {
    admit::Admission a = shared.pool.try_acquire(i == 0 ? budget : 0);
    REQUIRE(a);
    all.push_back(std::move(a).value());
  }
  CHECK_FALSE(shared.pool.try_acquire(0));
}

TEST_CASE("two copies of one reservation released at the same moment give back once",
          "[stress][double_release]") {
  const std::uint64_t rounds =
      std::max<std::uint64_t>(env_or("ADMIT_STRESS_OPS", 2'000'000) / 200, 100);
  admit::SlotPool<admit::FlatPolicy> pool{admit::PoolConfig{.memory_budget = budget, .slots = 2},
                                          admit::FlatPolicy{100}};
  admit::SlotReservation original;
  std::optional<BitwiseCopy> copy;
  // Phase 1: both release; phase 2: the main thread checks and sets up again.
  std::barrier sync{3};
  const auto release_original = [&] {
    for (std::uint64_t i = 0; i < rounds; ++i) {
      sync.arrive_and_wait();
      original.release();
      sync.arrive_and_wait();
    }
  };
  const auto release_copy = [&] {
    for (std::uint64_t i = 0; i < rounds; ++i) {
      sync.arrive_and_wait();
      copy->destroy();
      sync.arrive_and_wait();
    }
  };
  std::thread a{release_original};
  std::thread b{release_copy};
  std::uint64_t wrong = 0;
  for (std::uint64_t i = 0; i < rounds; ++i) {
    original = std::move(pool.try_acquire(MiB + i % 7)).value();
    copy.emplace(original);
    sync.arrive_and_wait();  // go
    sync.arrive_and_wait();  // both done
    const admit::Stats s = pool.stats();
    if (s.bytes_in_use != 0 || s.slots_in_use != 0 || s.double_releases != i + 1) ++wrong;
    copy.reset();
  }
  a.join();
  b.join();
  CHECK(wrong == 0);
  CHECK(pool.stats().double_releases == rounds);
  CHECK(pool.try_acquire(budget));
}

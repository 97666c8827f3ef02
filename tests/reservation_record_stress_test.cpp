// Concurrency stress for the reservation records (PoolConfig::
// track_reservations): worker threads admit, label, grow, shrink, move and
// release, some reservations handed to another thread to finish, while a
// reader thread takes snapshots with SlotPool::reservations() and describe
// data with head_waiter_needs(). Every record of every snapshot must be
// consistent in itself, which a torn read (fields of two writes, or of two
// reservations of one slot) would break:
//   - its label is empty or "d=<its declared size>";
//   - its bytes are a multiple of its declared size, at least one of it (the
//     workers grow and shrink in whole declared sizes);
//   - its slot is in range and appears once; it was admitted in the past.
// At the end every reservation is gone, and so is every record.
//
// Bounded by ADMIT_STRESS_OPS (default 2,000,000 operations in all, a tenth
// of them here) and ADMIT_STRESS_THREADS (default 4); the reader keeps going
// until the workers are done and has taken at least min_snapshots.
#include <admit/admit.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <latch>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

namespace {

using admit::KiB;
using admit_test::env_or;

constexpr std::uint32_t slot_count = 12;
constexpr std::uint64_t min_snapshots = 200;

struct Shared {
  admit::SlotPool<admit::FlatPolicy> pool{
      admit::PoolConfig{
          .memory_budget = 4096 * KiB, .slots = slot_count, .track_reservations = true},
      admit::FlatPolicy{100}};
  std::atomic<std::uint64_t> violations{0};
  std::atomic<std::uint64_t> snapshots{0};
  std::atomic<std::uint64_t> records_seen{0};
  std::atomic<unsigned> workers_done{0};
  // Reservations handed from one worker to another (released by the taker).
  std::mutex handed_mutex;
  std::deque<admit::SlotReservation> handed;
};

std::string label_for(std::uint64_t declared_size) { return "d=" + std::to_string(declared_size); }

void check_snapshot(Shared& s) {
  const std::vector<admit::ReservationRecord> records = s.pool.reservations();
  const auto now = std::chrono::steady_clock::now();
  std::vector<bool> seen(slot_count, false);
  for (const admit::ReservationRecord& r : records) {
    const bool label_ok = r.label.empty() || r.label == label_for(r.declared_size);
    const bool bytes_ok =
        r.declared_size != 0 && r.bytes >= r.declared_size && r.bytes % r.declared_size == 0;
    const bool slot_ok = r.slot < slot_count && !seen[r.slot];
    if (slot_ok) seen[r.slot] = true;
    if (!label_ok || !bytes_ok || !slot_ok || r.admitted_at > now) {
      s.violations.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (records.size() > slot_count) s.violations.fetch_add(1, std::memory_order_relaxed);
  s.records_seen.fetch_add(records.size(), std::memory_order_relaxed);
  static_cast<void>(s.pool.head_waiter_needs());
  s.snapshots.fetch_add(1, std::memory_order_relaxed);
}

void work(Shared& s, std::uint64_t ops, unsigned seed) {
  std::minstd_rand rng{seed};
  std::vector<admit::SlotReservation> held;
  for (std::uint64_t i = 0; i < ops; ++i) {
    const unsigned action = rng() % 8;
    if (action <= 2 || held.empty()) {
      const std::uint64_t declared = (1 + rng() % 8) * KiB;
      admit::Admission a = s.pool.try_acquire(declared);
      if (a) {
        admit::SlotReservation r = std::move(a).value();
        if (rng() % 4 != 0) r.set_label(label_for(declared));
        held.push_back(std::move(r));
      }
      continue;
    }
    admit::SlotReservation& r = held[rng() % held.size()];
    switch (action) {
      case 3:  // grow by one declared size
        static_cast<void>(r.try_grow(r.declared_size()));
        break;
      case 4:  // shrink by one, if it has grown
        if (r.bytes() > r.declared_size()) static_cast<void>(r.shrink(r.declared_size()));
        break;
      case 5: {  // move within the thread
        admit::SlotReservation moved{std::move(r)};
        r = std::move(moved);
        break;
      }
      case 6: {  // hand over to another worker, or take one handed over
        const std::scoped_lock lock{s.handed_mutex};
        if (s.handed.size() < 4) {
          s.handed.push_back(std::move(r));
        } else {
          r = std::move(s.handed.front());
          s.handed.pop_front();
        }
        break;
      }
      default:
        r.release();
        break;
    }
    std::erase_if(held, [](const admit::SlotReservation& h) { return !h; });
  }
  held.clear();
}

}  // namespace

TEST_CASE("reservation records stay consistent while reservations come and go",
          "[stress][records]") {
  const auto threads = static_cast<unsigned>(env_or("ADMIT_STRESS_THREADS", 4));
  const std::uint64_t ops = env_or("ADMIT_STRESS_OPS", 2'000'000) / 10 / threads;
  Shared s;
  std::latch start{threads + 1};
  std::thread reader{[&] {
    start.arrive_and_wait();
    while (s.workers_done.load(std::memory_order_acquire) < threads ||
           s.snapshots.load(std::memory_order_relaxed) < min_snapshots) {
      check_snapshot(s);
    }
  }};
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      start.arrive_and_wait();
      work(s, ops, 17 + t);
      s.workers_done.fetch_add(1, std::memory_order_release);
    });
  }
  for (std::thread& w : workers) w.join();
  reader.join();
  s.handed.clear();

  CHECK(s.violations.load() == 0);
  CHECK(s.snapshots.load() >= min_snapshots);
  CHECK(s.records_seen.load() > 0);
  CHECK(s.pool.reservations().empty());
  const admit::Stats stats = s.pool.stats();
  CHECK(stats.bytes_in_use == 0);
  CHECK(stats.slots_in_use == 0);
  CHECK(stats.double_releases == 0);
}

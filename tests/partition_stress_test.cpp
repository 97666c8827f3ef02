// Concurrency stress for partitions (partition.hpp): workers in three
// partitions and outside any admit with try_acquire, blocking and async waits
// with short deadlines (async ones sometimes cancelled), grow, shrink and
// release, while a controller adds partitions and moves the budget and a
// watcher reads every partition's figures. Checked throughout: no partition
// holds more bytes or slots than its ceiling, and the pool stays within its
// budget and slots, however the two limits race. At the end: everything back
// in every partition and in the pool, and each partition's admissions are
// the ones its workers counted, and every async request was answered once.
//
// Bounded by ADMIT_STRESS_OPS (default 2,000,000 operations in all, a tenth
// of them here) and ADMIT_STRESS_THREADS (default 4).
#include <admit/admit.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <latch>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "support.hpp"
#include "wait_support.hpp"

namespace {

using admit::Admission;
using admit::MiB;
using admit::Partition;
using admit::Reason;
using admit::SlotReservation;
using Pool = admit::SlotPool<admit::FlatPolicy>;

constexpr std::uint64_t budget = 64 * MiB;
constexpr std::uint32_t slot_count = 12;

struct Shared {
  explicit Shared(admit::Fairness fairness)
      : pool{admit::PoolConfig{.memory_budget = budget,
                               .slots = slot_count,
                               .fairness = fairness,
                               .max_head_wait = std::chrono::milliseconds{2}},
             admit::FlatPolicy{100}} {
    parts[0] = pool.add_partition("batch", {.guarantee_percent = 10, .ceiling_percent = 40});
    parts[1] = pool.add_partition("interactive", {.guarantee_percent = 50, .ceiling_percent = 90});
    parts[2] = pool.add_partition("small", {.guarantee_percent = 5, .ceiling_percent = 10});
  }

  Pool pool;
  std::array<std::optional<Partition>, 3> parts;
  std::array<std::atomic<std::uint64_t>, 3> admitted{};  // as the workers saw it
  std::atomic<std::uint64_t> violations{0};
  std::atomic<bool> stop{false};
};

void check_limits(Shared& s) {
  const admit::Stats st = s.pool.stats();
  if (st.slots_in_use > slot_count || st.bytes_in_use > budget) s.violations.fetch_add(1);
  for (const admit::PartitionStats& p : s.pool.partition_stats()) {
    // Exact: taken under the pool's lock. The byte ceiling moves with the
    // budget, and a shrink may leave what was admitted before above the new
    // one; never above the ceiling of the largest budget the pool had.
    const std::uint64_t widest = budget * p.config.ceiling_percent / 100;
    if (p.slots_in_use > p.ceiling_slots || p.bytes_in_use > widest) {
      s.violations.fetch_add(1);
    }
  }
}

void worker(Shared& s, unsigned index, std::uint64_t ops, std::latch& start) {
  std::mt19937_64 rng{index * 7919 + 1};
  std::deque<SlotReservation> held;
  std::deque<std::pair<std::shared_ptr<std::atomic<int>>, admit::Ticket>> pending;
  start.arrive_and_wait();
  for (std::uint64_t i = 0; i < ops; ++i) {
    const unsigned which = static_cast<unsigned>(rng() % 4);  // 3: no partition
    const std::uint64_t bytes = (rng() % 16) * MiB / 2;
    const auto note = [&](const Admission& a) {
      if (a && which < 3) s.admitted[which].fetch_add(1, std::memory_order_relaxed);
    };
    switch (rng() % 8) {
      case 0:
      case 1: {
        Admission a = which < 3 ? s.pool.try_acquire(bytes, *s.parts[which])
                                : s.pool.try_acquire(bytes);
        note(a);
        if (a) held.push_back(std::move(a).value());
        break;
      }
      case 2: {
        const auto wait = std::chrono::microseconds{rng() % 500};
        Admission a = which < 3 ? s.pool.acquire_for(bytes, wait, *s.parts[which])
                                : s.pool.acquire_for(bytes, wait);
        note(a);
        if (a) held.push_back(std::move(a).value());
        break;
      }
      case 3: {
        if (which == 3) break;
        auto answered = std::make_shared<std::atomic<int>>(0);
        auto* const counter = &s.admitted[which];
        admit::Ticket t = s.pool.async_acquire_for(
            bytes, std::chrono::milliseconds{1}, *s.parts[which],
            [answered, counter](Admission&& a) {
              if (a) counter->fetch_add(1, std::memory_order_relaxed);
              answered->fetch_add(1);  // the reservation goes back right here
            });
        if (rng() % 2 == 0) t.cancel();
        pending.emplace_back(std::move(answered), std::move(t));
        break;
      }
      case 4:
        if (!held.empty()) static_cast<void>(held.front().try_grow(MiB));
        break;
      case 5:
        if (!held.empty()) static_cast<void>(held.back().shrink(MiB / 2));
        break;
      default:
        if (!held.empty()) held.pop_front();
        break;
    }
    while (held.size() > 3) held.pop_front();
    if (i % 64 == 0) check_limits(s);
  }
  held.clear();
  // Catch's assertions are not for other threads: count, and check in the test.
  for (const auto& entry : pending) {
    const std::atomic<int>& answered = *entry.first;
    const bool once = admit_test::eventually([&] { return answered.load() != 0; }) &&
                      answered.load() == 1;
    if (!once) s.violations.fetch_add(1);
  }
}

}  // namespace

TEST_CASE("partitions under load: neither limit is overshot and everything comes back",
          "[stress][partition]") {
  const admit::Fairness fairness =
      GENERATE(admit::Fairness::fifo, admit::Fairness::barging, admit::Fairness::lanes);
  const auto threads =
      static_cast<unsigned>(admit_test::env_or("ADMIT_STRESS_THREADS", 4));
  const std::uint64_t ops = admit_test::env_or("ADMIT_STRESS_OPS", 2'000'000) / 10 / 3 / threads;
  Shared s{fairness};
  std::latch start{threads + 1};
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&s, t, ops, &start] { worker(s, t, ops, start); });
  }
  std::thread controller{[&s] {
    std::mt19937_64 rng{42};
    int added = 0;
    while (!s.stop.load()) {
      s.pool.set_memory_budget(budget / 2 + (rng() % (budget / 2)));
      if (added < 8) s.pool.add_partition("late" + std::to_string(added++), {});
      check_limits(s);
      std::this_thread::sleep_for(std::chrono::microseconds{300});
    }
    s.pool.set_memory_budget(budget);
  }};
  start.arrive_and_wait();
  for (std::thread& w : workers) w.join();
  s.stop = true;
  controller.join();

  CHECK(s.violations.load() == 0);
  const admit::Stats st = s.pool.stats();
  CHECK(st.bytes_in_use == 0);
  CHECK(st.slots_in_use == 0);
  CHECK(st.waiters == 0);
  CHECK(st.double_releases == 0);
  for (std::size_t i = 0; i < 3; ++i) {
    const admit::PartitionStats p = s.pool.stats(*s.parts[i]);
    INFO(p.name);
    CHECK(p.bytes_in_use == 0);
    CHECK(p.slots_in_use == 0);
    CHECK(p.waiters == 0);
    CHECK(p.admitted == s.admitted[i].load());
    CHECK(p.admitted > 0);
  }
}

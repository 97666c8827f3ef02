// Tests for admit/stats.hpp: every counter is exact when one thread uses the pool.
#include <admit/pool.hpp>
#include <admit/stats.hpp>

#include <vector>

#include "bitwise_copy.hpp"
#include "catch.hpp"

using admit::MiB;
using admit::PoolConfig;
using admit::Reason;

TEST_CASE("RejectionCounts maps each reason to its own counter", "[stats]") {
  const admit::RejectionCounts c{1, 2, 3, 4, 5, 6, 7, 8};
  CHECK(c[Reason::too_large] == 1);
  CHECK(c[Reason::no_slot] == 2);
  CHECK(c[Reason::no_memory] == 3);
  CHECK(c[Reason::queue_full] == 4);
  CHECK(c[Reason::timeout] == 5);
  CHECK(c[Reason::cancelled] == 6);
  CHECK(c[Reason::closed] == 7);
  CHECK(c[Reason::pressure] == 8);
  CHECK(c.total() == 36);
  CHECK(admit::RejectionCounts{}.total() == 0);
}

TEST_CASE("a new pool's stats show its configuration and nothing else", "[stats]") {
  const admit::SlotPool pool{PoolConfig{.memory_budget = 200 * MiB, .slots = 8}};
  const admit::Stats s = pool.stats();
  admit::Stats expected;
  expected.memory_budget = 200 * MiB;
  expected.slots = 8;
  CHECK(s == expected);
  CHECK(pool.memory_budget() == 200 * MiB);
  CHECK(pool.slots() == 8);
}

TEST_CASE("stats are exact in a single thread", "[stats]") {
  admit::SlotPool pool{PoolConfig{.memory_budget = 100 * MiB, .slots = 3}, admit::FlatPolicy{100}};
  std::vector<admit::SlotReservation> held;
  held.push_back(std::move(pool.try_acquire(40 * MiB)).value());
  held.push_back(std::move(pool.try_acquire(50 * MiB)).value());
  CHECK_FALSE(pool.try_acquire(20 * MiB));   // no_memory
  CHECK_FALSE(pool.try_acquire(101 * MiB));  // too_large
  CHECK_FALSE(pool.try_acquire(200 * MiB));  // too_large
  held.push_back(std::move(pool.try_acquire(10 * MiB)).value());
  CHECK_FALSE(pool.try_acquire(0));      // no_slot
  REQUIRE_FALSE(held[0].try_grow(MiB));  // not counted: not an admission
  CHECK(held[1].shrink(30 * MiB) == 30 * MiB);
  held[2].release();

  const admit::Stats s = pool.stats();
  CHECK(s.memory_budget == 100 * MiB);
  CHECK(s.slots == 3);
  CHECK(s.bytes_in_use == 60 * MiB);
  CHECK(s.slots_in_use == 2);
  CHECK(s.peak_bytes_in_use == 100 * MiB);
  CHECK(s.peak_slots_in_use == 3);
  CHECK(s.waiters == 0);
  CHECK(s.admitted == 3);
  CHECK(s.rejected.too_large == 2);
  CHECK(s.rejected.no_slot == 1);
  CHECK(s.rejected.no_memory == 1);
  CHECK(s.rejected.total() == 4);

  held.clear();
  const admit::Stats after = pool.stats();
  CHECK(after.bytes_in_use == 0);
  CHECK(after.slots_in_use == 0);
  // Peaks and totals are history: releasing does not lower them.
  CHECK(after.peak_bytes_in_use == 100 * MiB);
  CHECK(after.peak_slots_in_use == 3);
  CHECK(after.admitted == 3);
}

TEST_CASE("peak bytes include growth", "[stats]") {
  admit::SlotPool pool{PoolConfig{.memory_budget = 100 * MiB, .slots = 3}, admit::FlatPolicy{100}};
  admit::SlotReservation r = std::move(pool.try_acquire(10 * MiB)).value();
  REQUIRE(r.try_grow(25 * MiB));
  r.shrink(30 * MiB);
  CHECK(pool.stats().peak_bytes_in_use == 35 * MiB);
  CHECK(pool.stats().bytes_in_use == 5 * MiB);
}

TEST_CASE("double_releases is the last member and counts each refused give-back once",
          "[stats][double_release]") {
  // Designated initializers of the members before it keep working.
  constexpr admit::Stats designated{.memory_budget = 1, .slots = 2, .admitted = 3};
  STATIC_REQUIRE(designated.double_releases == 0);
  STATIC_REQUIRE(admit::Stats{}.double_releases == 0);
  constexpr admit::Stats with{.memory_budget = 1, .double_releases = 4};
  STATIC_REQUIRE(with.double_releases == 4);
  STATIC_REQUIRE(with != admit::Stats{.memory_budget = 1});

  admit::SlotPool pool{PoolConfig{.memory_budget = 100 * MiB, .slots = 3}, admit::FlatPolicy{100}};
  for (int i = 1; i <= 3; ++i) {
    admit::SlotReservation r = std::move(pool.try_acquire(10 * MiB)).value();
    admit_test::BitwiseCopy copy{r};
    r.release();
    copy.destroy();
    CHECK(pool.stats().double_releases == static_cast<std::uint64_t>(i));
  }
  const admit::Stats s = pool.stats();
  CHECK(s.bytes_in_use == 0);
  CHECK(s.slots_in_use == 0);
  CHECK(s.admitted == 3);          // refused give-backs are not admissions
  CHECK(s.rejected.total() == 0);  // nor refusals
  CHECK(s.peak_slots_in_use == 1);
}

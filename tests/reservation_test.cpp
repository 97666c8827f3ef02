// Tests for admit/reservation.hpp: SlotReservation gives back exactly what it
// holds, once, however it ends; try_grow and shrink keep the pool exact; and
// a copy of one that gives back again (GCC 12, a memcpy) is refused, counted
// and leaves the pool exact and admitting.
#include <admit/pool.hpp>
#include <admit/reservation.hpp>

#include <cstdint>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "bitwise_copy.hpp"
#include "catch.hpp"

using admit::FlatPolicy;
using admit::MiB;
using admit::PoolConfig;
using admit::Reason;
using admit::SlotPool;
using admit::SlotReservation;
using admit_test::BitwiseCopy;

namespace {

// 100 MiB budget, 4 slots, bytes = declared size: figures are easy to read.
struct Fixture {
  SlotPool<FlatPolicy> pool{PoolConfig{.memory_budget = 100 * MiB, .slots = 4}, FlatPolicy{100}};

  SlotReservation take(std::uint64_t bytes) { return std::move(pool.try_acquire(bytes)).value(); }
  std::uint64_t bytes_in_use() const { return pool.stats().bytes_in_use; }
  std::uint32_t slots_in_use() const { return pool.stats().slots_in_use; }
  std::uint64_t double_releases() const { return pool.stats().double_releases; }

  /// The pool admits its whole capacity: every slot, every byte.
  void check_admits_full_capacity() {
    std::vector<SlotReservation> all;
    for (int i = 0; i < 4; ++i) {
      admit::Admission a = pool.try_acquire(25 * MiB);
      REQUIRE(a);
      all.push_back(std::move(a).value());
    }
    CHECK(bytes_in_use() == 100 * MiB);
    CHECK(pool.try_acquire(0).error().reason == Reason::no_slot);
    all.clear();
    CHECK(bytes_in_use() == 0);
    CHECK(slots_in_use() == 0);
  }
};

}  // namespace

TEST_CASE("a reservation reports what it holds", "[reservation]") {
  Fixture f;
  const SlotReservation r = f.take(10 * MiB);
  CHECK(static_cast<bool>(r));
  CHECK(r.bytes() == 10 * MiB);
  CHECK(r.declared_size() == 10 * MiB);
  CHECK(r.slot() == 0);
  CHECK(f.bytes_in_use() == 10 * MiB);
  CHECK(f.slots_in_use() == 1);
}

TEST_CASE("the destructor gives back the slot and every byte", "[reservation]") {
  Fixture f;
  {
    const SlotReservation r = f.take(10 * MiB);
    CHECK(f.slots_in_use() == 1);
  }
  CHECK(f.bytes_in_use() == 0);
  CHECK(f.slots_in_use() == 0);
}

TEST_CASE("release() gives back at once and is idempotent", "[reservation]") {
  Fixture f;
  SlotReservation r = f.take(10 * MiB);
  SlotReservation other = f.take(5 * MiB);
  r.release();
  CHECK_FALSE(r);
  CHECK(r.bytes() == 0);
  CHECK(f.bytes_in_use() == 5 * MiB);
  CHECK(f.slots_in_use() == 1);
  r.release();  // a second release must not give back `other`'s share
  CHECK(f.bytes_in_use() == 5 * MiB);
  CHECK(f.slots_in_use() == 1);
}

TEST_CASE("a default-constructed reservation is empty and releases nothing", "[reservation]") {
  Fixture f;
  const SlotReservation held = f.take(MiB);
  {
    SlotReservation empty;
    CHECK_FALSE(empty);
    CHECK(empty.bytes() == 0);
    CHECK(empty.shrink(1) == 0);
    empty.release();
  }
  CHECK(f.bytes_in_use() == MiB);
  CHECK(f.slots_in_use() == 1);
}

TEST_CASE("a moved-from reservation is empty and releases nothing", "[reservation]") {
  Fixture f;
  SlotReservation a = f.take(10 * MiB);
  const std::uint32_t slot = a.slot();
  SlotReservation b = std::move(a);
  CHECK_FALSE(a);  // NOLINT(bugprone-use-after-move): that is the point
  CHECK(a.bytes() == 0);
  CHECK(a.declared_size() == 0);
  CHECK(b.bytes() == 10 * MiB);
  CHECK(b.slot() == slot);
  a.release();
  CHECK(f.bytes_in_use() == 10 * MiB);
  CHECK(f.slots_in_use() == 1);
  { SlotReservation c = std::move(b); }
  CHECK(f.bytes_in_use() == 0);
  CHECK(f.slots_in_use() == 0);
}

TEST_CASE("move assignment releases the target's old holding first", "[reservation]") {
  Fixture f;
  SlotReservation a = f.take(10 * MiB);
  SlotReservation b = f.take(20 * MiB);
  CHECK(f.bytes_in_use() == 30 * MiB);
  b = std::move(a);
  CHECK(b.bytes() == 10 * MiB);
  CHECK(f.bytes_in_use() == 10 * MiB);
  CHECK(f.slots_in_use() == 1);
  // Self-move leaves it holding.
  SlotReservation& alias = b;
  b = std::move(alias);
  CHECK(b.bytes() == 10 * MiB);
  CHECK(f.bytes_in_use() == 10 * MiB);
}

TEST_CASE("a zero-byte reservation still holds a slot", "[reservation]") {
  SlotPool pool{PoolConfig{.memory_budget = MiB, .slots = 1}, admit::FixedPolicy{0}};
  SlotReservation r = std::move(pool.try_acquire(admit::GiB)).value();
  CHECK(r);
  CHECK(r.bytes() == 0);
  CHECK(pool.stats().slots_in_use == 1);
  CHECK(pool.try_acquire(1).error().reason == Reason::no_slot);
  r.release();
  CHECK(pool.stats().slots_in_use == 0);
  CHECK(pool.try_acquire(1));
}

TEST_CASE("try_grow takes more only when it fits, never past the budget", "[reservation]") {
  Fixture f;
  SlotReservation r = f.take(30 * MiB);
  SlotReservation other = f.take(50 * MiB);

  SECTION("grows within what is free") {
    const admit::GrowResult g = r.try_grow(20 * MiB);
    CHECK(g);
    CHECK(g.grown());
    CHECK(r.bytes() == 50 * MiB);
    CHECK(r.declared_size() == 30 * MiB);
    CHECK(f.bytes_in_use() == 100 * MiB);
    CHECK(f.pool.stats().peak_bytes_in_use == 100 * MiB);
  }
  SECTION("refused with no_memory and the figures when it does not fit now") {
    const admit::GrowResult g = r.try_grow(20 * MiB + 1);
    REQUIRE_FALSE(g);
    const admit::Rejection& e = g.error();
    CHECK(e.reason == Reason::no_memory);
    CHECK(e.declared_size == 30 * MiB);
    CHECK(e.needed_bytes == 20 * MiB + 1);
    CHECK(e.available_bytes == 20 * MiB);
    CHECK(e.memory_budget == 100 * MiB);
    CHECK(e.slots_in_use == 2);
    CHECK(e.slots == 4);
    CHECK(r.bytes() == 30 * MiB);
    CHECK(f.bytes_in_use() == 80 * MiB);
  }
  SECTION("refused with too_large when the reservation would exceed the whole budget") {
    other.release();
    const admit::GrowResult g = r.try_grow(70 * MiB + 1);
    REQUIRE_FALSE(g);
    CHECK(g.error().reason == Reason::too_large);
    CHECK(g.error().available_bytes == 70 * MiB);
    CHECK(r.try_grow(UINT64_MAX).error().reason == Reason::too_large);
    CHECK(r.try_grow(70 * MiB));
    CHECK(f.bytes_in_use() == 100 * MiB);
  }
  SECTION("growing by zero succeeds and changes nothing") {
    CHECK(r.try_grow(0));
    CHECK(r.bytes() == 30 * MiB);
  }
  SECTION("an empty reservation cannot grow") {
    SlotReservation empty;
    const admit::GrowResult g = empty.try_grow(1);
    REQUIRE_FALSE(g);
    CHECK(g.error().reason == Reason::closed);
    CHECK(f.bytes_in_use() == 80 * MiB);
  }
  SECTION("grown bytes come back with the reservation") {
    REQUIRE(r.try_grow(10 * MiB));
    r.release();
    CHECK(f.bytes_in_use() == 50 * MiB);
  }
  // Refused grows are answers to the caller, not refused admissions.
  CHECK(f.pool.stats().rejected.total() == 0);
}

TEST_CASE("shrink gives bytes back at once and keeps the slot", "[reservation]") {
  Fixture f;
  SlotReservation r = f.take(60 * MiB);
  SlotReservation other = f.take(40 * MiB);
  CHECK(f.pool.try_acquire(10 * MiB).error().reason == Reason::no_memory);

  CHECK(r.shrink(10 * MiB) == 10 * MiB);
  CHECK(r.bytes() == 50 * MiB);
  CHECK(r);
  CHECK(f.bytes_in_use() == 90 * MiB);
  CHECK(f.slots_in_use() == 2);
  // The bytes are free for the next request immediately.
  CHECK(f.pool.try_acquire(10 * MiB));

  SECTION("shrinking by more than is held gives back what is held") {
    CHECK(r.shrink(UINT64_MAX) == 50 * MiB);
    CHECK(r.bytes() == 0);
    CHECK(r);
    CHECK(f.bytes_in_use() == 40 * MiB);
    CHECK(f.slots_in_use() == 2);
  }
  SECTION("what was shrunk is not given back twice") {
    r.release();
    CHECK(f.bytes_in_use() == 40 * MiB);
  }
  SECTION("shrink(0) changes nothing") {
    CHECK(r.shrink(0) == 0);
    CHECK(f.bytes_in_use() == 90 * MiB);
  }
}

TEST_CASE("a reservation released during stack unwinding gives everything back", "[reservation]") {
  Fixture f;
  try {
    SlotReservation r = f.take(10 * MiB);
    REQUIRE(r.try_grow(5 * MiB));
    throw std::runtime_error("upload failed");
  } catch (const std::runtime_error&) {
  }
  CHECK(f.bytes_in_use() == 0);
  CHECK(f.slots_in_use() == 0);
}

TEST_CASE("SlotReservation does not depend on the policy", "[reservation]") {
  SlotPool flat{PoolConfig{.memory_budget = MiB, .slots = 1}, FlatPolicy{10}};
  SlotPool fixed{PoolConfig{.memory_budget = MiB, .slots = 1}, admit::FixedPolicy{7}};
  SlotReservation r = std::move(flat.try_acquire(100)).value();
  r = std::move(fixed.try_acquire(100)).value();  // one type for both pools
  CHECK(r.bytes() == 7);
  CHECK(flat.stats().slots_in_use == 0);
  CHECK(fixed.stats().slots_in_use == 1);
  STATIC_REQUIRE(sizeof(SlotReservation) <= 32);
  if constexpr (sizeof(void*) == 8) STATIC_REQUIRE(sizeof(SlotReservation) == 32);
}

// --- Given back twice --------------------------------------------------------------
// These run in Debug builds, where each refusal also prints a line on stderr.

TEST_CASE("a bitwise copy released after the original is refused and counted once",
          "[reservation][double_release]") {
  Fixture f;
  SlotReservation r = f.take(10 * MiB);
  BitwiseCopy copy{r};
  SECTION("the original first") {
    r.release();
    copy.destroy();
  }
  SECTION("the copy first: then the original is the stale one") {
    copy.destroy();
    r.release();
  }
  SECTION("release() then the destructor, on the copy") {
    r.release();
    copy->release();
    CHECK_FALSE(copy.get());
    copy.destroy();  // empty by now: not counted again
  }
  CHECK(f.double_releases() == 1);
  CHECK(f.bytes_in_use() == 0);
  CHECK(f.slots_in_use() == 0);
  f.check_admits_full_capacity();
  CHECK(f.double_releases() == 1);
}

TEST_CASE("a stale copy released after the slot was reused frees nothing of the new holder's",
          "[reservation][double_release]") {
  Fixture f;
  SlotReservation first = f.take(10 * MiB);
  BitwiseCopy stale{first};
  first.release();
  SlotReservation next = f.take(30 * MiB);
  REQUIRE(next.slot() == stale->slot());  // the same index, a new claim

  stale.destroy();
  CHECK(f.double_releases() == 1);
  CHECK(f.bytes_in_use() == 30 * MiB);
  CHECK(f.slots_in_use() == 1);
  CHECK(next.bytes() == 30 * MiB);
  // The slot was not freed under its holder: the next admission gets another.
  const SlotReservation other = f.take(0);
  CHECK(other.slot() != next.slot());
  // The new holder's own operations and release work.
  CHECK(next.try_grow(10 * MiB));
  CHECK(next.shrink(5 * MiB) == 5 * MiB);
  CHECK(f.bytes_in_use() == 35 * MiB);
  next.release();
  CHECK(f.bytes_in_use() == 0);
  CHECK(f.slots_in_use() == 1);
  CHECK(f.double_releases() == 1);
}

TEST_CASE("shrink and try_grow on a stale copy move no bytes; the copy becomes empty",
          "[reservation][double_release]") {
  Fixture f;
  SlotReservation first = f.take(10 * MiB);
  BitwiseCopy stale{first};
  first.release();
  // The slot free again, or held by a new reservation under a new claim.
  const bool reused = GENERATE(false, true);
  CAPTURE(reused);
  SlotReservation holder;
  if (reused) {
    holder = f.take(20 * MiB);
    REQUIRE(holder.slot() == stale->slot());
  }
  const std::uint64_t expected_in_use = reused ? 20 * MiB : 0;

  SECTION("shrink") {
    CHECK(stale->shrink(5 * MiB) == 0);
    CHECK(stale->shrink(0) == 0);
  }
  SECTION("try_grow") {
    const admit::GrowResult g = stale->try_grow(5 * MiB);
    REQUIRE_FALSE(g);
    CHECK(g.error().reason == Reason::closed);
    CHECK(g.error().slots == 0);  // "holds nothing", as an empty reservation
    CHECK_FALSE(stale->try_grow(0));
  }
  CHECK_FALSE(stale.get());
  CHECK(stale->bytes() == 0);
  CHECK(f.bytes_in_use() == expected_in_use);
  CHECK(f.double_releases() == 1);
  stale.destroy();  // already empty: not counted again
  CHECK(f.double_releases() == 1);
  CHECK(f.bytes_in_use() == expected_in_use);
  holder.release();
  CHECK(f.bytes_in_use() == 0);
  CHECK(f.slots_in_use() == 0);
  f.check_admits_full_capacity();
}

TEST_CASE("a live reservation's grow and shrink are not mistaken for a stale copy's",
          "[reservation][double_release]") {
  // The generation is only checked, never moved, by grow and shrink.
  Fixture f;
  SlotReservation r = f.take(10 * MiB);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(r.try_grow(MiB));
    REQUIRE(r.shrink(MiB) == MiB);
  }
  REQUIRE(r.try_grow(0));
  r.release();
  CHECK(f.bytes_in_use() == 0);
  CHECK(f.slots_in_use() == 0);
  CHECK(f.double_releases() == 0);
}

TEST_CASE("a corrupt reservation with a slot index out of range touches nothing",
          "[reservation][double_release]") {
  admit::detail::PoolCore core{PoolConfig{.memory_budget = 100 * MiB, .slots = 4}};
  {
    const SlotReservation held = admit::detail::ReservationAccess::adopt(
        core, 10 * MiB, 10 * MiB, core.try_acquire(10 * MiB, 10 * MiB).claim);
    for (const std::uint32_t slot : {4u, 15u, 16u, 0xFFFF'FFFFu}) {
      SlotReservation corrupt =
          admit::detail::ReservationAccess::adopt(core, 50 * MiB, 50 * MiB, {slot, 0});
      CHECK_FALSE(corrupt.try_grow(MiB));  // refused and emptied: counted here
      SlotReservation released =
          admit::detail::ReservationAccess::adopt(core, 50 * MiB, 50 * MiB, {slot, 0});
    }  // `released` counted here
    CHECK(core.stats().double_releases == 8);
    CHECK(core.stats().bytes_in_use == 10 * MiB);
    CHECK(core.stats().slots_in_use == 1);
  }
  CHECK(core.stats().bytes_in_use == 0);
  CHECK(core.stats().slots_in_use == 0);
}

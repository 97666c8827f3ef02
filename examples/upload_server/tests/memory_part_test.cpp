// Tests for memory_part.hpp: a part is charged to its reservation, grows it
// when larger, and a refusal (the pool's or the allocation's) leaves nothing
// charged and the reservation as it was.
#include "memory_part.hpp"

#include <admit/pool.hpp>
#include <admit/units.hpp>

#include <algorithm>
#include <memory_resource>

#include "catch.hpp"

using admit::KiB;
using admit::MiB;
using upload_server::MemoryPart;

namespace {

// 10 % of every upload, so that the figures below are easy to check.
using Pool = admit::SlotPool<admit::FlatPolicy>;

Pool make_pool(std::uint64_t budget) {
  return Pool{admit::PoolConfig{.memory_budget = budget, .slots = 4}, admit::FlatPolicy{10}};
}

}  // namespace

TEST_CASE("size_for: the reservation, at least 64 KiB, at most the upload", "[memory_part]") {
  CHECK(MemoryPart::size_for(20 * MiB, 200 * MiB) == 20 * MiB);
  CHECK(MemoryPart::size_for(100, 1000) == 1000);            // a small upload: all of it
  CHECK(MemoryPart::size_for(100, 1 * MiB) == 64 * KiB);     // never below 64 KiB
  CHECK(MemoryPart::size_for(0, 1 * MiB) == 64 * KiB);       // fixed:... may reserve little
  CHECK(MemoryPart::size_for(8 * MiB, 5 * MiB) == 5 * MiB);  // never more than is sent
  CHECK(MemoryPart::size_for(8 * MiB, 0) == 0);
}

TEST_CASE("a part the size of its reservation is charged to it and costs the pool nothing more",
          "[memory_part]") {
  Pool pool = make_pool(100 * MiB);
  admit::SlotReservation reservation = pool.try_acquire(200 * MiB).value();  // 20 MiB
  {
    MemoryPart part;
    REQUIRE_FALSE(part.allocate(reservation, reservation.bytes()).has_value());
    CHECK(part.allocated());
    CHECK(part.charged());
    CHECK(part.bytes().size() == 20 * MiB);
    CHECK(std::all_of(part.bytes().begin(), part.bytes().end(), [](char c) { return c == 0; }));
    CHECK(reservation.bytes() == 20 * MiB);
    CHECK(pool.stats().bytes_in_use == 20 * MiB);
    part.release();
    CHECK_FALSE(part.allocated());
    part.release();  // idempotent
  }
  reservation.release();  // only now: the part no longer charges it
  CHECK(pool.stats().bytes_in_use == 0);
}

TEST_CASE("a part larger than its reservation grows it, and gives the growth back",
          "[memory_part]") {
  Pool pool = make_pool(100 * MiB);
  admit::SlotReservation reservation = pool.try_acquire(100 * KiB).value();  // 10 KiB
  const std::uint64_t reserved = reservation.bytes();
  MemoryPart part;
  const std::uint64_t size = MemoryPart::size_for(reserved, 100 * KiB);
  CHECK(size == 64 * KiB);
  REQUIRE_FALSE(part.allocate(reservation, size).has_value());
  CHECK(reservation.bytes() == size);
  CHECK(pool.stats().bytes_in_use == size);
  part.release();
  CHECK(reservation.bytes() == reserved);
  CHECK(pool.stats().bytes_in_use == reserved);
}

TEST_CASE("a grow the pool refuses is the pool's refusal, and nothing is charged",
          "[memory_part]") {
  Pool pool = make_pool(1 * MiB);
  admit::SlotReservation big = pool.try_acquire(9 * MiB).value();      // 0.9 MiB
  admit::SlotReservation small = pool.try_acquire(100 * KiB).value();  // 10 KiB
  const auto in_use = pool.stats().bytes_in_use;
  MemoryPart part;
  const auto refused = part.allocate(small, 200 * KiB);
  REQUIRE(refused.has_value());
  CHECK(refused->bytes == 200 * KiB);
  REQUIRE(refused->rejection.has_value());
  CHECK(refused->rejection->reason == admit::Reason::no_memory);
  CHECK_FALSE(part.allocated());
  CHECK(small.bytes() == 10 * KiB);
  CHECK(pool.stats().bytes_in_use == in_use);
  // Once the room is there, the same part is allocated.
  big.release();
  REQUIRE_FALSE(part.allocate(small, 200 * KiB).has_value());
  CHECK(small.bytes() == 200 * KiB);
}

TEST_CASE("an allocation that fails is out of memory, not the pool's refusal", "[memory_part]") {
  Pool pool = make_pool(100 * MiB);
  admit::SlotReservation reservation = pool.try_acquire(10 * MiB).value();  // 1 MiB
  MemoryPart part;
  // null_memory_resource fails every allocation with bad_alloc, as the heap
  // does under an address-space limit.
  const auto refused = part.allocate(reservation, 2 * MiB, std::pmr::null_memory_resource());
  REQUIRE(refused.has_value());
  CHECK_FALSE(refused->rejection.has_value());
  CHECK(refused->bytes == 2 * MiB);
  CHECK_FALSE(part.allocated());
  // What was grown for it went back with the failure.
  CHECK(reservation.bytes() == 1 * MiB);
  CHECK(pool.stats().bytes_in_use == 1 * MiB);
}

TEST_CASE("without a reservation (--admission off) the part is uncharged", "[memory_part]") {
  admit::SlotReservation none;
  MemoryPart part;
  REQUIRE_FALSE(part.allocate(none, 1 * MiB).has_value());
  CHECK(part.allocated());
  CHECK_FALSE(part.charged());
  CHECK(part.bytes().size() == 1 * MiB);
  const auto refused = part.allocate(none, 1 * MiB, std::pmr::null_memory_resource());
  REQUIRE(refused.has_value());
  CHECK_FALSE(refused->rejection.has_value());
  CHECK_FALSE(part.allocated());
}

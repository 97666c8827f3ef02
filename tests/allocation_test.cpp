// Proves that the admission path never touches the heap: this binary replaces
// the global operator new/delete with counting versions (counting_allocator.hpp,
// defined in this translation unit only) and checks that try_acquire (admitted
// and refused), release, try_grow, shrink, moves and stats() make zero
// allocations. Catch2 itself allocates, so every count is taken around the pool
// calls alone, on this thread, and checked afterwards.
#include <admit/admit.hpp>

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "catch.hpp"

// This is the one translation unit of admit_allocation_tests that defines the
// replacement operators (see the header).
#define ADMIT_COUNTING_ALLOCATOR_DEFINE
#include "counting_allocator.hpp"

namespace {
std::uint64_t allocation_count() { return admit_test::thread_allocations(); }
}  // namespace

TEST_CASE("the counting allocator sees allocations", "[allocation]") {
  // Guards the test itself: if the replacement were not linked in, every
  // "zero allocations" check below would pass vacuously.
  // A call of operator new, not a new-expression: a compiler may omit the
  // allocation of a new-expression whose result is only deleted (Clang does
  // from -O1), but not a call.
  const std::uint64_t before = allocation_count();
  void* p = ::operator new(sizeof(int));
  const std::uint64_t after = allocation_count();
  ::operator delete(p);
  CHECK(after == before + 1);
}

TEMPLATE_TEST_CASE("admission, release, grow, shrink and stats allocate nothing", "[allocation]",
                   admit::TieredPolicy, admit::FixedPolicy) {
  using admit::MiB;
  // Constructing the pool allocates its slot bitmap; that is allowed.
  admit::SlotPool<TestType> pool{admit::PoolConfig{.memory_budget = 200 * MiB, .slots = 130}, [] {
                                   if constexpr (std::is_same_v<TestType, admit::FixedPolicy>) {
                                     return admit::FixedPolicy{8 * MiB};
                                   } else {
                                     return TestType{};
                                   }
                                 }()};
  // A one-slot pool where every kind of refusal is certain.
  admit::SlotPool<admit::FlatPolicy> tiny{admit::PoolConfig{.memory_budget = MiB, .slots = 1},
                                          admit::FlatPolicy{100}};
  std::size_t admitted = 0;
  std::size_t refused = 0;
  admit::Stats stats;

  const std::uint64_t before = allocation_count();
  for (int round = 0; round < 100; ++round) {
    admit::Admission a = pool.try_acquire(10 * MiB);
    admit::Admission b = pool.try_acquire(500 * MiB);
    admit::Admission only = tiny.try_acquire(MiB / 2);
    refused += !tiny.try_acquire(admit::TiB).has_value();  // too_large
    refused += !tiny.try_acquire(1).has_value();           // no_slot
    only->shrink(MiB / 2);
    refused += !pool.try_acquire(admit::TiB * 2).has_value();  // tiers: admitted or no_memory
    admitted += a.has_value() + b.has_value() + only.has_value();
    admit::SlotReservation moved = std::move(a).value();
    admit::SlotReservation other = std::move(b).value();
    if (moved.try_grow(MiB)) moved.shrink(2 * MiB);
    (void)other.try_grow(admit::TiB);  // refused: too_large, no heap either
    other = std::move(moved);          // move-assign releases the old holding
    stats = pool.stats();
    other.release();
    other.release();
  }
  const std::uint64_t after = allocation_count();

  CHECK(after - before == 0);
  CHECK(admitted == 300);
  CHECK(refused >= 200);
  CHECK(stats.admitted >= 200);
  CHECK(tiny.stats().rejected.too_large == 100);
  CHECK(tiny.stats().rejected.no_slot == 100);
  CHECK(pool.stats().bytes_in_use == 0);
  CHECK(pool.stats().slots_in_use == 0);
}

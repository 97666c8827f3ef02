// Proves that the admission path never touches the heap: this binary replaces
// the global operator new/delete with counting versions and checks that
// try_acquire (admitted and refused), release, try_grow, shrink, moves and
// stats() make zero allocations. Catch2 itself allocates, so every count is
// taken around the pool calls alone and checked afterwards.
#include <admit/admit.hpp>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <utility>

#include "catch.hpp"

// GCC sees the replaced operator new/delete inline and flags free() on memory
// from "operator new" (-Wmismatched-new-delete); here that pairing is the point.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {
std::atomic<std::size_t> allocations{0};

void* counted_alloc(std::size_t size, std::size_t alignment) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (size == 0) size = 1;
  void* p = alignment <= alignof(std::max_align_t)
                ? std::malloc(size)
                : std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
  if (p == nullptr) throw std::bad_alloc{};
  return p;
}

std::size_t allocation_count() { return allocations.load(std::memory_order_relaxed); }
}  // namespace

void* operator new(std::size_t size) { return counted_alloc(size, 0); }
void* operator new[](std::size_t size) { return counted_alloc(size, 0); }
void* operator new(std::size_t size, std::align_val_t al) {
  return counted_alloc(size, static_cast<std::size_t>(al));
}
void* operator new[](std::size_t size, std::align_val_t al) {
  return counted_alloc(size, static_cast<std::size_t>(al));
}
// The nothrow forms too (libstdc++'s stable_sort uses them): every allocation
// must come from the same malloc/free pair, or ASan reports a mismatch.
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(size, 0);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
  return operator new(size, tag);
}
void* operator new(std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(size, static_cast<std::size_t>(al));
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, std::align_val_t al, const std::nothrow_t& tag) noexcept {
  return operator new(size, al, tag);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

TEST_CASE("the counting allocator sees allocations", "[allocation]") {
  // Guards the test itself: if the replacement were not linked in, every
  // "zero allocations" check below would pass vacuously.
  const std::size_t before = allocation_count();
  auto* p = new int{42};
  const std::size_t after = allocation_count();
  delete p;
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

  const std::size_t before = allocation_count();
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
  const std::size_t after = allocation_count();

  CHECK(after - before == 0);
  CHECK(admitted == 300);
  CHECK(refused >= 200);
  CHECK(stats.admitted >= 200);
  CHECK(tiny.stats().rejected.too_large == 100);
  CHECK(tiny.stats().rejected.no_slot == 100);
  CHECK(pool.stats().bytes_in_use == 0);
  CHECK(pool.stats().slots_in_use == 0);
}

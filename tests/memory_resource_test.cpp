// Tests for admit/memory_resource.hpp: a ReservationResource charges its
// reservation exactly the bytes asked for, grows it through the pool past
// them and gives the growth back, refuses (std::bad_alloc) without charging
// anything when the pool says no, survives a failing upstream, and works
// under the standard pmr containers and resources. After every test the pool
// has all its bytes and slots back.
#include <admit/memory_resource.hpp>
#include <admit/pool.hpp>

// libc++ before 16 has no <memory_resource>: nothing to test there.
#if ADMIT_HAS_MEMORY_RESOURCE

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "catch.hpp"

using admit::FlatPolicy;
using admit::KiB;
using admit::MiB;
using admit::PoolConfig;
using admit::Reason;
using admit::ReservationResource;
using admit::SlotPool;
using admit::SlotReservation;

namespace {

// 1 MiB, 4 slots, bytes = declared size.
struct Fixture {
  SlotPool<FlatPolicy> pool{PoolConfig{.memory_budget = 1 * MiB, .slots = 4}, FlatPolicy{100}};

  SlotReservation take(std::uint64_t bytes) { return std::move(pool.try_acquire(bytes)).value(); }
  std::uint64_t bytes_in_use() const { return pool.stats().bytes_in_use; }
};

/// An upstream that fails every allocation once `budget` bytes are out, and
/// counts what it holds, so a test sees that nothing leaked.
class LimitedUpstream : public std::pmr::memory_resource {
 public:
  explicit LimitedUpstream(std::size_t budget) : budget_{budget} {}
  std::size_t outstanding = 0;
  std::size_t failures = 0;

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (outstanding + bytes > budget_) {
      ++failures;
      throw std::bad_alloc{};
    }
    outstanding += bytes;
    return std::pmr::new_delete_resource()->allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    outstanding -= bytes;
    std::pmr::new_delete_resource()->deallocate(p, bytes, alignment);
  }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
  std::size_t budget_;
};

}  // namespace

TEST_CASE("allocations within the reservation are charged, not grown", "[memory_resource]") {
  Fixture f;
  SlotReservation r = f.take(100 * KiB);
  {
    ReservationResource memory{r};
    void* a = memory.allocate(60 * KiB);
    void* b = memory.allocate(40 * KiB, 64);
    CHECK(memory.used() == 100 * KiB);
    CHECK(memory.grown() == 0);
    CHECK(r.bytes() == 100 * KiB);  // exactly what was asked for: no rounding
    CHECK(f.bytes_in_use() == 100 * KiB);
    memory.deallocate(a, 60 * KiB);
    CHECK(memory.used() == 40 * KiB);
    CHECK(r.bytes() == 100 * KiB);  // the admitted bytes stay: only growth goes back
    memory.deallocate(b, 40 * KiB, 64);
    CHECK(memory.used() == 0);
    CHECK(memory.peak_used() == 100 * KiB);
  }
  CHECK(r.bytes() == 100 * KiB);
  r.release();
  CHECK(f.bytes_in_use() == 0);
}

TEST_CASE("past its bytes the resource grows the reservation, and gives the growth back",
          "[memory_resource]") {
  Fixture f;
  SlotReservation r = f.take(100 * KiB);
  ReservationResource memory{r};
  void* a = memory.allocate(80 * KiB);
  void* b = memory.allocate(70 * KiB);  // 50 KiB past the reservation
  CHECK(memory.grown() == 50 * KiB);
  CHECK(r.bytes() == 150 * KiB);
  CHECK(f.bytes_in_use() == 150 * KiB);
  memory.deallocate(a, 80 * KiB);  // 70 KiB used of 150: all 50 KiB of growth is unused
  CHECK(memory.grown() == 0);
  CHECK(r.bytes() == 100 * KiB);
  CHECK(f.bytes_in_use() == 100 * KiB);
  void* c = memory.allocate(60 * KiB);  // 130 KiB: grows by 30
  CHECK(memory.grown() == 30 * KiB);
  memory.deallocate(c, 60 * KiB);
  memory.deallocate(b, 70 * KiB);
  CHECK(memory.grown() == 0);
  CHECK(memory.used() == 0);
  CHECK(memory.peak_used() == 150 * KiB);
  CHECK(f.bytes_in_use() == 100 * KiB);
}

TEST_CASE("a refused grow fails the allocation, charges nothing and leaves the pool exact",
          "[memory_resource]") {
  Fixture f;
  SlotReservation other = f.take(1 * MiB - 100 * KiB);
  SlotReservation r = f.take(100 * KiB);  // the pool is full now
  const admit::Stats before = f.pool.stats();
  ReservationResource memory{r};
  void* a = memory.allocate(100 * KiB);
  CHECK_THROWS_AS(memory.allocate(1), std::bad_alloc);
  REQUIRE(memory.last_refusal().has_value());
  CHECK(memory.last_refusal()->reason == Reason::no_memory);
  CHECK(memory.last_refusal()->needed_bytes == 1);
  CHECK(memory.used() == 100 * KiB);
  CHECK(memory.grown() == 0);
  CHECK(f.pool.stats() == before);
  CHECK(memory.try_allocate(1) == nullptr);

  // More than the whole budget: too_large, and still nothing moved.
  CHECK_THROWS_AS(memory.allocate(2 * MiB), std::bad_alloc);
  CHECK(memory.last_refusal()->reason == Reason::too_large);
  CHECK(f.pool.stats() == before);

  // More than any pool could hold: still the pool's refusal, with its figures.
  CHECK_THROWS_AS(memory.allocate(std::size_t{1} << 50), std::bad_alloc);
  CHECK(memory.last_refusal()->reason == Reason::too_large);
  CHECK(memory.last_refusal()->memory_budget == 1 * MiB);
  CHECK(f.pool.stats() == before);

  // Room again: the same request succeeds, and a refusal is not sticky.
  other.release();
  void* b = memory.allocate(1);
  CHECK(memory.grown() == 1);
  memory.deallocate(b, 1);
  memory.deallocate(a, 100 * KiB);
  CHECK(f.bytes_in_use() == 100 * KiB);
}

TEST_CASE("a failing upstream gives back what was grown for its allocation", "[memory_resource]") {
  Fixture f;
  SlotReservation r = f.take(10 * KiB);
  LimitedUpstream upstream{64 * KiB};
  ReservationResource memory{r, &upstream};
  void* a = memory.allocate(50 * KiB);
  CHECK(memory.grown() == 40 * KiB);
  CHECK_THROWS_AS(memory.allocate(20 * KiB), std::bad_alloc);  // the pool said yes, upstream no
  CHECK(upstream.failures == 1);
  CHECK(memory.used() == 50 * KiB);
  CHECK(memory.grown() == 40 * KiB);
  CHECK(r.bytes() == 50 * KiB);
  CHECK(f.bytes_in_use() == 50 * KiB);
  CHECK(memory.try_allocate(20 * KiB) == nullptr);
  CHECK(upstream.failures == 2);
  CHECK(f.bytes_in_use() == 50 * KiB);
  memory.deallocate(a, 50 * KiB);
  CHECK(upstream.outstanding == 0);
  CHECK(f.bytes_in_use() == 10 * KiB);
}

TEST_CASE("pmr containers charge what they hold", "[memory_resource]") {
  Fixture f;
  SlotReservation r = f.take(64 * KiB);
  ReservationResource memory{r};
  {
    std::pmr::vector<std::byte> part{&memory};
    part.resize(200 * KiB);
    CHECK(memory.used() >= 200 * KiB);
    CHECK(r.bytes() == memory.used());  // grown to exactly what is held
    std::pmr::string name{&memory};
    name.assign(1000, 'x');
    CHECK(memory.used() >= 200 * KiB + 1000);
    CHECK_THROWS_AS(part.resize(2 * MiB), std::bad_alloc);
    CHECK(part.size() == 200 * KiB);  // the strong guarantee of resize holds
  }
  CHECK(memory.used() == 0);
  CHECK(r.bytes() == 64 * KiB);
  CHECK(f.bytes_in_use() == 64 * KiB);
}

TEST_CASE("a monotonic buffer on top is charged for its buffers", "[memory_resource]") {
  Fixture f;
  SlotReservation r = f.take(0);
  ReservationResource memory{r};
  {
    std::pmr::monotonic_buffer_resource arena{16 * KiB, &memory};
    std::pmr::vector<std::pmr::string> lines{&arena};
    for (int i = 0; i < 100; ++i) lines.emplace_back(100, 'a');
    CHECK(memory.used() > 10 * KiB);  // the strings live in arena buffers charged here
    CHECK(memory.used() == r.bytes());
    CHECK(f.bytes_in_use() == memory.used());
  }
  CHECK(memory.used() == 0);
  CHECK(f.bytes_in_use() == 0);
}

TEST_CASE("a resource charges the reservation object it was given, moved into place first",
          "[memory_resource]") {
  Fixture f;
  struct Upload {
    SlotReservation reservation;
  };
  Upload upload{f.take(10 * KiB)};
  SlotReservation moved_again{std::move(upload.reservation)};
  upload.reservation = std::move(moved_again);
  ReservationResource memory{upload.reservation};
  void* a = memory.allocate(30 * KiB);
  CHECK(upload.reservation.bytes() == 30 * KiB);
  CHECK(&memory.reservation() == &upload.reservation);
  memory.deallocate(a, 30 * KiB);
  CHECK(f.bytes_in_use() == 10 * KiB);
}

TEST_CASE("over an empty reservation only nothing can be allocated", "[memory_resource]") {
  Fixture f;
  SlotReservation empty;
  ReservationResource memory{empty};
  void* zero = memory.allocate(0);
  CHECK_THROWS_AS(memory.allocate(1), std::bad_alloc);
  CHECK(memory.last_refusal()->reason == Reason::closed);
  memory.deallocate(zero, 0);
  CHECK(f.bytes_in_use() == 0);
}

TEST_CASE("a resource is equal only to itself", "[memory_resource]") {
  Fixture f;
  SlotReservation a = f.take(0);
  SlotReservation b = f.take(0);
  ReservationResource first{a};
  ReservationResource second{b};
  CHECK(first.is_equal(first));
  CHECK_FALSE(first.is_equal(second));
  CHECK_FALSE(first.is_equal(*std::pmr::new_delete_resource()));
}

#endif  // ADMIT_HAS_MEMORY_RESOURCE

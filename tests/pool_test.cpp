// Tests for admit/pool.hpp: what SlotPool admits and refuses, with which
// figures, and how it validates its configuration.
#include <admit/pool.hpp>

#include <cstdint>
#include <set>
#include <type_traits>
#include <vector>

#include "catch.hpp"

using admit::Admission;
using admit::FixedPolicy;
using admit::FlatPolicy;
using admit::GiB;
using admit::MiB;
using admit::PoolConfig;
using admit::Reason;
using admit::SlotPool;
using admit::TieredPolicy;

namespace {

constexpr std::uint64_t large_upload = 2'530'644'380;
constexpr PoolConfig server_config{.memory_budget = 200 * MiB, .slots = 8};

// One instance of each stock policy, for the rules that hold for all of them.
template <class P>
P make_policy();
template <>
TieredPolicy make_policy<TieredPolicy>() {
  return TieredPolicy{};
}
template <>
FlatPolicy make_policy<FlatPolicy>() {
  return FlatPolicy{10};
}
template <>
FixedPolicy make_policy<FixedPolicy>() {
  return FixedPolicy{8 * MiB};
}

}  // namespace

TEST_CASE("the 2.36 GiB upload: refused too_large under flat 10%, admitted under the tiers",
          "[pool][large]") {
  SECTION("FlatPolicy{10}: needs more than the whole budget, refused at once, permanently") {
    SlotPool pool{server_config, FlatPolicy{10}};
    const Admission a = pool.try_acquire(large_upload);
    REQUIRE_FALSE(a);
    const admit::Rejection& r = a.error();
    CHECK(r.reason == Reason::too_large);
    CHECK(admit::is_permanent(r.reason));
    CHECK(r.declared_size == large_upload);
    CHECK(r.needed_bytes == 253'064'438);
    CHECK(r.memory_budget == 200 * MiB);
    CHECK(r.available_bytes == 200 * MiB);
    CHECK(r.slots_in_use == 0);
    CHECK(r.slots == 8);
    CHECK(pool.stats().rejected.too_large == 1);
  }
  SECTION("default tiers: admitted with 100 MiB") {
    SlotPool pool{server_config};
    STATIC_REQUIRE(std::is_same_v<decltype(pool), SlotPool<admit::DefaultPolicy>>);
    Admission a = pool.try_acquire(large_upload);
    REQUIRE(a);
    CHECK(a->bytes() == 104'857'600);
    CHECK(a->declared_size() == large_upload);
    CHECK(pool.stats().bytes_in_use == 104'857'600);
  }
}

TEST_CASE("no_slot when every slot is taken, with the figures", "[pool]") {
  SlotPool pool{PoolConfig{.memory_budget = GiB, .slots = 3}, FixedPolicy{MiB}};
  std::vector<admit::SlotReservation> held;
  for (int i = 0; i < 3; ++i) held.push_back(std::move(pool.try_acquire(100)).value());
  const Admission refused = pool.try_acquire(100);
  REQUIRE_FALSE(refused);
  const admit::Rejection& r = refused.error();
  CHECK(r.reason == Reason::no_slot);
  CHECK_FALSE(admit::is_permanent(r.reason));
  CHECK(r.declared_size == 100);
  CHECK(r.needed_bytes == MiB);
  CHECK(r.available_bytes == GiB - 3 * MiB);
  CHECK(r.memory_budget == GiB);
  CHECK(r.slots_in_use == 3);
  CHECK(r.slots == 3);
  held.pop_back();
  CHECK(pool.try_acquire(100));
}

TEST_CASE("no_memory when the bytes do not fit now, with the figures", "[pool]") {
  // "needs 100 MiB, 37 MiB free": 163 MiB held of 200 MiB.
  SlotPool by_bytes{server_config, admit::FlatPolicy{100}};
  Admission big = by_bytes.try_acquire(163 * MiB);
  REQUIRE(big);
  const Admission refused = by_bytes.try_acquire(100 * MiB);
  REQUIRE_FALSE(refused);
  const admit::Rejection& r = refused.error();
  CHECK(r.reason == Reason::no_memory);
  CHECK(r.needed_bytes == 100 * MiB);
  CHECK(r.available_bytes == 37 * MiB);
  CHECK(r.memory_budget == 200 * MiB);
  CHECK(r.slots_in_use == 1);
  CHECK(r.slots == 8);
  // Exactly what is free still fits; one byte more does not.
  CHECK(by_bytes.try_acquire(37 * MiB + 1).error().reason == Reason::no_memory);
  Admission exact = by_bytes.try_acquire(37 * MiB);
  REQUIRE(exact);
  CHECK(by_bytes.stats().bytes_in_use == 200 * MiB);
  CHECK(by_bytes.try_acquire(1).error().available_bytes == 0);
  // A zero-byte upload needs only a slot.
  CHECK(by_bytes.try_acquire(0));
}

TEST_CASE("refusal order: too_large, then no_slot, then no_memory", "[pool]") {
  SlotPool pool{PoolConfig{.memory_budget = 10 * MiB, .slots = 1}, FlatPolicy{100}};
  Admission only = pool.try_acquire(9 * MiB);
  REQUIRE(only);
  // No slot and not enough memory, and larger than the budget: too_large wins,
  // because it is the only answer that stays true.
  CHECK(pool.try_acquire(11 * MiB).error().reason == Reason::too_large);
  // No slot and not enough memory: no_slot.
  CHECK(pool.try_acquire(2 * MiB).error().reason == Reason::no_slot);
}

TEST_CASE("too_large is decided against the whole budget, not what is free", "[pool]") {
  SlotPool pool{PoolConfig{.memory_budget = 10 * MiB, .slots = 4}, FlatPolicy{100}};
  Admission held = pool.try_acquire(6 * MiB);
  REQUIRE(held);
  const Admission a = pool.try_acquire(10 * MiB);  // fits the budget, not what is free
  CHECK(a.error().reason == Reason::no_memory);
  const Admission b = pool.try_acquire(10 * MiB + 1);
  CHECK(b.error().reason == Reason::too_large);
  CHECK(b.error().available_bytes == 4 * MiB);
}

TEMPLATE_TEST_CASE("every stock policy: a reservation holds what the policy says", "[pool]",
                   TieredPolicy, FlatPolicy, FixedPolicy) {
  const TestType policy = make_policy<TestType>();
  SlotPool pool{PoolConfig{.memory_budget = 4 * GiB, .slots = 16}, policy};
  CHECK(pool.policy() == policy);
  std::uint64_t expected_in_use = 0;
  std::vector<admit::SlotReservation> held;
  for (const std::uint64_t size : {std::uint64_t{0}, MiB, 99 * MiB, 100 * MiB, GiB, large_upload}) {
    CAPTURE(size);
    CHECK(pool.bytes_for(size) == policy.bytes_for(size));
    Admission a = pool.try_acquire(size);
    REQUIRE(a);
    CHECK(a->bytes() == policy.bytes_for(size));
    CHECK(a->declared_size() == size);
    expected_in_use += a->bytes();
    held.push_back(std::move(a).value());
    CHECK(pool.stats().bytes_in_use == expected_in_use);
  }
  held.clear();
  CHECK(pool.stats().bytes_in_use == 0);
  CHECK(pool.stats().slots_in_use == 0);
}

TEST_CASE("slot indices are unique among held reservations and reused", "[pool]") {
  SlotPool pool{PoolConfig{.memory_budget = GiB, .slots = 70}, FixedPolicy{1}};
  std::vector<admit::SlotReservation> held;
  std::set<std::uint32_t> slots;
  for (int i = 0; i < 70; ++i) {
    held.push_back(std::move(pool.try_acquire(1)).value());
    slots.insert(held.back().slot());
  }
  CHECK(slots.size() == 70);
  CHECK(*slots.rbegin() == 69);
  const std::uint32_t freed = held[42].slot();
  held[42].release();
  Admission again = pool.try_acquire(1);
  REQUIRE(again);
  CHECK(again->slot() == freed);
}

TEST_CASE("the limits themselves are valid and usable", "[pool][validation]") {
  SECTION("the whole maximum budget in one reservation") {
    SlotPool pool{PoolConfig{.memory_budget = PoolConfig::max_memory_budget, .slots = 2},
                  FixedPolicy{PoolConfig::max_memory_budget}};
    Admission a = pool.try_acquire(1);
    REQUIRE(a);
    CHECK(pool.stats().bytes_in_use == PoolConfig::max_memory_budget);
    CHECK(pool.try_acquire(1).error().reason == Reason::no_memory);
    a->release();
    CHECK(pool.stats().bytes_in_use == 0);
  }
  SECTION("the maximum slot count; the highest index is reachable") {
    SlotPool pool{PoolConfig{.memory_budget = MiB, .slots = PoolConfig::max_slots}, FixedPolicy{0}};
    CHECK(pool.slots() == PoolConfig::max_slots);
    std::vector<admit::SlotReservation> held;
    held.reserve(PoolConfig::max_slots);
    for (std::uint32_t i = 0; i < PoolConfig::max_slots; ++i) {
      held.push_back(std::move(pool.try_acquire(0)).value());
    }
    CHECK(held.back().slot() == PoolConfig::max_slots - 1);
    CHECK(pool.stats().slots_in_use == PoolConfig::max_slots);
    CHECK(pool.try_acquire(0).error().reason == Reason::no_slot);
  }
  SECTION("declared sizes up to the uint64 maximum") {
    SlotPool pool{server_config};
    Admission a = pool.try_acquire(UINT64_MAX);
    REQUIRE(a);
    CHECK(a->bytes() == 100 * MiB);
  }
}

TEST_CASE("nothing on the admission path can throw", "[pool]") {
  SlotPool pool{server_config};
  STATIC_REQUIRE(noexcept(pool.try_acquire(1)));
  STATIC_REQUIRE(noexcept(pool.stats()));
  STATIC_REQUIRE(noexcept(pool.bytes_for(1)));
  admit::SlotReservation r;
  STATIC_REQUIRE(noexcept(r.release()));
  STATIC_REQUIRE(noexcept(r.try_grow(1)));
  STATIC_REQUIRE(noexcept(r.shrink(1)));
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<admit::SlotReservation>);
  STATIC_REQUIRE(std::is_nothrow_move_assignable_v<admit::SlotReservation>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<Admission>);
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<admit::SlotReservation>);
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<SlotPool<>>);
  STATIC_REQUIRE_FALSE(std::is_move_constructible_v<SlotPool<>>);
}

TEST_CASE("bypass admits without taking a slot or a byte, and is counted", "[pool][bypass]") {
  SlotPool<FlatPolicy> pool{PoolConfig{.memory_budget = 10 * MiB, .slots = 1}, FlatPolicy{100}};
  Admission held = pool.try_acquire(10 * MiB);
  REQUIRE(held);
  REQUIRE_FALSE(pool.try_acquire(0));  // full
  pool.set_pressure(true);
  Admission probe = pool.bypass();
  REQUIRE(probe);  // admitted although the pool is full and under pressure
  CHECK_FALSE(*probe);  // and holds nothing
  CHECK(probe->bytes() == 0);
  pool.close();
  Admission admin = pool.bypass();
  CHECK(admin);
  const admit::Stats s = pool.stats();
  CHECK(s.bypassed == 2);
  CHECK(s.slots_in_use == 1);
  CHECK(s.bytes_in_use == 10 * MiB);
  CHECK(s.admitted == 1);  // bypasses are not admissions
  probe = Admission{admit::SlotReservation{}};  // giving one back gives back nothing
  CHECK(pool.stats().slots_in_use == 1);
  STATIC_REQUIRE(noexcept(pool.bypass()));
}

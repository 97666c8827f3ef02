// Tests for admit/admission.hpp: Admission behaves like
// std::expected<SlotReservation, Rejection>.
#include <admit/admission.hpp>
#include <admit/pool.hpp>

#include <string>
#include <type_traits>
#include <utility>

#include "catch.hpp"

using admit::Admission;
using admit::MiB;
using admit::PoolConfig;
using admit::Reason;
using admit::SlotPool;
using admit::SlotReservation;

TEST_CASE("an admitted Admission gives access to its reservation", "[admission]") {
  SlotPool pool{PoolConfig{.memory_budget = 10 * MiB, .slots = 2}, admit::FlatPolicy{100}};
  Admission a = pool.try_acquire(MiB);
  REQUIRE(a.has_value());
  CHECK(static_cast<bool>(a));
  CHECK(a->bytes() == MiB);
  CHECK((*a).bytes() == MiB);
  CHECK(a.value().bytes() == MiB);
  const Admission& ca = a;
  CHECK(ca->declared_size() == MiB);
  CHECK((*ca).slot() == 0);
  CHECK(ca.value().bytes() == MiB);
}

TEST_CASE("a refused Admission gives its rejection, and value() throws", "[admission]") {
  SlotPool pool{PoolConfig{.memory_budget = 10 * MiB, .slots = 2}, admit::FlatPolicy{100}};
  Admission a = pool.try_acquire(11 * MiB);
  REQUIRE_FALSE(a.has_value());
  CHECK_FALSE(a);
  CHECK(a.error().reason == Reason::too_large);
  CHECK(a.error().needed_bytes == 11 * MiB);
  try {
    (void)a.value();
    FAIL("value() on a refusal must throw");
  } catch (const admit::BadAdmissionAccess& e) {
    CHECK(e.error().reason == Reason::too_large);
    CHECK(std::string{e.what()}.find("refused") != std::string::npos);
  }
  CHECK_THROWS_AS((void)std::move(a).value(), admit::BadAdmissionAccess);
}

TEST_CASE("the reservation can be moved out and outlives the Admission", "[admission]") {
  SlotPool pool{PoolConfig{.memory_budget = 10 * MiB, .slots = 2}, admit::FlatPolicy{100}};
  SlotReservation kept;
  {
    Admission a = pool.try_acquire(3 * MiB);
    REQUIRE(a);
    kept = std::move(a).value();
    CHECK(a.has_value());  // still "admitted", like std::expected
    CHECK_FALSE(*a);       // but its reservation is now empty
  }
  CHECK(kept.bytes() == 3 * MiB);
  CHECK(pool.stats().bytes_in_use == 3 * MiB);
  SlotReservation second = *pool.try_acquire(2 * MiB);  // operator* on an rvalue
  CHECK(pool.stats().bytes_in_use == 5 * MiB);
  STATIC_REQUIRE(std::is_same_v<decltype(*std::declval<Admission>()), SlotReservation&&>);
  STATIC_REQUIRE(std::is_same_v<decltype(std::declval<Admission>().value()), SlotReservation&&>);
}

TEST_CASE("an Admission destroyed while holding its reservation releases it", "[admission]") {
  SlotPool pool{PoolConfig{.memory_budget = 10 * MiB, .slots = 2}, admit::FlatPolicy{100}};
  { const Admission a = pool.try_acquire(4 * MiB); }
  CHECK(pool.stats().bytes_in_use == 0);
  CHECK(pool.stats().slots_in_use == 0);
}

TEST_CASE("moving Admissions moves the reservation exactly once", "[admission]") {
  SlotPool pool{PoolConfig{.memory_budget = 10 * MiB, .slots = 2}, admit::FlatPolicy{100}};
  Admission a = pool.try_acquire(4 * MiB);
  Admission b = std::move(a);
  CHECK(b->bytes() == 4 * MiB);
  CHECK(pool.stats().bytes_in_use == 4 * MiB);

  Admission c = pool.try_acquire(5 * MiB);
  REQUIRE(c);
  c = std::move(b);  // releases c's 5 MiB, takes b's 4 MiB
  CHECK(c->bytes() == 4 * MiB);
  CHECK(pool.stats().bytes_in_use == 4 * MiB);
  CHECK(pool.stats().slots_in_use == 1);

  c = pool.try_acquire(20 * MiB);  // a refusal replaces (and releases) the reservation
  CHECK_FALSE(c);
  CHECK(c.error().reason == Reason::too_large);
  CHECK(pool.stats().bytes_in_use == 0);

  Admission d = std::move(c);
  CHECK(d.error().reason == Reason::too_large);
}

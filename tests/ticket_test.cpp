// Tests for admit/ticket.hpp and SlotPool::async_acquire: the handler runs
// exactly once, with an Admission rvalue, on the documented thread, outside
// the pool's locks; cancel() never loses capacity.
#include <admit/pool.hpp>
#include <admit/ticket.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "bitwise_copy.hpp"
#include "catch.hpp"
#include "wait_support.hpp"

using admit::Admission;
using admit::FlatPolicy;
using admit::MiB;
using admit::PoolConfig;
using admit::Reason;
using admit::SlotReservation;
using admit_test::eventually;
using namespace std::chrono_literals;

namespace {

using Pool = admit::SlotPool<FlatPolicy>;

constexpr PoolConfig config{.memory_budget = 200 * MiB, .slots = 8};

// Records what a handler received, and where.
struct Answer {
  std::atomic<int> calls{0};
  std::optional<Admission> admission;
  std::thread::id thread;

  auto handler() {
    return [this](Admission a) {  // by value: the pool passes an rvalue
      admission.emplace(std::move(a));
      thread = std::this_thread::get_id();
      calls.fetch_add(1);
    };
  }
};

SlotReservation take(Pool& pool, std::uint64_t bytes) {
  return std::move(pool.try_acquire(bytes)).value();
}

}  // namespace

TEST_CASE("an async request that fits is answered at once on the calling thread",
          "[ticket][async]") {
  Pool pool{config, FlatPolicy{100}};
  Answer answer;
  const admit::Ticket ticket = pool.async_acquire(50 * MiB, answer.handler());
  CHECK(ticket);
  REQUIRE(answer.calls == 1);
  CHECK(answer.thread == std::this_thread::get_id());
  REQUIRE(answer.admission.has_value());
  REQUIRE(*answer.admission);
  CHECK((*answer.admission)->bytes() == 50 * MiB);
  CHECK(pool.stats().bytes_in_use == 50 * MiB);
  answer.admission.reset();
  CHECK(pool.stats().bytes_in_use == 0);
}

TEST_CASE("immediate async refusals: too_large, closed, expired deadline", "[ticket][async]") {
  Pool pool{config, FlatPolicy{100}};
  Answer too_large;
  (void)pool.async_acquire(201 * MiB, too_large.handler());
  REQUIRE(too_large.calls == 1);
  CHECK(too_large.admission->error().reason == Reason::too_large);

  Answer expired;
  (void)pool.async_acquire(MiB, Pool::clock::now() - 1ms, expired.handler());
  REQUIRE(expired.calls == 1);
  CHECK(expired.admission->error().reason == Reason::timeout);
  CHECK(pool.stats().bytes_in_use == 0);

  pool.close();
  Answer closed;
  (void)pool.async_acquire(MiB, closed.handler());
  REQUIRE(closed.calls == 1);
  CHECK(closed.admission->error().reason == Reason::closed);
  CHECK(pool.stats().waiters == 0);
}

TEST_CASE("a queued async request is granted on the releasing thread", "[ticket][async]") {
  Pool pool{config, FlatPolicy{100}};
  SlotReservation held = take(pool, 150 * MiB);
  Answer answer;
  const admit::Ticket ticket = pool.async_acquire(100 * MiB, answer.handler());
  CHECK(answer.calls == 0);
  CHECK(pool.stats().waiters == 1);
  std::thread::id releaser;
  std::thread{[&] {
    releaser = std::this_thread::get_id();
    held.release();
  }}.join();
  REQUIRE(answer.calls == 1);
  CHECK(answer.thread == releaser);
  REQUIRE(*answer.admission);
  CHECK((*answer.admission)->bytes() == 100 * MiB);
  CHECK(pool.stats().waiters == 0);
}

TEST_CASE("cancel answers a waiting request with cancelled, once", "[ticket][async]") {
  Pool pool{config, FlatPolicy{100}};
  SlotReservation held = take(pool, 150 * MiB);
  Answer answer;
  admit::Ticket ticket = pool.async_acquire(100 * MiB, answer.handler());
  CHECK(ticket.cancel());
  REQUIRE(answer.calls == 1);
  CHECK(answer.thread == std::this_thread::get_id());
  CHECK(answer.admission->error().reason == Reason::cancelled);
  CHECK_FALSE(ticket.cancel());  // already answered
  held.release();
  CHECK(answer.calls == 1);
  CHECK(pool.stats().bytes_in_use == 0);
  CHECK(pool.stats().rejected.cancelled == 1);
  CHECK_FALSE(admit::Ticket{}.cancel());
}

TEST_CASE("cancel after the grant returns false and the reservation is delivered",
          "[ticket][async]") {
  Pool pool{config, FlatPolicy{100}};
  SlotReservation held = take(pool, 150 * MiB);
  Answer answer;
  admit::Ticket ticket = pool.async_acquire(100 * MiB, answer.handler());
  held.release();
  REQUIRE(answer.calls == 1);
  CHECK_FALSE(ticket.cancel());
  REQUIRE(*answer.admission);
  CHECK(pool.stats().bytes_in_use == 100 * MiB);
  CHECK(pool.stats().rejected.cancelled == 0);
}

TEST_CASE("a cancelled queue head wakes the waiters behind it", "[ticket][async]") {
  // Regression class: cancelling the head must dispatch to those behind it.
  Pool pool{config, FlatPolicy{100}};
  SlotReservation held = take(pool, 100 * MiB);
  Answer head;
  Answer behind;
  admit::Ticket head_ticket = pool.async_acquire(150 * MiB, head.handler());
  (void)pool.async_acquire(50 * MiB, behind.handler());
  CHECK(behind.calls == 0);  // FIFO: it fits, but the head is first
  CHECK(head_ticket.cancel());
  REQUIRE(behind.calls == 1);
  CHECK(*behind.admission);
  CHECK(head.admission->error().reason == Reason::cancelled);
}

TEST_CASE("an async deadline answers timeout from the timer thread", "[ticket][async]") {
  Pool pool{config, FlatPolicy{100}};
  SlotReservation held = take(pool, 150 * MiB);
  Answer answer;
  Answer later;
  (void)pool.async_acquire_for(100 * MiB, 20ms, answer.handler());
  (void)pool.async_acquire_for(10 * MiB, std::chrono::hours{1}, later.handler());
  REQUIRE(eventually([&] { return answer.calls == 1; }));
  CHECK(answer.admission->error().reason == Reason::timeout);
  CHECK(answer.thread != std::this_thread::get_id());
  // The timed-out head no longer blocks the one behind it.
  REQUIRE(eventually([&] { return later.calls == 1; }));
  CHECK(*later.admission);
  CHECK(pool.stats().rejected.timeout == 1);
}

// The timer thread runs handlers with the mutex released. A deadline queued
// meanwhile (here, by the handler itself) must still be noticed: the timer
// once slept on the deadline it had computed before running the handlers,
// missed the new one's wake-up and never answered it.
TEST_CASE("a deadline queued while the timer thread runs handlers still expires",
          "[ticket][async]") {
  Pool pool{config, FlatPolicy{100}};
  SlotReservation held = take(pool, 200 * MiB);
  std::atomic<int> second_calls{0};
  std::optional<Reason> second_reason;
  Answer first;
  (void)pool.async_acquire_for(10 * MiB, 10ms, [&](Admission a) {
    (void)pool.async_acquire_for(10 * MiB, 10ms, [&](Admission b) {
      second_reason = b.error().reason;
      second_calls.fetch_add(1);
    });
    first.handler()(std::move(a));
  });
  REQUIRE(eventually([&] { return first.calls == 1; }));
  CHECK(first.admission->error().reason == Reason::timeout);
  REQUIRE(eventually([&] { return second_calls == 1; }, 5s));
  CHECK(second_reason == Reason::timeout);
}

TEST_CASE("close answers async waiters with closed", "[ticket][async][close]") {
  Pool pool{config, FlatPolicy{100}};
  SlotReservation held = take(pool, 200 * MiB);
  std::vector<Answer> answers(3);
  for (Answer& a : answers) (void)pool.async_acquire(MiB, a.handler());
  CHECK(pool.stats().waiters == 3);
  pool.close();
  for (Answer& a : answers) {
    REQUIRE(a.calls == 1);
    CHECK(a.admission->error().reason == Reason::closed);
  }
  CHECK(pool.stats().waiters == 0);
}

TEST_CASE("a handler may call back into the pool without deadlock", "[ticket][async]") {
  Pool pool{config, FlatPolicy{100}};
  SlotReservation held = take(pool, 150 * MiB);
  std::atomic<int> calls{0};
  std::optional<admit::Stats> seen;
  admit::Ticket inner;
  (void)pool.async_acquire(100 * MiB, [&](Admission a) {
    ++calls;
    REQUIRE(a);
    seen = pool.stats();
    // Release and acquire again, from inside the handler, and queue another.
    a->release();
    Admission again = pool.try_acquire(10 * MiB);
    CHECK(again);
    inner = pool.async_acquire(500 * MiB, [&](Admission b) {
      ++calls;
      CHECK(b.error().reason == Reason::too_large);
    });
  });
  held.release();
  CHECK(calls == 2);
  REQUIRE(seen.has_value());
  CHECK(seen->bytes_in_use == 100 * MiB);
  CHECK(pool.stats().bytes_in_use == 0);
}

TEST_CASE("handlers may take the Admission by value or by rvalue reference", "[ticket][async]") {
  Pool pool{config, FlatPolicy{100}};
  std::optional<SlotReservation> kept;
  (void)pool.async_acquire(MiB, [&](Admission&& a) { kept.emplace(std::move(a).value()); });
  CHECK(kept.has_value());
  CHECK(pool.stats().bytes_in_use == MiB);
  STATIC_REQUIRE(admit::AdmissionHandler<void (*)(Admission)>);
  STATIC_REQUIRE(admit::AdmissionHandler<void (*)(Admission &&)>);
  STATIC_REQUIRE_FALSE(admit::AdmissionHandler<void (*)(Admission&)>);
  STATIC_REQUIRE_FALSE(admit::AdmissionHandler<int>);
}

TEST_CASE("what a handler captured dies after its call, not with the ticket", "[ticket][async]") {
  Pool pool{config, FlatPolicy{100}};
  auto token = std::make_shared<int>(1);
  const std::weak_ptr<int> watch = token;
  const admit::Ticket ticket =
      pool.async_acquire(MiB, [token = std::move(token)](Admission) { (void)token; });
  CHECK(watch.expired());
  CHECK(ticket);
}

TEST_CASE("a handler may store its reservation where the released one was",
          "[ticket][async][reservation]") {
  // The release that admits the waiter runs its handler; the handler assigns
  // to the very reservation being released. Nothing may be lost or clobbered.
  Pool pool{config, FlatPolicy{100}};
  SECTION("through release()") {
    SlotReservation r = take(pool, 150 * MiB);
    (void)pool.async_acquire(100 * MiB, [&](Admission a) { r = std::move(a).value(); });
    r.release();
    REQUIRE(r);
    CHECK(r.bytes() == 100 * MiB);
    CHECK(r.declared_size() == 100 * MiB);
    CHECK(pool.stats().bytes_in_use == 100 * MiB);
    CHECK(pool.stats().slots_in_use == 1);
  }
  SECTION("through move assignment") {
    SlotReservation r = take(pool, 150 * MiB);
    (void)pool.async_acquire(100 * MiB, [&](Admission a) { r = std::move(a).value(); });
    r = SlotReservation{};
    REQUIRE(r);
    CHECK(r.bytes() == 100 * MiB);
    CHECK(r.declared_size() == 100 * MiB);
    CHECK(pool.stats().bytes_in_use == 100 * MiB);
  }
  CHECK(pool.stats().bytes_in_use == 0);
  CHECK(pool.stats().slots_in_use == 0);
}

TEST_CASE("a granted async reservation carries its claim: its copies are refused",
          "[ticket][async][double_release]") {
  // One slot, first held and given back, so the waiter is granted it under
  // generation 1: a grant that dropped the generation would make the
  // waiter's own release look stale.
  Pool pool{PoolConfig{.memory_budget = 100 * MiB, .slots = 1}, FlatPolicy{100}};
  SlotReservation holder = take(pool, 10 * MiB);
  Answer answer;
  const admit::Ticket ticket = pool.async_acquire(40 * MiB, answer.handler());
  REQUIRE(answer.calls == 0);
  holder.release();  // grants the waiter through the queue
  REQUIRE(answer.calls == 1);
  REQUIRE(answer.admission->has_value());
  SlotReservation& granted = answer.admission->value();
  CHECK(granted.bytes() == 40 * MiB);

  SECTION("the granted reservation works and gives back once") {
    REQUIRE(granted.try_grow(10 * MiB));
    CHECK(granted.shrink(20 * MiB) == 20 * MiB);
    granted.release();
    CHECK(pool.stats().double_releases == 0);
  }
  SECTION("a copy of it released after it is refused") {
    admit_test::BitwiseCopy copy{granted};
    granted.release();
    copy.destroy();
    CHECK(pool.stats().double_releases == 1);
  }
  SECTION("a copy of it released after the slot went to a new reservation") {
    admit_test::BitwiseCopy copy{granted};
    granted.release();
    SlotReservation next = take(pool, 70 * MiB);
    CHECK_FALSE(copy->shrink(MiB));
    copy.destroy();
    CHECK(pool.stats().double_releases == 1);
    CHECK(pool.stats().bytes_in_use == 70 * MiB);
    CHECK(pool.stats().slots_in_use == 1);
    next.release();
  }
  CHECK(pool.stats().bytes_in_use == 0);
  CHECK(pool.stats().slots_in_use == 0);
  CHECK(pool.try_acquire(100 * MiB));  // the whole pool is admittable again
}

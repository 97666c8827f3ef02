// Tests for pressure in admit/pool.hpp (set_pressure, under_pressure): while it
// is on nobody new is admitted - try_acquire and try_grow are refused at once
// with Reason::pressure, in the documented order of reasons - and waiting
// requests, old and new, keep waiting until it clears or their deadline;
// everything held keeps working and comes back exactly once.
#include <admit/pool.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <vector>

#include "catch.hpp"
#include "wait_support.hpp"

using admit::Admission;
using admit::FlatPolicy;
using admit::MiB;
using admit::PoolConfig;
using admit::Reason;
using admit::SlotPool;
using admit::SlotReservation;
using admit_test::eventually;
using namespace std::chrono_literals;

namespace {

using Pool = SlotPool<FlatPolicy>;

// 100 MiB, 4 slots, bytes = declared size.
PoolConfig config(admit::Fairness fairness = admit::Fairness::fifo) {
  return PoolConfig{.memory_budget = 100 * MiB, .slots = 4, .fairness = fairness};
}

SlotReservation take(Pool& pool, std::uint64_t bytes) {
  return std::move(pool.try_acquire(bytes)).value();
}

Reason refusal(const Admission& a) {
  REQUIRE_FALSE(a);
  return a.error().reason;
}

// Starts a blocking acquire on another thread and waits until it is queued.
std::future<Admission> queue_blocking(Pool& pool, std::uint64_t bytes,
                                      std::chrono::milliseconds timeout = 10s) {
  const std::uint64_t before = pool.stats().waiters;
  auto waiter = std::async(std::launch::async,
                           [&pool, bytes, timeout] { return pool.acquire_for(bytes, timeout); });
  REQUIRE(eventually([&] { return pool.stats().waiters == before + 1; }));
  // stats() is a lock-free snapshot: it can show the waiter a moment before
  // the enqueue, still under the pool's lock, raises the attention bit that
  // makes try_acquire queue behind it. Taking the lock waits for that.
  static_cast<void>(pool.head_waiter_needs());
  return waiter;
}

}  // namespace

TEST_CASE("under pressure try_acquire is refused with pressure, counted, with the figures",
          "[pool][pressure]") {
  const admit::Fairness fairness = GENERATE(admit::Fairness::fifo, admit::Fairness::barging);
  Pool pool{config(fairness), FlatPolicy{100}};
  CHECK_FALSE(pool.under_pressure());
  const SlotReservation held = take(pool, 30 * MiB);
  pool.set_pressure(true);
  CHECK(pool.under_pressure());

  const Admission refused = pool.try_acquire(10 * MiB);
  REQUIRE_FALSE(refused);
  CHECK(refused.error() ==
        admit::Rejection{Reason::pressure, 10 * MiB, 10 * MiB, 70 * MiB, 100 * MiB, 1, 4});
  CHECK_FALSE(admit::is_permanent(Reason::pressure));
  const admit::Stats s = pool.stats();
  CHECK(s.rejected.pressure == 1);
  CHECK(s.rejected.total() == 1);
  CHECK(s.admitted == 1);
  CHECK(s.bytes_in_use == 30 * MiB);
  CHECK(s.slots_in_use == 1);

  pool.set_pressure(false);
  CHECK_FALSE(pool.under_pressure());
  CHECK(pool.try_acquire(10 * MiB));
  CHECK(pool.stats().admitted == 2);
}

TEST_CASE("refusal order: closed, too_large, pressure, no_slot, no_memory", "[pool][pressure]") {
  Pool pool{config(), FlatPolicy{100}};
  std::vector<SlotReservation> held;
  held.push_back(take(pool, 60 * MiB));
  pool.set_pressure(true);
  CHECK(refusal(pool.try_acquire(101 * MiB)) == Reason::too_large);  // can never fit: say so
  CHECK(refusal(pool.try_acquire(50 * MiB)) == Reason::pressure);    // would not fit either
  CHECK(refusal(pool.try_acquire(MiB)) == Reason::pressure);
  pool.set_pressure(false);
  for (int i = 0; i < 3; ++i) held.push_back(take(pool, MiB));
  pool.set_pressure(true);
  CHECK(refusal(pool.try_acquire(MiB)) == Reason::pressure);  // rather than no_slot
  pool.close();
  CHECK(refusal(pool.try_acquire(MiB)) == Reason::closed);
  CHECK(refusal(pool.try_acquire(101 * MiB)) == Reason::closed);
  const admit::Stats s = pool.stats();
  CHECK(s.rejected.pressure == 3);
  CHECK(s.rejected.too_large == 1);
  CHECK(s.rejected.closed == 2);
}

TEST_CASE("under pressure try_grow is refused, and shrink and release still work",
          "[pool][pressure]") {
  Pool pool{config(), FlatPolicy{100}};
  SlotReservation r = take(pool, 20 * MiB);
  pool.set_pressure(true);
  const admit::GrowResult grown = r.try_grow(MiB);
  REQUIRE_FALSE(grown);
  CHECK(grown.error().reason == Reason::pressure);
  CHECK(grown.error().needed_bytes == MiB);
  CHECK(r.bytes() == 20 * MiB);
  CHECK(r.try_grow(0));  // nothing asked, nothing refused
  // A grow that could never fit is too_large whatever the pressure.
  CHECK(r.try_grow(81 * MiB).error().reason == Reason::too_large);
  CHECK(pool.stats().rejected.total() == 0);  // try_grow refusals are not counted

  r.shrink(5 * MiB);
  CHECK(r.bytes() == 15 * MiB);
  CHECK(pool.stats().bytes_in_use == 15 * MiB);
  r.release();
  CHECK(pool.stats().bytes_in_use == 0);
  CHECK(pool.stats().slots_in_use == 0);

  pool.set_pressure(false);
  SlotReservation again = take(pool, 20 * MiB);
  CHECK(again.try_grow(MiB));
  CHECK(pool.stats().bytes_in_use == 21 * MiB);
}

TEST_CASE("a blocking request made under pressure waits, and is admitted when it clears",
          "[pool][pressure]") {
  const admit::Fairness fairness = GENERATE(admit::Fairness::fifo, admit::Fairness::barging);
  Pool pool{config(fairness), FlatPolicy{100}};
  std::optional<SlotReservation> held{take(pool, 50 * MiB)};
  pool.set_pressure(true);
  auto waiter = queue_blocking(pool, 10 * MiB);
  // Room that comes back goes to nobody while pressure is on.
  held.reset();
  CHECK(pool.stats().waiters == 1);
  CHECK(pool.stats().bytes_in_use == 0);
  CHECK(waiter.wait_for(50ms) == std::future_status::timeout);

  pool.set_pressure(false);
  const Admission admitted = waiter.get();
  REQUIRE(admitted);
  CHECK(admitted->bytes() == 10 * MiB);
  CHECK(pool.stats().waiters == 0);
  CHECK(pool.stats().rejected.total() == 0);
}

TEST_CASE("under pressure a waiter's deadline still ends its wait", "[pool][pressure]") {
  Pool pool{config(), FlatPolicy{100}};
  pool.set_pressure(true);
  // The pool is empty: only pressure keeps this one out.
  const Admission timed_out = pool.acquire_for(MiB, 30ms);
  CHECK(refusal(timed_out) == Reason::timeout);

  std::atomic<int> answers{0};
  std::optional<Reason> reason;
  admit::Ticket ticket = pool.async_acquire_for(MiB, 30ms, [&](Admission&& a) {
    reason = a ? std::nullopt : std::optional{a.error().reason};
    answers.fetch_add(1, std::memory_order_release);
  });
  REQUIRE(eventually([&] { return answers.load(std::memory_order_acquire) == 1; }));
  CHECK(reason == Reason::timeout);
  CHECK(pool.stats().waiters == 0);
  CHECK(pool.stats().rejected.timeout == 2);
  CHECK(pool.stats().rejected.pressure == 0);  // waiting requests are never refused for it
}

TEST_CASE("an async request made under pressure is queued and admitted when it clears",
          "[pool][pressure]") {
  Pool pool{config(), FlatPolicy{100}};
  pool.set_pressure(true);
  std::atomic<int> answers{0};
  std::optional<SlotReservation> got;
  admit::Ticket ticket = pool.async_acquire(10 * MiB, [&](Admission&& a) {
    if (a) got.emplace(std::move(a).value());
    answers.fetch_add(1, std::memory_order_release);
  });
  CHECK(pool.stats().waiters == 1);
  CHECK(answers.load(std::memory_order_acquire) == 0);
  pool.set_pressure(false);  // admits it on this thread
  REQUIRE(answers.load(std::memory_order_acquire) == 1);
  REQUIRE(got.has_value());
  CHECK(got->bytes() == 10 * MiB);
}

TEST_CASE("under pressure a shrinking budget still answers the waiters that can never fit",
          "[pool][pressure]") {
  Pool pool{config(), FlatPolicy{100}};
  pool.set_pressure(true);
  auto big = queue_blocking(pool, 80 * MiB);
  auto small = queue_blocking(pool, 10 * MiB);
  pool.set_memory_budget(50 * MiB);
  CHECK(refusal(big.get()) == Reason::too_large);
  CHECK(small.wait_for(20ms) == std::future_status::timeout);
  CHECK(pool.stats().waiters == 1);
  pool.set_pressure(false);
  CHECK(small.get());
}

TEST_CASE("set_pressure is idempotent, and close() answers waiters queued under pressure",
          "[pool][pressure]") {
  Pool pool{config(), FlatPolicy{100}};
  pool.set_pressure(true);
  pool.set_pressure(true);
  CHECK(pool.under_pressure());
  auto waiter = queue_blocking(pool, MiB);
  pool.close();
  CHECK(refusal(waiter.get()) == Reason::closed);
  pool.set_pressure(false);
  CHECK_FALSE(pool.under_pressure());
  pool.set_pressure(false);
  CHECK(refusal(pool.try_acquire(MiB)) == Reason::closed);
  CHECK(pool.wait_idle(std::chrono::steady_clock::now() + 1s));
}

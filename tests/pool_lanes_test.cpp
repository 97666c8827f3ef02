// Tests for Fairness::lanes (config.hpp, detail/pool_core.hpp): requests that
// fit pass a waiting head only inside the head's window, which closes after
// max_head_wait or once the passers took max_pass_percent of its bytes; then
// the pool is FIFO until the head is admitted. The windows run on a fake
// clock (PoolConfig::lanes_clock) and the waiters are async, so every case is
// single-threaded and exact: no sleep, no timing.
#include <admit/pool.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>
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
using namespace std::chrono_literals;

namespace {

using Pool = SlotPool<FlatPolicy>;

// The lanes clock of every pool in this file; each test case starts it anew.
std::atomic<std::int64_t> fake_now_ms{0};

std::chrono::steady_clock::time_point fake_now() noexcept {
  return std::chrono::steady_clock::time_point{} +
         std::chrono::milliseconds{fake_now_ms.load(std::memory_order_relaxed)};
}

void advance(std::chrono::milliseconds by) { fake_now_ms.fetch_add(by.count()); }

// 200 MiB, 8 slots, bytes = declared size (FlatPolicy{100}), lanes on the fake clock.
PoolConfig lanes(std::chrono::milliseconds max_head_wait = 1000ms,
                 std::uint32_t max_pass_percent = 100, std::uint32_t slots = 8) {
  fake_now_ms = 1'000'000;
  return PoolConfig{.memory_budget = 200 * MiB,
                    .slots = slots,
                    .fairness = admit::Fairness::lanes,
                    .max_head_wait = max_head_wait,
                    .max_pass_percent = max_pass_percent,
                    .lanes_clock = &fake_now};
}

SlotReservation take(Pool& pool, std::uint64_t bytes) {
  Admission a = pool.try_acquire(bytes);
  REQUIRE(a);
  return std::move(a).value();
}

// An async request whose answer lands in `answer`; `answered` says so to
// another thread (the pool's timer thread answers timeouts).
struct Queued {
  std::optional<Admission> answer;
  std::atomic<bool> answered{false};
  admit::Ticket ticket;
};

void queue(Pool& pool, std::uint64_t bytes, Queued& q) {
  q.ticket = pool.async_acquire(bytes, [&q](Admission&& a) {
    q.answer.emplace(std::move(a));
    q.answered.store(true, std::memory_order_release);
  });
}

Reason refusal(const Admission& a) {
  REQUIRE_FALSE(a);
  return a.error().reason;
}

}  // namespace

TEST_CASE("lanes: a request that fits passes a waiting head while its window is open",
          "[pool][lanes]") {
  Pool pool{lanes(), FlatPolicy{100}};
  SlotReservation held = take(pool, 100 * MiB);
  Queued head;
  queue(pool, 150 * MiB, head);
  REQUIRE_FALSE(head.answer);
  SlotReservation small = take(pool, 10 * MiB);  // FIFO would refuse it: see pool_wait_test
  CHECK(held.try_grow(MiB));
  CHECK(pool.stats().bytes_in_use == 111 * MiB);
  held.release();
  small.release();
  REQUIRE(head.answer);
  CHECK(*head.answer);
}

TEST_CASE("lanes: once the head has waited max_head_wait nobody passes it", "[pool][lanes]") {
  Pool pool{lanes(500ms), FlatPolicy{100}};
  SlotReservation held = take(pool, 100 * MiB);
  Queued head;
  queue(pool, 200 * MiB, head);
  advance(499ms);
  SlotReservation early = take(pool, MiB);
  advance(1ms);
  const Admission late = pool.try_acquire(MiB);
  CHECK(refusal(late) == Reason::no_memory);
  CHECK(late.error().available_bytes == 99 * MiB);
  CHECK(held.try_grow(MiB).error().reason == Reason::no_memory);
  CHECK(refusal(pool.try_acquire(0)) == Reason::no_memory);  // not even a request for no bytes
  // A newcomer that waits queues behind the head instead of passing it.
  Queued behind;
  queue(pool, MiB, behind);
  CHECK_FALSE(behind.answer);
  held.release();
  CHECK_FALSE(head.answer);  // 199 MiB free, but 1 MiB is still held by `early`
  early.release();
  REQUIRE(head.answer);
  REQUIRE(*head.answer);
  CHECK_FALSE(behind.answer);  // the head holds the whole budget
  head.answer.reset();
  REQUIRE(behind.answer);
  CHECK(*behind.answer);
}

TEST_CASE("lanes: passers take at most max_pass_percent of the head's bytes", "[pool][lanes]") {
  Pool pool{lanes(1000ms, 20), FlatPolicy{100}};  // 20 % of a 150 MiB head: 30 MiB
  SlotReservation held = take(pool, 100 * MiB);
  Queued head;
  queue(pool, 150 * MiB, head);
  SlotReservation a = take(pool, 20 * MiB);
  // 11 MiB would take the passers to 31 MiB: refused, though 80 MiB are free.
  CHECK(refusal(pool.try_acquire(11 * MiB)) == Reason::no_memory);
  CHECK(a.try_grow(11 * MiB).error().reason == Reason::no_memory);
  SlotReservation b = take(pool, 6 * MiB);  // a smaller one still fits the share
  CHECK(a.try_grow(4 * MiB));               // 30 MiB: the share is used up
  CHECK(refusal(pool.try_acquire(0)) == Reason::no_memory);
  // Giving bytes back does not reopen the window: the share counts what passed.
  b.release();
  CHECK(refusal(pool.try_acquire(MiB)) == Reason::no_memory);
  CHECK(pool.stats().bytes_in_use == 124 * MiB);
  pool.close();  // answers the head before the pool goes
  CHECK(head.answer);
}

TEST_CASE("lanes: when room frees, waiters behind the head pass through the window",
          "[pool][lanes]") {
  Pool pool{lanes(1000ms, 50), FlatPolicy{100}};  // a 150 MiB head's share: 75 MiB
  SlotReservation held = take(pool, 190 * MiB);
  Queued head;
  Queued too_big;
  Queued fits;
  Queued also_fits;
  queue(pool, 150 * MiB, head);
  queue(pool, 80 * MiB, too_big);  // beyond the share, though it fits after the release
  queue(pool, 40 * MiB, fits);
  queue(pool, 30 * MiB, also_fits);
  CHECK(pool.stats().waiters == 4);
  held.shrink(100 * MiB);  // 110 MiB free: the head does not fit, 80 + 40 + 30 would
  CHECK_FALSE(head.answer);
  CHECK_FALSE(too_big.answer);
  REQUIRE(fits.answer);
  CHECK(*fits.answer);
  REQUIRE(also_fits.answer);
  CHECK(*also_fits.answer);
  CHECK(pool.stats().bytes_in_use == 160 * MiB);  // 70 of the 75 MiB share passed
  fits.answer.reset();  // gives its 40 MiB back: the head still needs 150
  also_fits.answer.reset();
  CHECK_FALSE(head.answer);
  held.release();
  REQUIRE(head.answer);
  CHECK(*head.answer);
  // The 80 MiB request is the head now; 50 MiB are free: it waits.
  CHECK_FALSE(too_big.answer);
  head.answer.reset();
  REQUIRE(too_big.answer);
  CHECK(*too_big.answer);
}

TEST_CASE("lanes: once the window closed on time, a release admits nobody behind the head",
          "[pool][lanes]") {
  Pool pool{lanes(200ms), FlatPolicy{100}};
  SlotReservation held = take(pool, 195 * MiB);
  Queued head;
  Queued behind;
  queue(pool, 150 * MiB, head);
  queue(pool, 10 * MiB, behind);  // 5 MiB free: it cannot pass yet
  CHECK_FALSE(behind.answer);
  advance(200ms);
  held.shrink(105 * MiB);  // 110 MiB free: `behind` would fit, but the window is closed
  CHECK_FALSE(behind.answer);
  CHECK_FALSE(head.answer);
  held.release();
  REQUIRE(head.answer);
  CHECK(*head.answer);
  REQUIRE(behind.answer);
  CHECK(*behind.answer);
}

TEST_CASE("lanes: every new head gets a window of its own", "[pool][lanes]") {
  Pool pool{lanes(100ms, 10), FlatPolicy{100}};
  SlotReservation held = take(pool, 150 * MiB);
  Queued first;
  Queued second;
  queue(pool, 100 * MiB, first);   // share 10 MiB
  queue(pool, 190 * MiB, second);  // share 19 MiB, window not open yet
  advance(100ms);
  CHECK(refusal(pool.try_acquire(MiB)) == Reason::no_memory);
  held.release();  // `first` is admitted; `second` becomes the head now
  REQUIRE(first.answer);
  REQUIRE(*first.answer);
  CHECK_FALSE(second.answer);
  SlotReservation passer = take(pool, 19 * MiB);  // the new window: 19 MiB may pass
  CHECK(refusal(pool.try_acquire(0)) == Reason::no_memory);
  // A head that leaves unanswered (cancelled) also hands the window on.
  Queued third;
  queue(pool, 20 * MiB, third);
  CHECK(second.ticket.cancel());
  REQUIRE(third.answer);  // 81 MiB free: the new head fits at once
  CHECK(*third.answer);
}

TEST_CASE("lanes with max_head_wait 0 or max_pass_percent 0 is FIFO", "[pool][lanes]") {
  const auto [wait, percent] = GENERATE(std::pair{0ms, 100U}, std::pair{1000ms, 0U});
  Pool pool{lanes(wait, percent), FlatPolicy{100}};
  SlotReservation held = take(pool, 100 * MiB);
  Queued head;
  Queued behind;
  queue(pool, 150 * MiB, head);
  CHECK(refusal(pool.try_acquire(0)) == Reason::no_memory);
  CHECK(held.try_grow(MiB).error().reason == Reason::no_memory);
  queue(pool, MiB, behind);
  CHECK_FALSE(behind.answer);
  held.release();
  REQUIRE(head.answer);
  CHECK(*head.answer);
  CHECK(behind.answer);
}

TEST_CASE("lanes: passing respects slots, pressure and close", "[pool][lanes]") {
  Pool pool{PoolConfig{.memory_budget = 200 * MiB,
                       .slots = 2,
                       .fairness = admit::Fairness::lanes,
                       .lanes_clock = &fake_now},
            FlatPolicy{100}};
  SlotReservation held = take(pool, 100 * MiB);
  Queued head;
  queue(pool, 150 * MiB, head);
  SlotReservation passer = take(pool, MiB);
  CHECK(refusal(pool.try_acquire(MiB)) == Reason::no_slot);
  passer.release();
  pool.set_pressure(true);
  CHECK(refusal(pool.try_acquire(MiB)) == Reason::pressure);
  CHECK(held.try_grow(MiB).error().reason == Reason::pressure);
  pool.set_pressure(false);
  pool.close();
  REQUIRE(head.answer);
  CHECK(refusal(*head.answer) == Reason::closed);
  CHECK(refusal(pool.try_acquire(MiB)) == Reason::closed);
}

// The guarantee in config.hpp, checked on a sequence of arrivals: whatever
// passes while the window is open, the head is admitted as soon as every
// reservation held when the window closed has been given back, and the
// passers never took more than the share.
TEST_CASE("lanes: the head is admitted once what was held when its window closed is back",
          "[pool][lanes][guarantee]") {
  const std::uint32_t percent = GENERATE(100U, 40U, 5U);
  Pool pool{lanes(300ms, percent, 64), FlatPolicy{100}};  // enough slots for every passer
  std::vector<SlotReservation> held;
  held.push_back(take(pool, 120 * MiB));
  Queued head;
  queue(pool, 180 * MiB, head);
  const std::uint64_t share = 180 * MiB * percent / 100;
  std::uint64_t passed = 0;
  // Arrivals every 10 ms of 1..15 MiB: those that pass are held "forever".
  for (std::uint64_t i = 0; i < 40; ++i) {
    Admission a = pool.try_acquire((i % 15 + 1) * MiB);
    if (a) {
      passed += a->bytes();
      held.push_back(std::move(a).value());
    }
    advance(10ms);
  }
  CHECK(passed <= share);
  CHECK(passed > 0);
  // The window closed at 300 ms: from here on nothing passes.
  for (std::uint64_t bytes : {0 * MiB, MiB, 20 * MiB}) {
    CHECK(refusal(pool.try_acquire(bytes)) == Reason::no_memory);
  }
  while (held.size() > 1) {
    CHECK_FALSE(head.answer);
    held.pop_back();
  }
  CHECK_FALSE(head.answer);  // 120 MiB still held: 180 MiB do not fit yet
  held.clear();
  REQUIRE(head.answer);
  CHECK(*head.answer);
}

TEST_CASE("lanes: a head that times out hands the window to the next", "[pool][lanes]") {
  Pool pool{lanes(100ms), FlatPolicy{100}};
  SlotReservation held = take(pool, 150 * MiB);
  Queued first;
  first.ticket = pool.async_acquire_for(100 * MiB, 50ms, [&first](Admission&& a) {
    first.answer.emplace(std::move(a));
    first.answered.store(true, std::memory_order_release);
  });
  Queued second;
  queue(pool, 60 * MiB, second);
  advance(100ms);  // the first head's window closed
  CHECK(refusal(pool.try_acquire(MiB)) == Reason::no_memory);
  // The timer thread answers the first head on real time.
  REQUIRE(admit_test::eventually([&] { return first.answered.load(std::memory_order_acquire); }));
  CHECK(refusal(*first.answer) == Reason::timeout);
  CHECK_FALSE(second.answer);  // 50 MiB free, it needs 60
  SlotReservation passer = take(pool, MiB);  // the second head's window is open
  held.release();
  REQUIRE(second.answer);
  CHECK(*second.answer);
}

TEST_CASE("lanes with an unbounded max_head_wait: only the share closes the window",
          "[pool][lanes]") {
  Pool pool{lanes(std::chrono::milliseconds::max(), 10), FlatPolicy{100}};  // 15 MiB of 150
  SlotReservation held = take(pool, 100 * MiB);
  Queued head;
  queue(pool, 150 * MiB, head);
  advance(std::chrono::hours{24 * 365});
  SlotReservation a = take(pool, 10 * MiB);  // a year later, still open
  CHECK(refusal(pool.try_acquire(6 * MiB)) == Reason::no_memory);
  SlotReservation b = take(pool, 5 * MiB);
  CHECK(refusal(pool.try_acquire(0)) == Reason::no_memory);  // the share is used up
  pool.close();
  CHECK(head.answer);
}

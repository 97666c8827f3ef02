// Tests for the waiting half of admit/pool.hpp: acquire / acquire_for, FIFO
// fairness and barging, the waiter limit, close and wait_idle, and live budget
// changes. Every wait in these tests is bounded; other threads are only used
// to be the waiter or the releaser, and "is it queued yet" is polled through
// stats().waiters, never guessed with a sleep.
#include <admit/pool.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "bitwise_copy.hpp"
#include "catch.hpp"
#include "support.hpp"
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

// 200 MiB, 8 slots, bytes = declared size, FIFO unless told otherwise.
PoolConfig config(std::uint32_t max_waiters = 0, admit::Fairness fairness = admit::Fairness::fifo) {
  return PoolConfig{
      .memory_budget = 200 * MiB, .slots = 8, .max_waiters = max_waiters, .fairness = fairness};
}

SlotReservation take(Pool& pool, std::uint64_t bytes) {
  return std::move(pool.try_acquire(bytes)).value();
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

TEST_CASE("acquire admits at once when the request fits", "[pool][wait]") {
  Pool pool{config(), FlatPolicy{100}};
  const Admission a = pool.acquire_for(50 * MiB, 10s);
  REQUIRE(a);
  CHECK(a->bytes() == 50 * MiB);
  CHECK(pool.stats().waiters == 0);
}

TEST_CASE("a blocked acquire is admitted when a release makes room", "[pool][wait]") {
  Pool pool{config(), FlatPolicy{100}};
  SlotReservation big = take(pool, 150 * MiB);
  auto waiter = queue_blocking(pool, 100 * MiB);
  big.release();
  const Admission a = waiter.get();
  REQUIRE(a);
  CHECK(a->bytes() == 100 * MiB);
  CHECK(pool.stats().waiters == 0);
  CHECK(pool.stats().bytes_in_use == 100 * MiB);
}

TEST_CASE("shrink and try_grow's refusal path wake waiters too", "[pool][wait]") {
  Pool pool{config(), FlatPolicy{100}};
  SlotReservation big = take(pool, 150 * MiB);
  auto waiter = queue_blocking(pool, 100 * MiB);
  CHECK(big.shrink(50 * MiB) == 50 * MiB);
  const Admission a = waiter.get();
  REQUIRE(a);
  CHECK(pool.stats().bytes_in_use == 200 * MiB);
}

TEST_CASE("a blocked acquire times out, takes nothing and leaves the queue", "[pool][wait]") {
  Pool pool{config(), FlatPolicy{100}};
  SlotReservation big = take(pool, 150 * MiB);
  const Admission a = pool.acquire_for(100 * MiB, 20ms);
  REQUIRE_FALSE(a);
  CHECK(a.error().reason == Reason::timeout);
  CHECK(a.error().needed_bytes == 100 * MiB);
  CHECK(a.error().available_bytes == 50 * MiB);
  const admit::Stats s = pool.stats();
  CHECK(s.waiters == 0);
  CHECK(s.bytes_in_use == 150 * MiB);
  CHECK(s.rejected.timeout == 1);
  // The queue is really empty: try_acquire is no longer held back by FIFO.
  CHECK(pool.try_acquire(50 * MiB));
}

TEST_CASE("an already-expired deadline fails at once and takes nothing", "[pool][wait]") {
  // Regression class: a waiter that reports timeout must not have taken capacity.
  Pool pool{config(), FlatPolicy{100}};
  const Admission past = pool.acquire(MiB, Pool::clock::now() - 1s);
  REQUIRE_FALSE(past);
  CHECK(past.error().reason == Reason::timeout);
  const Admission zero = pool.acquire_for(MiB, 0s);
  CHECK(zero.error().reason == Reason::timeout);
  const Admission negative = pool.acquire_for(MiB, -5ms);
  CHECK(negative.error().reason == Reason::timeout);
  const admit::Stats s = pool.stats();
  CHECK(s.bytes_in_use == 0);
  CHECK(s.slots_in_use == 0);
  CHECK(s.admitted == 0);
  CHECK(s.rejected.timeout == 3);
}

TEST_CASE("a request larger than the budget never waits", "[pool][wait]") {
  // Regression class: too_large must be answered at once, never queued.
  Pool pool{config(), FlatPolicy{100}};
  SlotReservation held = take(pool, 150 * MiB);
  const Admission a = pool.acquire_for(201 * MiB, std::chrono::hours{24});
  REQUIRE_FALSE(a);
  CHECK(a.error().reason == Reason::too_large);
  CHECK(pool.stats().waiters == 0);
  CHECK(pool.stats().rejected.too_large == 1);
}

TEST_CASE("FIFO: a large waiter is admitted while small requests keep arriving",
          "[pool][wait][fairness]") {
  Pool pool{config(), FlatPolicy{100}};
  std::atomic<bool> stop{false};
  std::atomic<int> small_admitted{0};
  std::atomic<int> small_refused{0};
  // A stream of small uploads, each holding its 10 MiB for a moment.
  std::thread stream{[&] {
    while (!stop.load()) {
      Admission a = pool.try_acquire(10 * MiB);
      if (a) {
        ++small_admitted;
        std::this_thread::sleep_for(200us);
      } else {
        ++small_refused;
        std::this_thread::yield();
      }
    }
  }};
  REQUIRE(eventually([&] { return small_admitted.load() > 10; }));
  // 150 MiB needs the small uploads to drain; FIFO stops new ones passing it.
  SlotReservation blocker = take(pool, 60 * MiB);
  auto big = std::async(std::launch::async, [&] { return pool.acquire_for(150 * MiB, 10s); });
  REQUIRE(eventually([&] { return pool.stats().waiters == 1; }));
  const int refused_before = small_refused.load();
  REQUIRE(eventually([&] { return small_refused.load() > refused_before + 10; }));
  blocker.release();
  const Admission a = big.get();
  stop = true;
  stream.join();
  REQUIRE(a);
  CHECK(a->bytes() == 150 * MiB);
}

TEST_CASE("FIFO: try_acquire and try_grow do not pass a waiting head", "[pool][wait][fairness]") {
  Pool pool{config(), FlatPolicy{100}};
  SlotReservation held = take(pool, 100 * MiB);
  auto waiter = queue_blocking(pool, 150 * MiB);
  // 100 MiB are free, but they are owed to the head first.
  const Admission small = pool.try_acquire(10 * MiB);
  REQUIRE_FALSE(small);
  CHECK(small.error().reason == Reason::no_memory);
  CHECK(small.error().available_bytes == 100 * MiB);
  const admit::GrowResult grow = held.try_grow(MiB);
  REQUIRE_FALSE(grow);
  CHECK(grow.error().reason == Reason::no_memory);
  // A second blocking waiter that would fit queues behind the head too.
  auto second = queue_blocking(pool, 10 * MiB);
  held.release();
  CHECK(waiter.get());
  CHECK(second.get());
}

TEST_CASE("barging: whoever fits goes, even past a waiting head", "[pool][wait][fairness]") {
  Pool pool{config(0, admit::Fairness::barging), FlatPolicy{100}};
  SlotReservation held = take(pool, 100 * MiB);
  auto waiter = queue_blocking(pool, 150 * MiB);
  Admission small = pool.try_acquire(10 * MiB);
  CHECK(small);
  CHECK(held.try_grow(MiB));
  // A smaller waiter behind the head is admitted as soon as it fits.
  auto second = queue_blocking(pool, 95 * MiB);  // 89 MiB free: it waits
  small->release();
  const Admission s = second.get();
  CHECK(s);
  CHECK(pool.stats().waiters == 1);
  held.release();  // 95 MiB in use: the 150 MiB head still does not fit
  CHECK(pool.stats().waiters == 1);
  pool.close();
  CHECK(waiter.get().error().reason == Reason::closed);
}

TEST_CASE("max_waiters: beyond the limit a request is refused at once with queue_full",
          "[pool][wait]") {
  Pool pool{config(/*max_waiters=*/1), FlatPolicy{100}};
  SlotReservation held = take(pool, 200 * MiB);
  auto first = queue_blocking(pool, 10 * MiB);
  const Admission second = pool.acquire_for(10 * MiB, 10s);
  REQUIRE_FALSE(second);
  CHECK(second.error().reason == Reason::queue_full);
  CHECK(pool.stats().rejected.queue_full == 1);
  held.release();
  CHECK(first.get());
}

TEST_CASE("close answers waiters with closed and refuses new requests", "[pool][wait][close]") {
  Pool pool{config(), FlatPolicy{100}};
  SlotReservation held = take(pool, 150 * MiB);
  auto waiter = queue_blocking(pool, 100 * MiB);
  pool.close();
  CHECK(pool.closed());
  const Admission w = waiter.get();
  REQUIRE_FALSE(w);
  CHECK(w.error().reason == Reason::closed);
  CHECK(pool.try_acquire(MiB).error().reason == Reason::closed);
  CHECK(pool.acquire_for(MiB, 10s).error().reason == Reason::closed);
  CHECK(pool.stats().rejected.closed == 3);
  // What is already held keeps working and comes back normally.
  CHECK(held.shrink(50 * MiB) == 50 * MiB);
  CHECK(held.try_grow(10 * MiB));
  CHECK(pool.stats().bytes_in_use == 110 * MiB);
  held.release();
  CHECK(pool.stats().bytes_in_use == 0);
  pool.close();  // idempotent
  CHECK(pool.wait_idle(Pool::clock::now()));
}

TEST_CASE("wait_idle blocks until every reservation is back", "[pool][wait][close]") {
  Pool pool{config(), FlatPolicy{100}};
  SlotReservation a = take(pool, 10 * MiB);
  SlotReservation b = take(pool, 20 * MiB);
  CHECK_FALSE(pool.wait_idle(Pool::clock::now() + 5ms));
  auto idle = std::async(std::launch::async, [&] { return pool.wait_idle(); });
  pool.close();
  a.release();
  CHECK(idle.wait_for(20ms) == std::future_status::timeout);  // b is still held
  b.release();
  CHECK(idle.get());
  CHECK(pool.stats().slots_in_use == 0);
}

TEST_CASE("set_memory_budget: growing admits waiters that now fit", "[pool][wait][budget]") {
  Pool pool{config(), FlatPolicy{100}};
  SlotReservation held = take(pool, 150 * MiB);
  auto waiter = queue_blocking(pool, 100 * MiB);
  pool.set_memory_budget(300 * MiB);
  const Admission w = waiter.get();
  CHECK(w);
  CHECK(pool.memory_budget() == 300 * MiB);
  CHECK(pool.stats().memory_budget == 300 * MiB);
  CHECK(pool.stats().bytes_in_use == 250 * MiB);
}

TEST_CASE("set_memory_budget: shrinking below use admits nobody until usage falls",
          "[pool][wait][budget]") {
  Pool pool{config(), FlatPolicy{100}};
  SlotReservation a = take(pool, 100 * MiB);
  SlotReservation b = take(pool, 50 * MiB);
  pool.set_memory_budget(120 * MiB);  // 150 MiB in use: over the new budget
  const Admission refused = pool.try_acquire(1);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().reason == Reason::no_memory);
  CHECK(refused.error().available_bytes == 0);
  auto waiter = queue_blocking(pool, 60 * MiB);
  b.release();  // 100 in use: 20 free, not enough
  CHECK(waiter.wait_for(20ms) == std::future_status::timeout);
  a.release();
  CHECK(waiter.get());
}

TEST_CASE("set_memory_budget: waiters that can never fit are answered too_large",
          "[pool][wait][budget]") {
  Pool pool{config(), FlatPolicy{100}};
  SlotReservation held = take(pool, 150 * MiB);
  auto big = queue_blocking(pool, 100 * MiB);
  auto small = queue_blocking(pool, 40 * MiB);
  pool.set_memory_budget(90 * MiB);
  const Admission b = big.get();
  REQUIRE_FALSE(b);
  CHECK(b.error().reason == Reason::too_large);
  CHECK(b.error().memory_budget == 90 * MiB);
  CHECK(pool.stats().waiters == 1);
  held.release();
  CHECK(small.get());
}

TEST_CASE("set_memory_budget: a waiter that can never fit is answered behind a FIFO head",
          "[pool][wait][budget][fairness]") {
  // Found by the pool_ops fuzzer: the head (60 MiB) still fits the new budget
  // but not now, and the too_large waiter behind it stayed queued until the
  // head was admitted, or until a dispatch under pressure answered it.
  Pool pool{config(), FlatPolicy{100}};
  SlotReservation held = take(pool, 150 * MiB);
  auto head = queue_blocking(pool, 60 * MiB);
  auto big = queue_blocking(pool, 120 * MiB);
  pool.set_memory_budget(100 * MiB);
  REQUIRE(big.wait_for(10s) == std::future_status::ready);
  const Admission b = big.get();
  REQUIRE_FALSE(b);
  CHECK(b.error().reason == Reason::too_large);
  CHECK(b.error().memory_budget == 100 * MiB);
  CHECK(pool.stats().waiters == 1);
  CHECK(pool.stats().waiting_bytes == 60 * MiB);
  held.release();
  CHECK(head.get());
}

TEST_CASE("set_memory_budget validates like the constructor", "[pool][budget][validation]") {
  Pool pool{config(), FlatPolicy{100}};
  CHECK(admit_test::contains(
      admit_test::invalid_argument_message([&] { pool.set_memory_budget(0); }),
      "admit::PoolConfig::memory_budget must be in 1..8796093022207 bytes, got 0"));
  CHECK(admit_test::contains(admit_test::invalid_argument_message([&] {
                               pool.set_memory_budget(PoolConfig::max_memory_budget + 1);
                             }),
                             "got 8796093022208"));
  CHECK(pool.memory_budget() == 200 * MiB);
}

TEST_CASE("a timed-out head lets the waiters behind it in", "[pool][wait]") {
  // Regression class: removing the queue head must dispatch to those behind.
  Pool pool{config(), FlatPolicy{100}};
  SlotReservation held = take(pool, 100 * MiB);
  // Long enough for the second waiter to queue behind it first.
  auto head = queue_blocking(pool, 150 * MiB, 1s);
  auto behind = queue_blocking(pool, 50 * MiB);
  CHECK(head.get().error().reason == Reason::timeout);
  const Admission b = behind.get();
  REQUIRE(b);
  CHECK(b->bytes() == 50 * MiB);
}

TEST_CASE("a reservation granted to a blocked acquire carries its claim",
          "[pool][wait][double_release]") {
  // The slot is reused (generation 1) before the blocked acquire gets it
  // through the queue; its release must be accepted, a copy's refused.
  Pool pool{PoolConfig{.memory_budget = 200 * MiB, .slots = 1}, FlatPolicy{100}};
  SlotReservation holder = take(pool, 10 * MiB);
  auto waiter = queue_blocking(pool, 50 * MiB);
  holder.release();
  Admission admission = waiter.get();
  REQUIRE(admission);
  admit_test::BitwiseCopy copy{*admission};
  admission->release();
  CHECK(pool.stats().slots_in_use == 0);
  CHECK(pool.stats().double_releases == 0);
  copy.destroy();
  CHECK(pool.stats().double_releases == 1);
  CHECK(pool.stats().bytes_in_use == 0);
  CHECK(pool.stats().slots_in_use == 0);
  CHECK(pool.try_acquire(200 * MiB));
}

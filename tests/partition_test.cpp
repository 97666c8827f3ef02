// Tests for admit/partition.hpp: partitions of one pool with a guarantee and
// a ceiling. Single-threaded and exact (async waiters, answered on the
// releasing thread); partition_stress_test.cpp runs them concurrently.
#include <admit/partition.hpp>
#include <admit/pool.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using admit::Admission;
using admit::FlatPolicy;
using admit::Limit;
using admit::MiB;
using admit::Partition;
using admit::PartitionConfig;
using admit::PoolConfig;
using admit::Reason;
using admit::SlotReservation;
using admit_test::invalid_argument_message;

namespace {

using Pool = admit::SlotPool<FlatPolicy>;

// 100 MiB and 10 slots; bytes = declared size.
Pool make_pool(admit::Fairness fairness = admit::Fairness::fifo) {
  return Pool{PoolConfig{.memory_budget = 100 * MiB, .slots = 10, .fairness = fairness},
              FlatPolicy{100}};
}

SlotReservation take(Pool& pool, std::uint64_t bytes, std::optional<Partition> p = {}) {
  Admission a = p ? pool.try_acquire(bytes, *p) : pool.try_acquire(bytes);
  REQUIRE(a);
  return std::move(a).value();
}

struct Queued {
  std::optional<Admission> answer;
  admit::Ticket ticket;
};

void queue(Pool& pool, std::uint64_t bytes, Partition p, Queued& q) {
  q.ticket = pool.async_acquire(bytes, p, [&q](Admission&& a) { q.answer.emplace(std::move(a)); });
}

}  // namespace

TEST_CASE("add_partition refuses invalid names and configs, naming what is wrong",
          "[partition][validation]") {
  Pool pool = make_pool();
  const auto add = [&](std::string name, PartitionConfig config) {
    return invalid_argument_message([&] { pool.add_partition(name, config); });
  };
  CHECK(add("", {}) == "admit: a partition name must be 1..64 characters, got ''");
  CHECK(add(std::string(65, 'a'), {}).starts_with("admit: a partition name must be 1..64"));
  CHECK(add("bad name", {}) ==
        "admit: a partition name may hold only A-Z a-z 0-9 _ . -, got 'bad name'");
  CHECK(add("x\"y", {}).starts_with("admit: a partition name may hold only"));
  CHECK(add("batch", {.ceiling_percent = 0}) ==
        "admit::PartitionConfig::ceiling_percent must be in 1..100, got 0 (partition 'batch')");
  CHECK(add("batch", {.ceiling_percent = 101}).starts_with(
      "admit::PartitionConfig::ceiling_percent must be in 1..100, got 101"));
  CHECK(add("batch", {.guarantee_percent = 40, .ceiling_percent = 30}) ==
        "admit::PartitionConfig::guarantee_percent must be in 0..ceiling_percent (30), got 40 "
        "(partition 'batch')");
  CHECK(admit::validation_error("batch", {.guarantee_percent = 40, .ceiling_percent = 30}) ==
        add("batch", {.guarantee_percent = 40, .ceiling_percent = 30}));
  CHECK_FALSE(admit::validation_error("api-key_1.v2", {.guarantee_percent = 30}).has_value());

  pool.add_partition("batch", {.guarantee_percent = 60});
  CHECK(add("batch", {}) == "admit: a partition named 'batch' exists already");
  CHECK(add("interactive", {.guarantee_percent = 41}) ==
        "admit: the partitions' guarantee_percent would add up to 101, more than 100 (adding "
        "'interactive')");
  pool.add_partition("interactive", {.guarantee_percent = 40});
  // Nothing refused was added.
  CHECK(pool.partition_stats().size() == 2);
}

TEST_CASE("a pool holds at most max_partitions partitions", "[partition][validation]") {
  Pool pool = make_pool();
  for (std::uint32_t i = 0; i < admit::max_partitions; ++i) {
    const Partition p = pool.add_partition("p" + std::to_string(i), {});
    CHECK(p.index() == i);
  }
  CHECK(invalid_argument_message([&] { pool.add_partition("one-more", {}); }) ==
        "admit: a pool has at most 64 partitions; cannot add 'one-more'");
}

TEST_CASE("unknown partition names are a clear error; known ones are found",
          "[partition]") {
  Pool pool = make_pool();
  CHECK_FALSE(pool.find_partition("batch").has_value());
  CHECK(invalid_argument_message([&] { static_cast<void>(pool.partition("batch")); }) ==
        "admit: no partition named 'batch'");
  const Partition batch = pool.add_partition("batch", {});
  const Partition live = pool.add_partition("live", {});
  CHECK(pool.partition("batch") == batch);
  CHECK(pool.find_partition("live") == live);
  CHECK_FALSE(batch == live);
  CHECK_FALSE(pool.find_partition("Batch").has_value());  // names are exact
}

TEST_CASE("a partition's ceiling bounds its bytes and slots, with the partition's figures",
          "[partition]") {
  Pool pool = make_pool();
  const Partition batch = pool.add_partition("batch", {.ceiling_percent = 30});  // 30 MiB, 3 slots
  SlotReservation a = take(pool, 20 * MiB, batch);
  const Admission over = pool.try_acquire(11 * MiB, batch);
  REQUIRE_FALSE(over);
  CHECK(over.error() == admit::Rejection{Reason::no_memory, 11 * MiB, 11 * MiB, 10 * MiB,
                                         30 * MiB, 1, 3, Limit::partition});
  CHECK_FALSE(admit::is_permanent(over.error().reason));
  SlotReservation b = take(pool, 5 * MiB, batch);
  SlotReservation c = take(pool, 5 * MiB, batch);
  const Admission no_slot = pool.try_acquire(0, batch);
  REQUIRE_FALSE(no_slot);
  CHECK(no_slot.error().reason == Reason::no_slot);
  CHECK(no_slot.error().limit == Limit::partition);
  CHECK(no_slot.error().slots_in_use == 3);
  // The rest of the pool is still there for others.
  SlotReservation other = take(pool, 70 * MiB);
  CHECK(pool.stats().bytes_in_use == 100 * MiB);
  const admit::PartitionStats s = pool.stats(batch);
  CHECK(s.name == "batch");
  CHECK(s.bytes_in_use == 30 * MiB);
  CHECK(s.slots_in_use == 3);
  CHECK(s.ceiling_bytes == 30 * MiB);
  CHECK(s.ceiling_slots == 3);
  CHECK(s.admitted == 3);
  CHECK(s.rejected.no_memory == 1);
  CHECK(s.rejected.no_slot == 1);
  CHECK(pool.stats().rejected.total() == 2);  // counted for the pool too
}

TEST_CASE("a request larger than its partition's ceiling is too_large, at once",
          "[partition]") {
  Pool pool = make_pool();
  const Partition batch = pool.add_partition("batch", {.ceiling_percent = 30});
  const Admission now = pool.try_acquire(31 * MiB, batch);
  REQUIRE_FALSE(now);
  CHECK(now.error().reason == Reason::too_large);
  CHECK(now.error().limit == Limit::partition);
  CHECK(admit::is_permanent(now.error().reason));
  const Admission waited = pool.acquire_for(31 * MiB, std::chrono::seconds{10}, batch);
  REQUIRE_FALSE(waited);
  CHECK(waited.error().reason == Reason::too_large);
  CHECK(pool.stats().waiters == 0);
  CHECK(pool.stats(batch).rejected.too_large == 2);

  // Permanent whatever the deadline: an expired one does not turn it into a
  // timeout, which a client would retry. One that fits still times out.
  const auto past = Pool::clock::now() - std::chrono::seconds{1};
  const Admission expired = pool.acquire(31 * MiB, past, batch);
  REQUIRE_FALSE(expired);
  CHECK(expired.error().reason == Reason::too_large);
  CHECK(expired.error().limit == Limit::partition);
  CHECK(expired.error().memory_budget == 30 * MiB);
  std::optional<Admission> answer;
  static_cast<void>(pool.async_acquire(31 * MiB, past, batch,
                                       [&](Admission a) { answer.emplace(std::move(a)); }));
  REQUIRE(answer.has_value());
  REQUIRE_FALSE(*answer);
  CHECK(answer->error().reason == Reason::too_large);
  CHECK(answer->error().limit == Limit::partition);
  const Admission fits = pool.acquire(MiB, past, batch);
  REQUIRE_FALSE(fits);
  CHECK(fits.error().reason == Reason::timeout);
  CHECK(pool.stats(batch).rejected.too_large == 4);
  CHECK(pool.stats(batch).rejected.timeout == 1);
  CHECK(pool.stats().bytes_in_use == 0);
}

TEST_CASE("the pool's own limits still hold for a partition, and say so", "[partition]") {
  Pool pool = make_pool();
  const Partition batch = pool.add_partition("batch", {});
  SlotReservation big = take(pool, 95 * MiB);  // no partition: limited by the pool only
  const Admission a = pool.try_acquire(10 * MiB, batch);
  REQUIRE_FALSE(a);
  CHECK(a.error() == admit::Rejection{Reason::no_memory, 10 * MiB, 10 * MiB, 5 * MiB, 100 * MiB,
                                      1, 10, Limit::pool});
  big.release();
  SlotReservation r = take(pool, 10 * MiB, batch);
  CHECK(pool.stats().bytes_in_use == 10 * MiB);
}

TEST_CASE("giving back returns bytes and slots to the partition and the pool",
          "[partition]") {
  Pool pool = make_pool();
  const Partition batch = pool.add_partition("batch", {.ceiling_percent = 50});
  {
    SlotReservation a = take(pool, 20 * MiB, batch);
    SlotReservation b = take(pool, 30 * MiB, batch);
    CHECK(a.slot() != b.slot());
    CHECK(b.shrink(10 * MiB) == 10 * MiB);
    CHECK(pool.stats(batch).bytes_in_use == 40 * MiB);
    REQUIRE(b.try_grow(10 * MiB));
    const admit::GrowResult over = a.try_grow(MiB);  // 50 MiB held: at the ceiling
    REQUIRE_FALSE(over);
    CHECK(over.error().reason == Reason::no_memory);
    CHECK(over.error().limit == Limit::partition);
    const admit::GrowResult never = a.try_grow(31 * MiB);  // 51 MiB in one reservation
    REQUIRE_FALSE(never);
    CHECK(never.error().reason == Reason::too_large);
    SlotReservation moved = std::move(a);
    CHECK(pool.stats(batch).slots_in_use == 2);
  }
  const admit::PartitionStats s = pool.stats(batch);
  CHECK(s.bytes_in_use == 0);
  CHECK(s.slots_in_use == 0);
  CHECK(pool.stats().bytes_in_use == 0);
  CHECK(pool.stats().slots_in_use == 0);
  CHECK(pool.stats().double_releases == 0);
}

TEST_CASE("a partition borrows up to its ceiling while the others are idle", "[partition]") {
  Pool pool = make_pool();
  const Partition batch = pool.add_partition("batch", {.guarantee_percent = 10});
  pool.add_partition("interactive", {.guarantee_percent = 90});
  std::vector<SlotReservation> held;
  for (int i = 0; i < 10; ++i) held.push_back(take(pool, 10 * MiB, batch));
  CHECK(pool.stats(batch).bytes_in_use == 100 * MiB);
}

TEST_CASE("when room frees, a waiter its guarantee covers goes before one it does not",
          "[partition][fairness]") {
  Pool pool = make_pool();
  const Partition batch = pool.add_partition("batch", {.guarantee_percent = 10});
  const Partition live = pool.add_partition("live", {.guarantee_percent = 50});
  std::vector<SlotReservation> held;
  for (int i = 0; i < 9; ++i) held.push_back(take(pool, 10 * MiB, batch));  // 90 MiB, over 10 %
  SlotReservation last = take(pool, 10 * MiB);
  Queued batch_first;
  Queued live_second;
  queue(pool, 20 * MiB, batch, batch_first);  // queued first, but batch is over its guarantee
  queue(pool, 20 * MiB, live, live_second);   // live holds nothing: covered
  CHECK(pool.stats().waiters == 2);
  held.pop_back();
  held.pop_back();  // 20 MiB free: enough for one of them
  CHECK_FALSE(batch_first.answer);
  REQUIRE(live_second.answer);
  CHECK(*live_second.answer);
  CHECK(pool.stats(live).bytes_in_use == 20 * MiB);
  held.pop_back();
  last.release();
  REQUIRE(batch_first.answer);
  CHECK(*batch_first.answer);
}

TEST_CASE("a waiter held back by its own partition's ceiling holds up nobody",
          "[partition][fairness]") {
  Pool pool = make_pool();  // FIFO
  const Partition batch = pool.add_partition("batch", {.ceiling_percent = 30});
  const Partition live = pool.add_partition("live", {});
  SlotReservation b = take(pool, 30 * MiB, batch);
  Queued waiting;
  queue(pool, 10 * MiB, batch, waiting);  // 70 MiB free, but batch is at its ceiling
  CHECK_FALSE(waiting.answer);
  CHECK(pool.stats(batch).waiters == 1);
  // FIFO, and someone waits; still others go: only batch's own limit holds it.
  SlotReservation l = take(pool, 50 * MiB, live);
  SlotReservation plain = take(pool, 10 * MiB);
  b.shrink(10 * MiB);  // batch under its ceiling again: the waiter fits the rest
  REQUIRE(waiting.answer);
  CHECK(*waiting.answer);
  CHECK(pool.stats(batch).bytes_in_use == 30 * MiB);
  CHECK(pool.stats(batch).waiters == 0);
}

TEST_CASE("FIFO with partitions: a newcomer its guarantee covers passes uncovered waiters only",
          "[partition][fairness]") {
  Pool pool = make_pool();
  const Partition batch = pool.add_partition("batch", {.guarantee_percent = 10});
  const Partition live = pool.add_partition("live", {.guarantee_percent = 30});
  SlotReservation plain = take(pool, 80 * MiB);
  SlotReservation b = take(pool, 10 * MiB, batch);  // batch is at its guarantee
  Queued head;
  queue(pool, 50 * MiB, batch, head);  // uncovered; only the pool holds it back: in line
  // Uncovered newcomers wait their turn (10 MiB are free).
  CHECK(pool.try_acquire(5 * MiB, batch).error().reason == Reason::no_memory);
  CHECK(pool.try_acquire(5 * MiB).error().reason == Reason::no_memory);
  // A covered one goes first.
  SlotReservation l = take(pool, 5 * MiB, live);
  // A covered waiter is owed first: then even covered newcomers wait.
  Queued covered;
  queue(pool, 20 * MiB, live, covered);  // 5 MiB free: waits
  CHECK_FALSE(covered.answer);
  CHECK(pool.try_acquire(MiB, live).error().reason == Reason::no_memory);
  plain.release();
  REQUIRE(covered.answer);  // first the covered waiter...
  CHECK(*covered.answer);
  REQUIRE(head.answer);  // ...then the head, which fits the rest
  CHECK(*head.answer);
}

TEST_CASE("partition figures follow the budget; a shrink refuses waiters over the new ceiling",
          "[partition][budget]") {
  Pool pool = make_pool();
  const Partition batch = pool.add_partition("batch", {.guarantee_percent = 20, .ceiling_percent = 50});
  CHECK(pool.stats(batch).ceiling_bytes == 50 * MiB);
  CHECK(pool.stats(batch).guarantee_bytes == 20 * MiB);
  CHECK(pool.stats(batch).guarantee_slots == 2);
  SlotReservation b = take(pool, 50 * MiB, batch);
  Queued waiting;
  queue(pool, 40 * MiB, batch, waiting);
  pool.set_memory_budget(60 * MiB);  // ceiling 30 MiB: 40 MiB can never fit now
  REQUIRE(waiting.answer);
  CHECK(waiting.answer->error() == admit::Rejection{Reason::too_large, 40 * MiB, 40 * MiB, 0,
                                                    30 * MiB, 1, 5, Limit::partition});
  CHECK(pool.stats(batch).ceiling_bytes == 30 * MiB);
  CHECK(pool.stats(batch).rejected.too_large == 1);
}

TEST_CASE("partitions can be added while reservations are held and requests wait",
          "[partition]") {
  Pool pool = make_pool();
  SlotReservation held = take(pool, 90 * MiB);
  Queued plain;
  plain.ticket = pool.async_acquire(20 * MiB, [&plain](Admission&& a) {
    plain.answer.emplace(std::move(a));
  });
  const Partition late = pool.add_partition("late", {.ceiling_percent = 20});
  CHECK(pool.try_acquire(5 * MiB, late).error().reason == Reason::no_memory);  // FIFO
  held.release();  // held before partitions existed: given back to the pool only
  REQUIRE(plain.answer);
  CHECK(*plain.answer);
  SlotReservation l = take(pool, 20 * MiB, late);
  CHECK(pool.stats(late).bytes_in_use == 20 * MiB);
  CHECK(pool.stats().bytes_in_use == 40 * MiB);
}

TEST_CASE("pressure and close answer partitioned requests like any other", "[partition]") {
  Pool pool = make_pool();
  const Partition batch = pool.add_partition("batch", {});
  pool.set_pressure(true);
  CHECK(pool.try_acquire(MiB, batch).error().reason == Reason::pressure);
  Queued waiting;
  queue(pool, MiB, batch, waiting);  // waits out the pressure
  CHECK_FALSE(waiting.answer);
  pool.set_pressure(false);
  REQUIRE(waiting.answer);
  CHECK(*waiting.answer);
  waiting.answer.reset();
  pool.close();
  CHECK(pool.try_acquire(MiB, batch).error().reason == Reason::closed);
  CHECK(pool.stats(batch).rejected.closed == 1);
  CHECK(pool.stats(batch).rejected.pressure == 1);
}

TEST_CASE("lanes with partitions: a head held by its ceiling opens no window",
          "[partition][lanes]") {
  Pool pool = make_pool(admit::Fairness::lanes);
  const Partition batch = pool.add_partition("batch", {.ceiling_percent = 20});
  SlotReservation b = take(pool, 20 * MiB, batch);
  SlotReservation big = take(pool, 75 * MiB);
  Queued held_back;
  queue(pool, 10 * MiB, batch, held_back);  // held by batch's ceiling: not the head
  Queued head;
  head.ticket = pool.async_acquire(50 * MiB, [&head](Admission&& a) {
    head.answer.emplace(std::move(a));
  });
  SlotReservation passer = take(pool, 5 * MiB);  // passes the 50 MiB head through its window
  CHECK_FALSE(held_back.answer);
  CHECK_FALSE(head.answer);
  big.release();
  REQUIRE(head.answer);
  CHECK(*head.answer);
  b.release();
  REQUIRE(held_back.answer);
  CHECK(*held_back.answer);
}

// Tests for admit/reservation_record.hpp and the records behind
// SlotPool::reservations() (PoolConfig::track_reservations): every live
// reservation has one record with its slot, sizes, admission time and label,
// however it was admitted; the record follows grows, shrinks and moves, and
// goes when the reservation does; with tracking off there are none.
#include <admit/pool.hpp>
#include <admit/reservation_record.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bitwise_copy.hpp"
#include "catch.hpp"
#include "wait_support.hpp"

using admit::FlatPolicy;
using admit::MiB;
using admit::PoolConfig;
using admit::ReservationRecord;
using admit::SlotPool;
using admit::SlotReservation;
using admit_test::BitwiseCopy;
using namespace std::chrono_literals;

namespace {

using Pool = SlotPool<FlatPolicy>;
using steady = std::chrono::steady_clock;

PoolConfig tracked(std::uint32_t slots = 4) {
  return PoolConfig{.memory_budget = 100 * MiB, .slots = slots, .track_reservations = true};
}

SlotReservation take(Pool& pool, std::uint64_t bytes) {
  return std::move(pool.try_acquire(bytes)).value();
}

/// The record of `slot` in `pool`'s snapshot, if there is one.
std::optional<ReservationRecord> record_of(const Pool& pool, std::uint32_t slot) {
  for (ReservationRecord& r : pool.reservations()) {
    if (r.slot == slot) return std::move(r);
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("with tracking off there are no records, and labels are ignored", "[records]") {
  Pool pool{PoolConfig{.memory_budget = 100 * MiB, .slots = 4}, FlatPolicy{100}};
  SlotReservation r = take(pool, 10 * MiB);
  r.set_label("ignored");
  CHECK(pool.reservations().empty());
  CHECK(pool.stats().double_releases == 0);
}

TEST_CASE("each live reservation has a record of what it holds and since when", "[records]") {
  Pool pool{tracked(), FlatPolicy{50}};
  const steady::time_point before = steady::now();
  SlotReservation a = take(pool, 20 * MiB);
  SlotReservation b = take(pool, 40 * MiB);
  const steady::time_point after = steady::now();
  const std::vector<ReservationRecord> records = pool.reservations();
  REQUIRE(records.size() == 2);
  CHECK(records[0].slot == a.slot());
  CHECK(records[0].declared_size == 20 * MiB);
  CHECK(records[0].bytes == 10 * MiB);  // the policy's figure, not the declared size
  CHECK(records[1].slot == b.slot());
  CHECK(records[1].declared_size == 40 * MiB);
  CHECK(records[1].bytes == 20 * MiB);
  for (const ReservationRecord& r : records) {
    CHECK(r.admitted_at >= before);
    CHECK(r.admitted_at <= after);
    CHECK(r.label.empty());
  }
  a.release();
  REQUIRE(pool.reservations().size() == 1);
  CHECK(pool.reservations()[0].slot == b.slot());
  b = SlotReservation{};
  CHECK(pool.reservations().empty());
}

TEST_CASE("a record follows grows and shrinks", "[records]") {
  Pool pool{tracked(), FlatPolicy{100}};
  SlotReservation r = take(pool, 10 * MiB);
  REQUIRE(r.try_grow(5 * MiB));
  CHECK(record_of(pool, r.slot())->bytes == 15 * MiB);
  CHECK(r.shrink(12 * MiB) == 12 * MiB);
  CHECK(record_of(pool, r.slot())->bytes == 3 * MiB);
  CHECK_FALSE(r.try_grow(200 * MiB));  // refused: the record is unchanged
  CHECK(record_of(pool, r.slot())->bytes == 3 * MiB);
  CHECK(record_of(pool, r.slot())->declared_size == 10 * MiB);
}

TEST_CASE("labels are kept up to 32 bytes, cut at a character boundary", "[records]") {
  Pool pool{tracked(), FlatPolicy{100}};
  SlotReservation r = take(pool, 1 * MiB);
  r.set_label("ws#17 big.zip");
  CHECK(record_of(pool, r.slot())->label == "ws#17 big.zip");
  const std::string exact(32, 'x');
  r.set_label(exact);
  CHECK(record_of(pool, r.slot())->label == exact);
  r.set_label(exact + "yz");
  CHECK(record_of(pool, r.slot())->label == exact);
  // "é" is two bytes; at bytes 31-32 it would be cut in half: it goes whole.
  const std::string accented = std::string(31, 'a') + "\xC3\xA9";
  r.set_label(accented);
  CHECK(record_of(pool, r.slot())->label == std::string(31, 'a'));
  r.set_label("");
  CHECK(record_of(pool, r.slot())->label.empty());
  r.set_label("x");
  r.set_label(std::string_view{});  // a null data(): no label, nothing read
  CHECK(record_of(pool, r.slot())->label.empty());
  // A new holder of the slot starts without its predecessor's label.
  r.set_label("old");
  const std::uint32_t slot = r.slot();
  r.release();
  SlotReservation next = take(pool, 1 * MiB);
  REQUIRE(next.slot() == slot);
  CHECK(record_of(pool, slot)->label.empty());
}

TEST_CASE("a moved reservation keeps its record and label", "[records]") {
  Pool pool{tracked(), FlatPolicy{100}};
  SlotReservation r = take(pool, 7 * MiB);
  r.set_label("http#3 a.bin");
  const std::optional<ReservationRecord> original = record_of(pool, r.slot());
  SlotReservation moved{std::move(r)};
  CHECK(pool.reservations().size() == 1);
  CHECK(record_of(pool, moved.slot()) == original);
  SlotReservation assigned;
  assigned = std::move(moved);
  CHECK(record_of(pool, assigned.slot()) == original);
  assigned.set_label("renamed");
  CHECK(record_of(pool, assigned.slot())->label == "renamed");
}

TEST_CASE("reservations admitted after waiting have records too", "[records]") {
  Pool pool{tracked(1), FlatPolicy{100}};
  SlotReservation first = take(pool, 1 * MiB);

  std::optional<SlotReservation> async;
  admit::Ticket ticket = pool.async_acquire(
      3 * MiB, [&](admit::Admission&& a) { async.emplace(std::move(a).value()); });
  first.release();  // the async waiter is granted on this thread
  REQUIRE(async.has_value());
  REQUIRE(pool.reservations().size() == 1);
  CHECK(pool.reservations()[0].declared_size == 3 * MiB);
  async.reset();

  admit::Admission blocking = pool.acquire_for(5 * MiB, 1s);
  REQUIRE(blocking);
  REQUIRE(pool.reservations().size() == 1);
  CHECK(pool.reservations()[0].declared_size == 5 * MiB);
}

TEST_CASE("a stale copy neither labels nor clears the holder's record", "[records]") {
  Pool pool{tracked(), FlatPolicy{100}};
  SlotReservation r = take(pool, 4 * MiB);
  BitwiseCopy stale{r};
  r.release();
  SlotReservation holder = take(pool, 6 * MiB);  // the same slot, a new generation
  REQUIRE(holder.slot() == stale->slot());
  holder.set_label("holder");
  stale->set_label("stale");  // refused, counted, and the copy is empty now
  CHECK(pool.stats().double_releases == 1);
  CHECK_FALSE(static_cast<bool>(stale.get()));
  CHECK(record_of(pool, holder.slot())->label == "holder");
  CHECK(record_of(pool, holder.slot())->declared_size == 6 * MiB);
}

TEST_CASE("head_waiter_needs names what the first waiter needs", "[records]") {
  Pool pool{tracked(1), FlatPolicy{100}};
  CHECK_FALSE(pool.head_waiter_needs().has_value());
  SlotReservation held = take(pool, 1 * MiB);
  admit::Ticket t1 = pool.async_acquire(9 * MiB, [](admit::Admission&&) {});
  admit::Ticket t2 = pool.async_acquire(2 * MiB, [](admit::Admission&&) {});
  CHECK(pool.head_waiter_needs() == 9 * MiB);
  t1.cancel();
  CHECK(pool.head_waiter_needs() == 2 * MiB);
  t2.cancel();
  CHECK_FALSE(pool.head_waiter_needs().has_value());
}

// Tests for admit/fmt.hpp: the exact text of every formatter, the ByteSize
// unit boundaries and rounding, and refusals taken from a real SlotPool.
#include <admit/admit.hpp>
#include <admit/fmt.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "catch.hpp"

namespace {

using admit::ByteSize;
using admit::GiB;
using admit::KiB;
using admit::MiB;
using admit::Reason;
using admit::Rejection;
using admit::TiB;

std::string bytes(std::uint64_t n) { return fmt::format("{}", ByteSize{n}); }

// A bool for CHECK: the tests use only the macros Catch2 v2 and v3 share unchanged.
template <class T>
bool spec_throws_format_error(const char* format_string, const T& value) {
  try {
    (void)fmt::format(fmt::runtime(format_string), value);
  } catch (const fmt::format_error&) {
    return true;
  }
  return false;
}

constexpr std::uint64_t large_upload = 2'530'644'380;

// An upload service with about 200 MiB free for uploads.
constexpr admit::PoolConfig server_config{.memory_budget = 200 * MiB, .slots = 8};

}  // namespace

// The formatting is constexpr, so the headline figures can be pinned at compile time.
static_assert(admit::detail::format_byte_size(large_upload).view() == "2.36 GiB");
static_assert(admit::detail::format_byte_size(std::numeric_limits<std::uint64_t>::max()).view() ==
              "16 EiB");

TEST_CASE("ByteSize prints the design's examples", "[fmt][bytesize]") {
  CHECK(bytes(0) == "0 B");
  CHECK(bytes(512) == "512 B");
  CHECK(bytes(100 * MiB) == "100 MiB");
  CHECK(bytes(large_upload) == "2.36 GiB");
  CHECK(bytes(253'064'438) == "241 MiB");
  CHECK(bytes(GiB + GiB / 2) == "1.5 GiB");
  CHECK(bytes(37 * MiB) == "37 MiB");
  CHECK(bytes(104'857'600) == "100 MiB");
  CHECK(bytes(52'428'800) == "50 MiB");
  CHECK(bytes(2'097'152) == "2 MiB");
}

TEST_CASE("ByteSize at the unit boundaries", "[fmt][bytesize]") {
  SECTION("bytes below 1 KiB are exact") {
    CHECK(bytes(1) == "1 B");
    CHECK(bytes(999) == "999 B");
    CHECK(bytes(1023) == "1023 B");
  }
  SECTION("exact multiples of each unit") {
    CHECK(bytes(KiB) == "1 KiB");
    CHECK(bytes(MiB) == "1 MiB");
    CHECK(bytes(GiB) == "1 GiB");
    CHECK(bytes(TiB) == "1 TiB");
    CHECK(bytes(1024 * TiB) == "1 PiB");
    CHECK(bytes(1024 * 1024 * TiB) == "1 EiB");
    CHECK(bytes(2 * KiB) == "2 KiB");
    CHECK(bytes(10 * MiB) == "10 MiB");
    CHECK(bytes(200 * MiB) == "200 MiB");
    CHECK(bytes(1000 * MiB) == "1000 MiB");
    CHECK(bytes(1023 * GiB) == "1023 GiB");
  }
  SECTION("the largest unit that is <= the value") {
    CHECK(bytes(KiB + 1) == "1 KiB");
    CHECK(bytes(MiB - KiB) == "1023 KiB");
    CHECK(bytes(GiB - MiB) == "1023 MiB");
  }
  SECTION("rounding that reaches 1024 prints 1 of the next unit") {
    CHECK(bytes(MiB - 1) == "1 MiB");
    CHECK(bytes(GiB - 1) == "1 GiB");
    CHECK(bytes(TiB - 1) == "1 TiB");
    // 1023.5 KiB rounds up, 1023.499 KiB does not.
    CHECK(bytes(1023 * KiB + 512) == "1 MiB");
    CHECK(bytes(1023 * KiB + 511) == "1023 KiB");
  }
  SECTION("UINT64_MAX is 16 EiB - 1 byte") {
    CHECK(bytes(std::numeric_limits<std::uint64_t>::max()) == "16 EiB");
  }
}

TEST_CASE("ByteSize keeps three significant digits and trims trailing zeros", "[fmt][bytesize]") {
  SECTION("below 10 units: two decimals") {
    CHECK(bytes(KiB + KiB / 4) == "1.25 KiB");
    CHECK(bytes(MiB + MiB / 20) == "1.05 MiB");  // a leading zero in the fraction
    CHECK(bytes(GiB + GiB / 10) == "1.1 GiB");   // 1.10 trimmed
    CHECK(bytes(9 * KiB + 1013) == "9.99 KiB");  // 9.989
  }
  SECTION("10 to 100 units: one decimal") {
    CHECK(bytes(52 * MiB + 4 * MiB / 10) == "52.4 MiB");
    CHECK(bytes(20'761'804) == "19.8 MiB");  // 99 MiB under the default tiers
    CHECK(bytes(15 * GiB + GiB / 2) == "15.5 GiB");
  }
  SECTION("100 units and more: whole numbers") {
    CHECK(bytes(100 * MiB + MiB / 2) == "101 MiB");  // halves round up
    CHECK(bytes(100 * MiB + MiB / 2 - 1) == "100 MiB");
    CHECK(bytes(999 * KiB + 600) == "1000 KiB");
  }
  SECTION("rounding that carries into another digit is trimmed") {
    CHECK(bytes(10 * KiB - 1) == "10 KiB");    // 9.999 -> 10.00
    CHECK(bytes(100 * KiB - 1) == "100 KiB");  // 99.999 -> 100.0
  }
}

TEST_CASE("ByteSize is constexpr-constructible and comparable", "[fmt][bytesize]") {
  constexpr ByteSize size{100 * MiB};
  static_assert(size.bytes == 104'857'600);
  static_assert(size == ByteSize{100 * MiB});
  CHECK(fmt::format("{} / {}", size, ByteSize{}) == "100 MiB / 0 B");
}

TEST_CASE("Reason prints its name and takes string specs", "[fmt][reason]") {
  CHECK(fmt::format("{}", Reason::too_large) == "too_large");
  CHECK(fmt::format("{}", Reason::no_slot) == "no_slot");
  CHECK(fmt::format("{}", Reason::no_memory) == "no_memory");
  CHECK(fmt::format("{}", Reason::queue_full) == "queue_full");
  CHECK(fmt::format("{}", Reason::timeout) == "timeout");
  CHECK(fmt::format("{}", Reason::cancelled) == "cancelled");
  CHECK(fmt::format("{}", Reason::closed) == "closed");
  CHECK(fmt::format("{}", Reason::pressure) == "pressure");
  CHECK(fmt::format("[{:>10}]", Reason::timeout) == "[   timeout]");
  CHECK(fmt::format("[{:<10}]", Reason::closed) == "[closed    ]");
  CHECK(fmt::format("[{:*^11}]", Reason::no_slot) == "[**no_slot**]");
}

TEST_CASE("Rejection prints one sentence per reason", "[fmt][rejection]") {
  const auto sentence = [](Reason reason, std::uint64_t declared, std::uint64_t needed,
                           std::uint64_t available, std::uint32_t in_use, std::uint32_t slots) {
    return fmt::format("{}",
                       Rejection{reason, declared, needed, available, 200 * MiB, in_use, slots});
  };
  CHECK(sentence(Reason::too_large, large_upload, 253'064'438, 200 * MiB, 0, 8) ==
        "upload of 2.36 GiB needs 241 MiB, more than the whole budget of 200 MiB");
  CHECK(sentence(Reason::no_memory, 500 * MiB, 50 * MiB, 37 * MiB, 3, 8) ==
        "upload of 500 MiB needs 50 MiB, 37 MiB free of 200 MiB, retry later");
  CHECK(sentence(Reason::no_slot, 500 * MiB, 50 * MiB, 150 * MiB, 8, 8) ==
        "upload of 500 MiB needs a slot, all 8 slots in use, retry later");
  CHECK(sentence(Reason::no_slot, 500 * MiB, 50 * MiB, 150 * MiB, 1, 1) ==
        "upload of 500 MiB needs a slot, the only slot is in use, retry later");
  CHECK(sentence(Reason::queue_full, 500 * MiB, 50 * MiB, 0, 8, 8) ==
        "upload of 500 MiB needs 50 MiB: too many uploads already waiting, retry later");
  CHECK(sentence(Reason::timeout, 500 * MiB, 50 * MiB, 10 * MiB, 8, 8) ==
        "upload of 500 MiB needs 50 MiB: waited until the deadline, retry later");
  // A wait that ran out while its bytes were free waited for a slot; an
  // upload too small to reserve anything needs only a slot, never "0 B".
  CHECK(sentence(Reason::timeout, 500 * MiB, 50 * MiB, 150 * MiB, 8, 8) ==
        "upload of 500 MiB needs a slot: waited until the deadline, retry later");
  CHECK(sentence(Reason::timeout, 500 * MiB, 50 * MiB, 50 * MiB, 8, 8) ==
        "upload of 500 MiB needs a slot: waited until the deadline, retry later");
  CHECK(sentence(Reason::queue_full, 4, 0, 0, 8, 8) ==
        "upload of 4 B needs a slot: too many uploads already waiting, retry later");
  CHECK(sentence(Reason::closed, 4, 0, 200 * MiB, 0, 8) ==
        "upload of 4 B needs a slot: the server is shutting down");
  CHECK(sentence(Reason::cancelled, 500 * MiB, 50 * MiB, 10 * MiB, 8, 8) ==
        "upload of 500 MiB needs 50 MiB: the request was cancelled");
  CHECK(sentence(Reason::closed, 500 * MiB, 50 * MiB, 10 * MiB, 8, 8) ==
        "upload of 500 MiB needs 50 MiB: the server is shutting down");
  CHECK(sentence(Reason::pressure, 500 * MiB, 50 * MiB, 10 * MiB, 2, 8) ==
        "upload of 500 MiB needs 50 MiB: the server is short of memory, retry later");
  CHECK(sentence(Reason::pressure, 4, 0, 200 * MiB, 0, 8) ==
        "upload of 4 B needs a slot: the server is short of memory, retry later");
}

TEST_CASE("Rejection sentences from real SlotPool refusals", "[fmt][rejection]") {
  SECTION("the 2.36 GiB upload under the old flat 10 % is too large") {
    admit::SlotPool pool{server_config, admit::FlatPolicy{10}};
    const admit::Admission answer = pool.try_acquire(large_upload);
    REQUIRE(!answer);
    CHECK(answer.error().reason == Reason::too_large);
    CHECK(answer.error().needed_bytes == 253'064'438);
    CHECK(fmt::format("{}", answer.error()) ==
          "upload of 2.36 GiB needs 241 MiB, more than the whole budget of 200 MiB");
  }
  SECTION("the 2.36 GiB upload under the default tiers is admitted with 100 MiB") {
    admit::SlotPool pool{server_config};
    const admit::Admission answer = pool.try_acquire(large_upload);
    REQUIRE(answer);
    CHECK(answer->bytes() == 104'857'600);
    CHECK(fmt::format("{}", ByteSize{answer->bytes()}) == "100 MiB");
  }
  SECTION("no_memory: 163 MiB held, a 500 MiB upload needs 50 MiB") {
    admit::SlotPool pool{server_config};
    admit::Admission held = pool.try_acquire(large_upload);  // 100 MiB
    REQUIRE(held);
    REQUIRE(held->try_grow(63 * MiB));
    const admit::Admission answer = pool.try_acquire(500 * MiB);
    REQUIRE(!answer);
    CHECK(fmt::format("{}", answer.error()) ==
          "upload of 500 MiB needs 50 MiB, 37 MiB free of 200 MiB, retry later");
  }
  SECTION("no_slot: all 8 slots held by small uploads") {
    admit::SlotPool pool{server_config};
    std::array<admit::SlotReservation, 8> held;
    for (auto& reservation : held) {
      admit::Admission answer = pool.try_acquire(10 * MiB);
      REQUIRE(answer);
      reservation = *std::move(answer);
    }
    const admit::Admission answer = pool.try_acquire(500 * MiB);
    REQUIRE(!answer);
    CHECK(fmt::format("{}", answer.error()) ==
          "upload of 500 MiB needs a slot, all 8 slots in use, retry later");
  }
  SECTION("timeout: a wait for a slot, with the bytes free, says so") {
    admit::SlotPool pool{admit::PoolConfig{.memory_budget = 200 * MiB, .slots = 1}};
    admit::Admission held = pool.try_acquire(10 * MiB);
    REQUIRE(held);
    // An expired wait: the answer is at once, and the 50 MiB were free.
    const admit::Admission answer = pool.acquire_for(500 * MiB, std::chrono::milliseconds{0});
    REQUIRE(!answer);
    CHECK(answer.error().reason == Reason::timeout);
    CHECK(fmt::format("{}", answer.error()) ==
          "upload of 500 MiB needs a slot: waited until the deadline, retry later");
  }
  SECTION("a refused try_grow: needed_bytes is the extra asked for") {
    admit::SlotPool pool{server_config};
    admit::Admission held = pool.try_acquire(500 * MiB);  // 50 MiB
    REQUIRE(held);
    admit::Admission other = pool.try_acquire(large_upload);  // 100 MiB
    REQUIRE(other);

    const admit::GrowResult no_room = held->try_grow(60 * MiB);
    REQUIRE(!no_room);
    CHECK(fmt::format("{}", no_room.error()) ==
          "upload of 500 MiB needs 60 MiB, 50 MiB free of 200 MiB, retry later");

    // 160 MiB fits in the budget, but not with the 50 MiB already held.
    const admit::GrowResult never = held->try_grow(160 * MiB);
    REQUIRE(!never);
    CHECK(never.error().reason == Reason::too_large);
    CHECK(fmt::format("{}", never.error()) ==
          "upload of 500 MiB needs 160 MiB more, which with what it holds exceeds the whole "
          "budget of 200 MiB");

    const admit::GrowResult beyond = held->try_grow(300 * MiB);
    REQUIRE(!beyond);
    CHECK(fmt::format("{}", beyond.error()) ==
          "upload of 500 MiB needs 300 MiB, more than the whole budget of 200 MiB");
  }
  SECTION("try_grow on an empty reservation does not blame the server") {
    admit::SlotReservation empty;
    const admit::GrowResult refused = empty.try_grow(MiB);
    REQUIRE(!refused);
    CHECK(refused.error().reason == Reason::closed);
    CHECK(fmt::format("{}", refused.error()) ==
          "upload of 0 B needs 1 MiB: the reservation holds nothing (released or moved from)");
  }
}

TEST_CASE("Stats prints one line", "[fmt][stats]") {
  SECTION("with rejections, only the nonzero reasons are named") {
    admit::Stats s;
    s.memory_budget = 200 * MiB;
    s.slots = 8;
    s.bytes_in_use = 52 * MiB + 4 * MiB / 10;
    s.slots_in_use = 3;
    s.peak_bytes_in_use = 120 * MiB;
    s.peak_slots_in_use = 5;
    s.waiters = 0;
    s.admitted = 120;
    s.rejected.too_large = 1;
    s.rejected.no_slot = 2;
    s.rejected.no_memory = 1;
    CHECK(fmt::format("{}", s) ==
          "bytes 52.4 MiB of 200 MiB in use (peak 120 MiB), slots 3 of 8 (peak 5), waiters 0, "
          "admitted 120, rejected 4 (too_large 1, no_slot 2, no_memory 1)");
  }
  SECTION("every reason, in enum order") {
    admit::Stats s;
    s.rejected = {1, 2, 3, 4, 5, 6, 7, 8};
    CHECK(fmt::format("{}", s) ==
          "bytes 0 B of 0 B in use (peak 0 B), slots 0 of 0 (peak 0), waiters 0, admitted 0, "
          "rejected 36 (too_large 1, no_slot 2, no_memory 3, queue_full 4, timeout 5, "
          "cancelled 6, closed 7, pressure 8)");
  }
  SECTION("without rejections") {
    admit::SlotPool pool{server_config};
    {
      const admit::Admission a = pool.try_acquire(500 * MiB);
      const admit::Admission b = pool.try_acquire(10 * MiB);
      REQUIRE(a);
      REQUIRE(b);
      CHECK(fmt::format("{}", pool.stats()) ==
            "bytes 52 MiB of 200 MiB in use (peak 52 MiB), slots 2 of 8 (peak 2), waiters 0, "
            "admitted 2, rejected 0");
    }
    CHECK(fmt::format("{}", pool.stats()) ==
          "bytes 0 B of 200 MiB in use (peak 52 MiB), slots 0 of 8 (peak 2), waiters 0, "
          "admitted 2, rejected 0");
  }
  SECTION("double releases are named only when there were some") {
    admit::Stats s;
    s.memory_budget = 200 * MiB;
    s.slots = 8;
    s.admitted = 3;
    s.double_releases = 2;
    CHECK(fmt::format("{}", s) ==
          "bytes 0 B of 200 MiB in use (peak 0 B), slots 0 of 8 (peak 0), waiters 0, admitted 3, "
          "rejected 0, double releases 2");
    s.rejected.no_slot = 1;
    CHECK(fmt::format("{}", s) ==
          "bytes 0 B of 200 MiB in use (peak 0 B), slots 0 of 8 (peak 0), waiters 0, admitted 3, "
          "rejected 1 (no_slot 1), double releases 2");
  }
  SECTION("from a real pool that refused the 2.36 GiB upload") {
    admit::SlotPool pool{server_config, admit::FlatPolicy{10}};
    CHECK(!pool.try_acquire(large_upload));
    CHECK(fmt::format("{}", pool.stats()) ==
          "bytes 0 B of 200 MiB in use (peak 0 B), slots 0 of 8 (peak 0), waiters 0, "
          "admitted 0, rejected 1 (too_large 1)");
  }
}

TEST_CASE("ByteSize, Rejection and Stats accept only the empty spec", "[fmt][spec]") {
  const Rejection rejection{Reason::no_slot, 500 * MiB, 50 * MiB, 0, 200 * MiB, 8, 8};
  const admit::Stats stats{};
  for (const char* bad : {"{:x}", "{:>10}", "{:10}", "{:s}", "{:.2}"}) {
    CHECK(spec_throws_format_error(bad, ByteSize{MiB}));
    CHECK(spec_throws_format_error(bad, rejection));
    CHECK(spec_throws_format_error(bad, stats));
  }
  CHECK(!spec_throws_format_error("{}", ByteSize{MiB}));
  CHECK(!spec_throws_format_error("{}", rejection));
  CHECK(!spec_throws_format_error("{}", stats));
  CHECK(fmt::format(fmt::runtime("{}"), ByteSize{MiB}) == "1 MiB");
  // Reason takes string specs, but not integer ones.
  CHECK(spec_throws_format_error("{:x}", Reason::no_slot));
  CHECK(!spec_throws_format_error("{:>12}", Reason::no_slot));
}

namespace {

using steady = std::chrono::steady_clock;

admit::ReservationRecord record(std::uint32_t slot, std::uint64_t bytes_held, steady::time_point at,
                                std::string label = {}) {
  admit::ReservationRecord r;
  r.slot = slot;
  r.declared_size = bytes_held * 10;
  r.bytes = bytes_held;
  r.admitted_at = at;
  r.label = std::move(label);
  return r;
}

admit::Stats stats_of(std::uint64_t in_use, std::uint32_t slots_in_use, std::uint32_t slots,
                      std::uint64_t waiters) {
  admit::Stats s;
  s.memory_budget = 200 * MiB;
  s.slots = slots;
  s.bytes_in_use = in_use;
  s.slots_in_use = slots_in_use;
  s.waiters = waiters;
  return s;
}

}  // namespace

TEST_CASE("describe names the bottleneck and the largest holder", "[fmt][describe]") {
  const steady::time_point now = steady::time_point{} + std::chrono::hours{1};
  admit::PoolPicture p;
  p.stats = stats_of(195 * MiB, 3, 8, 5);
  p.records = {record(0, 45 * MiB, now - std::chrono::seconds{3}),
               record(2, 100 * MiB, now - std::chrono::milliseconds{41'900}, "ws#17 big.zip"),
               record(5, 50 * MiB, now)};
  p.head_needs = 100 * MiB;
  CHECK(admit::describe(p, now) ==
        "memory: 195 MiB of 200 MiB held by 3 uploads (largest: #2 \"ws#17 big.zip\" 100 MiB for "
        "41 s); slots 3/8; 5 waiting, head needs 100 MiB");

  p.stats = stats_of(80 * MiB, 8, 8, 2);
  p.records = {record(7, 80 * MiB, now - std::chrono::seconds{2})};
  p.head_needs = 1 * MiB;
  CHECK(admit::describe(p, now) ==
        "slots: 8/8 held; memory 80 MiB of 200 MiB held by 8 uploads (largest: #7 80 MiB for 2 s); "
        "2 waiting, head needs 1 MiB");

  p.stats = stats_of(10 * MiB, 1, 8, 0);
  p.records = {record(3, 10 * MiB, now, "a")};
  p.head_needs.reset();
  CHECK(admit::describe(p, now) ==
        "none: 10 MiB of 200 MiB held by 1 upload (largest: #3 \"a\" 10 MiB for 0 s); slots 1/8; "
        "0 waiting");

  // Less than a tenth of the budget free, nobody waiting: memory is what binds next.
  p.stats = stats_of(185 * MiB, 1, 8, 0);
  p.records = {record(3, 185 * MiB, now)};
  CHECK(admit::describe(p, now).starts_with("memory: 185 MiB of 200 MiB held by 1 upload"));

  p.under_pressure = true;
  CHECK(admit::describe(p, now).starts_with("pressure: 185 MiB"));
  p.closed = true;
  CHECK(admit::describe(p, now).starts_with("closed: 185 MiB"));
}

TEST_CASE("describe without records says that tracking is off", "[fmt][describe]") {
  admit::PoolPicture p;
  p.stats = stats_of(30 * MiB, 2, 8, 0);
  CHECK(admit::describe(p, steady::now()) ==
        "none: 30 MiB of 200 MiB held by 2 uploads (no per-upload records: track_reservations is "
        "off); slots 2/8; 0 waiting");
  p.stats = stats_of(0, 0, 8, 0);
  CHECK(admit::describe(p, steady::now()) ==
        "none: 0 B of 200 MiB held by 0 uploads; slots 0/8; 0 waiting");
}

TEST_CASE("describe reads a real pool", "[fmt][describe]") {
  admit::SlotPool<admit::FlatPolicy> pool{
      admit::PoolConfig{.memory_budget = 200 * MiB, .slots = 2, .track_reservations = true},
      admit::FlatPolicy{100}};
  admit::SlotReservation big = std::move(pool.try_acquire(150 * MiB)).value();
  big.set_label("http#1 big.iso");
  admit::SlotReservation small = std::move(pool.try_acquire(10 * MiB)).value();
  admit::Ticket waiting = pool.async_acquire(60 * MiB, [](admit::Admission&&) {});
  // Cut before the age: a slow machine may take a second between the two.
  const std::string text = admit::describe(pool);
  CHECK(
      text.starts_with("slots: 2/2 held; memory 160 MiB of 200 MiB held by 2 uploads (largest: "
                       "#0 \"http#1 big.iso\" 150 MiB for "));
  CHECK(text.ends_with(" s); 1 waiting, head needs 60 MiB"));
  waiting.cancel();
}

TEST_CASE("a partition's refusal says the figures are the partition's", "[fmt][rejection][partition]") {
  admit::SlotPool<admit::FlatPolicy> pool{{.memory_budget = 100 * MiB, .slots = 10},
                                          admit::FlatPolicy{100}};
  const admit::Partition batch = pool.add_partition("batch", {.ceiling_percent = 30});
  CHECK(fmt::format("{}", pool.try_acquire(40 * MiB, batch).error()) ==
        "upload of 40 MiB needs 40 MiB, more than its partition's ceiling of 30 MiB");
  admit::Admission held = pool.try_acquire(25 * MiB, batch);
  REQUIRE(held);
  CHECK(fmt::format("{}", pool.try_acquire(10 * MiB, batch).error()) ==
        "upload of 10 MiB needs 10 MiB, its partition may take 5 MiB more of its ceiling of "
        "30 MiB, retry later");
  admit::Admission a = pool.try_acquire(0, batch);
  admit::Admission b = pool.try_acquire(0, batch);
  REQUIRE(b);
  CHECK(fmt::format("{}", pool.try_acquire(0, batch).error()) ==
        "upload of 0 B needs a slot, its partition holds its 3 slots, retry later");
  CHECK(fmt::format("{}", pool.stats(batch)) ==
        "batch: bytes 25 MiB in use (guarantee 0 B, ceiling 30 MiB), slots 3 (guarantee 0, "
        "ceiling 3), waiters 0, admitted 3, rejected 3 (too_large 1, no_slot 1, no_memory 1)");
  admit::Admission probe = pool.bypass();
  CHECK(fmt::format("{}", pool.stats()).ends_with(", bypassed 1"));
}

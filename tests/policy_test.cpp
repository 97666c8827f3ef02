// Tests for admit/policy.hpp: the stock policies' exact figures, their
// validation, and overflow safety over the whole std::uint64_t range.
#include <admit/policy.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using admit::FixedPolicy;
using admit::FlatPolicy;
using admit::GiB;
using admit::MiB;
using admit::Tier;
using admit::TieredPolicy;
using admit_test::contains;
using admit_test::invalid_argument_message;

namespace {

constexpr std::uint64_t max_u64 = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t large_upload = 2'530'644'380;  // the upload that was refused

// floor(size * percent / 100) computed the obvious way, in 128 bits.
__extension__ using u128 = unsigned __int128;
std::uint64_t reference_percent(std::uint64_t size, std::uint32_t percent) {
  return static_cast<std::uint64_t>(u128{size} * percent / 100);
}

// The default table written out longhand, as the reference for TieredPolicy{}.
std::uint64_t reference_default(std::uint64_t size) {
  if (size < 100 * MiB) return reference_percent(size, 20);
  if (size < GiB) return reference_percent(size, 10);
  const std::uint64_t five = reference_percent(size, 5);
  return five < 100 * MiB ? five : 100 * MiB;
}

// Sizes that matter: every power of two and its neighbours, the tier edges,
// the maximum, plus random values spread over all magnitudes.
std::vector<std::uint64_t> interesting_sizes() {
  std::vector<std::uint64_t> sizes{
      0,   1,          99,      100,         101,           100 * MiB,
      GiB, 2000 * MiB, max_u64, max_u64 - 1, max_u64 / 100, large_upload};
  for (unsigned bit = 0; bit < 64; ++bit) {
    const std::uint64_t p = std::uint64_t{1} << bit;
    sizes.insert(sizes.end(), {p - 1, p, p + 1});
  }
  std::mt19937_64 rng{20261128};
  for (int i = 0; i < 2000; ++i) sizes.push_back(rng() >> (rng() % 64));
  return sizes;
}

}  // namespace

TEST_CASE("default tiers reproduce the reference figures in constant expressions",
          "[policy][tiered]") {
  constexpr TieredPolicy tiers;
  static_assert(tiers.bytes_for(10 * MiB) == 2'097'152);
  static_assert(tiers.bytes_for(500 * MiB) == 52'428'800);
  static_assert(tiers.bytes_for(large_upload) == 104'857'600);
  static_assert(FlatPolicy{10}.bytes_for(large_upload) == 253'064'438);
  static_assert(std::is_same_v<admit::DefaultPolicy, TieredPolicy>);
  // The same at run time, so a failure also shows up as a test failure.
  const TieredPolicy runtime_tiers;
  CHECK(runtime_tiers.bytes_for(10 * MiB) == 2'097'152);
  CHECK(runtime_tiers.bytes_for(500 * MiB) == 52'428'800);
  CHECK(runtime_tiers.bytes_for(large_upload) == 104'857'600);
  CHECK(FlatPolicy{10}.bytes_for(large_upload) == 253'064'438);
}

TEST_CASE("default tier edges: exactly 100 MiB and 1 GiB belong to the upper tier",
          "[policy][tiered]") {
  constexpr TieredPolicy tiers;
  // Below 100 MiB: 20 %, rounded down.
  CHECK(tiers.bytes_for(100 * MiB - 1) == (100 * MiB - 1) / 5);
  CHECK(tiers.bytes_for(100 * MiB) == 10 * MiB);
  // Below 1 GiB: 10 %.
  CHECK(tiers.bytes_for(GiB - 1) == (GiB - 1) / 10);
  CHECK(tiers.bytes_for(GiB) == GiB / 20);
  // 5 % reaches the 100 MiB cap at exactly 2000 MiB.
  CHECK(tiers.bytes_for(2000 * MiB - 20) == 100 * MiB - 1);
  CHECK(tiers.bytes_for(2000 * MiB) == 100 * MiB);
  CHECK(tiers.bytes_for(2001 * MiB) == 100 * MiB);
  CHECK(tiers.bytes_for(0) == 0);
}

TEST_CASE("default tiers drop at 100 MiB and at 1 GiB, as the README says", "[policy][tiered]") {
  constexpr TieredPolicy tiers;
  // 99 MiB reserves 19.8 MiB, 100 MiB only 10 MiB: documented, not "fixed".
  CHECK(tiers.bytes_for(99 * MiB) > tiers.bytes_for(100 * MiB));
  CHECK(tiers.bytes_for(100 * MiB - 1) == 20'971'519);
  CHECK(tiers.bytes_for(100 * MiB) == 10'485'760);
  // Just below 1 GiB is 10 % with no cap: more than the 100 MiB cap above it.
  CHECK(tiers.bytes_for(GiB - 1) == 107'374'182);
  CHECK(tiers.bytes_for(GiB) == 53'687'091);
  CHECK(tiers.bytes_for(GiB - 1) > 100 * MiB);
}

TEST_CASE("fractions round down", "[policy]") {
  CHECK(FlatPolicy{10}.bytes_for(9) == 0);
  CHECK(FlatPolicy{10}.bytes_for(19) == 1);
  CHECK(FlatPolicy{33}.bytes_for(100) == 33);
  CHECK(FlatPolicy{33}.bytes_for(99) == 32);  // 32.67
  CHECK(TieredPolicy{}.bytes_for(4) == 0);    // 0.8
  CHECK(TieredPolicy{}.bytes_for(5) == 1);
}

TEST_CASE("percentages are exact and never overflow over the whole uint64 range", "[policy]") {
  const auto sizes = interesting_sizes();
  for (std::uint32_t percent = 0; percent <= 100; ++percent) {
    const FlatPolicy flat{percent};
    for (const std::uint64_t size : sizes) {
      const std::uint64_t got = flat.bytes_for(size);
      if (got != reference_percent(size, percent)) {
        FAIL_CHECK("FlatPolicy{" << percent << "}.bytes_for(" << size << ") = " << got);
      }
    }
  }
  const TieredPolicy tiers;
  for (const std::uint64_t size : sizes) {
    if (tiers.bytes_for(size) != reference_default(size)) {
      FAIL_CHECK("TieredPolicy{}.bytes_for(" << size << ") = " << tiers.bytes_for(size));
    }
  }
  CHECK(FlatPolicy{100}.bytes_for(max_u64) == max_u64);
  CHECK(FlatPolicy{10}.bytes_for(max_u64) == 1'844'674'407'370'955'161);
  CHECK(TieredPolicy{}.bytes_for(max_u64) == 100 * MiB);
}

TEST_CASE("FixedPolicy reserves the same bytes for every size", "[policy][fixed]") {
  constexpr FixedPolicy fixed{8 * MiB};
  static_assert(fixed.bytes_for(0) == 8 * MiB);
  CHECK(fixed.bytes_for(1) == 8 * MiB);
  CHECK(fixed.bytes_for(large_upload) == 8 * MiB);
  CHECK(fixed.bytes_for(max_u64) == 8 * MiB);
  CHECK(fixed.bytes() == 8 * MiB);
  CHECK(FixedPolicy{0}.bytes_for(GiB) == 0);
}

TEST_CASE("a tier table can be fixed at compile time", "[policy][tiered]") {
  constexpr TieredPolicy custom{{64 * MiB, 25}, {Tier::unbounded, 10, 256 * MiB}};
  static_assert(custom.bytes_for(4 * MiB) == MiB);
  static_assert(custom.bytes_for(64 * MiB) == 64 * MiB / 10);
  static_assert(custom.bytes_for(max_u64) == 256 * MiB);
  static_assert(custom.tiers().size() == 2);
  constexpr TieredPolicy flat_as_tiers{{Tier::unbounded, 10}};
  static_assert(flat_as_tiers.bytes_for(large_upload) == FlatPolicy{10}.bytes_for(large_upload));
  CHECK(custom.tiers()[1] == Tier{Tier::unbounded, 10, 256 * MiB});
}

TEST_CASE("a tier table can be given at run time", "[policy][tiered]") {
  // As a server would after reading its configuration file.
  std::vector<Tier> table{{10 * MiB, 50}, {GiB, 20, 64 * MiB}, {Tier::unbounded, 1}};
  const TieredPolicy policy{std::span<const Tier>{table}};
  table.clear();  // the policy keeps its own copy
  CHECK(policy.bytes_for(2 * MiB) == MiB);
  CHECK(policy.bytes_for(500 * MiB) == 64 * MiB);
  CHECK(policy.bytes_for(100 * GiB) == GiB);
  CHECK(policy.tiers().size() == 3);
  CHECK(TieredPolicy{} ==
        TieredPolicy{{100 * MiB, 20}, {GiB, 10}, {Tier::unbounded, 5, 100 * MiB}});
  CHECK_FALSE(policy == TieredPolicy{});
}

TEST_CASE("an invalid tier table throws std::invalid_argument naming the field",
          "[policy][tiered][validation]") {
  using admit_test::invalid_argument_message;
  SECTION("empty") {
    const std::string msg =
        invalid_argument_message([] { const TieredPolicy p{std::span<const Tier>{}}; });
    CHECK(contains(msg, "TieredPolicy: the table must hold 1 to 8 tiers, got 0"));
  }
  SECTION("too many tiers") {
    std::vector<Tier> table;
    for (std::uint64_t i = 1; i <= TieredPolicy::max_tiers; ++i) table.push_back({i * MiB, 10});
    table.push_back({Tier::unbounded, 10});
    const std::string msg =
        invalid_argument_message([&] { TieredPolicy{std::span<const Tier>{table}}; });
    CHECK(contains(msg, "1 to 8 tiers, got 9"));
  }
  SECTION("percent above 100") {
    const std::string msg = invalid_argument_message([] {
      TieredPolicy{{MiB, 20}, {Tier::unbounded, 101}};
    });
    CHECK(contains(msg, "tiers[1].percent must be in 0..100, got 101"));
  }
  SECTION("limits not ascending") {
    const std::string msg = invalid_argument_message([] {
      TieredPolicy{{GiB, 20}, {MiB, 10}, {Tier::unbounded, 5}};
    });
    CHECK(contains(msg,
                   "tiers[1].below must be greater than tiers[0].below (1073741824), got 1048576"));
  }
  SECTION("equal limits") {
    const std::string msg = invalid_argument_message([] {
      TieredPolicy{{MiB, 20}, {MiB, 10}, {Tier::unbounded, 5}};
    });
    CHECK(contains(msg, "tiers[1].below must be greater than tiers[0].below"));
  }
  SECTION("last tier bounded") {
    const std::string msg = invalid_argument_message([] { TieredPolicy{{MiB, 20}, {GiB, 10}}; });
    CHECK(contains(msg, "tiers[1].below must be Tier::unbounded"));
    CHECK(contains(msg, "got 1073741824"));
  }
  SECTION("zero cap") {
    const std::string msg = invalid_argument_message([] {
      TieredPolicy{{Tier::unbounded, 20, 0}};
    });
    CHECK(contains(msg, "tiers[0].cap must be > 0"));
  }
}

TEST_CASE("policy validation_error is the constructor's message, without throwing",
          "[policy][validation]") {
  using admit_test::invalid_argument_message;
  const std::vector<std::vector<Tier>> bad_tables{
      {},
      {{MiB, 20}, {Tier::unbounded, 101}},
      {{GiB, 20}, {MiB, 10}, {Tier::unbounded, 5}},
      {{MiB, 20}, {GiB, 10}},
      {{Tier::unbounded, 20, 0}},
  };
  for (const std::vector<Tier>& table : bad_tables) {
    const std::span<const Tier> tiers{table};
    const std::optional<std::string> error = TieredPolicy::validation_error(tiers);
    REQUIRE(error.has_value());
    CHECK(*error == invalid_argument_message([&] { TieredPolicy{tiers}; }));
  }
  const TieredPolicy stock;
  CHECK_FALSE(TieredPolicy::validation_error(stock.tiers()).has_value());

  REQUIRE(FlatPolicy::validation_error(101).has_value());
  CHECK(*FlatPolicy::validation_error(101) == invalid_argument_message([] { FlatPolicy{101}; }));
  CHECK_FALSE(FlatPolicy::validation_error(100).has_value());
  CHECK_FALSE(FlatPolicy::validation_error(0).has_value());
}

TEST_CASE("FlatPolicy rejects a percentage above 100", "[policy][flat][validation]") {
  const std::string msg = invalid_argument_message([] { FlatPolicy{101}; });
  CHECK(contains(msg, "FlatPolicy: percent must be in 0..100, got 101"));
  CHECK(FlatPolicy{0}.bytes_for(max_u64) == 0);
  CHECK(FlatPolicy{100}.percent() == 100);
}

namespace {
struct ThrowingPolicy {
  std::uint64_t bytes_for(std::uint64_t size) const { return size; }  // not noexcept
};
struct WrongReturnPolicy {
  int bytes_for(std::uint64_t) const noexcept { return 0; }
};
struct HalfPolicy {
  std::uint64_t bytes_for(std::uint64_t size) const noexcept { return size / 2; }
};
}  // namespace

TEST_CASE("MemoryPolicy requires a noexcept bytes_for returning uint64_t", "[policy][concept]") {
  STATIC_REQUIRE(admit::MemoryPolicy<TieredPolicy>);
  STATIC_REQUIRE(admit::MemoryPolicy<FlatPolicy>);
  STATIC_REQUIRE(admit::MemoryPolicy<FixedPolicy>);
  STATIC_REQUIRE(admit::MemoryPolicy<HalfPolicy>);
  STATIC_REQUIRE_FALSE(admit::MemoryPolicy<ThrowingPolicy>);
  STATIC_REQUIRE_FALSE(admit::MemoryPolicy<WrongReturnPolicy>);
  STATIC_REQUIRE_FALSE(admit::MemoryPolicy<int>);
}

// Tests for admit/units.hpp: binary units, as the tier table assumes.
#include <admit/units.hpp>

#include <cstdint>
#include <type_traits>

#include "catch.hpp"

TEST_CASE("units are binary and std::uint64_t", "[units]") {
  STATIC_REQUIRE(std::is_same_v<decltype(admit::MiB), const std::uint64_t>);
  CHECK(admit::KiB == 1024);
  CHECK(admit::MiB == 1024 * admit::KiB);
  CHECK(admit::GiB == 1024 * admit::MiB);
  CHECK(admit::TiB == 1024 * admit::GiB);
  // The default "100 MiB" tier edge and "200 MiB" budget, spelled in bytes.
  CHECK(100 * admit::MiB == 104'857'600);
  CHECK(200 * admit::MiB == 209'715'200);
}

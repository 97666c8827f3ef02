// Catch2 compatibility header: admit's tests include "catch.hpp" and nothing else
// from Catch2, so the same test sources build against Catch2 v2 (Debian 12 ships
// 2.13) and v3. tests/CMakeLists.txt defines ADMIT_CATCH2_V3 when it links v3.
#pragma once

#include <string>

#if defined(ADMIT_CATCH2_V3)
#include <catch2/catch_all.hpp>
// v2 declares Approx in the global namespace; keep tests source-compatible.
using Catch::Approx;
#else
#include <catch2/catch.hpp>
#endif

namespace admit_test {

// Matcher "the string contains `needle`" (v2 Contains, v3 ContainsSubstring), e.g.
// REQUIRE_THROWS_WITH(make_pool(), admit_test::contains("slots")).
inline auto contains(std::string const& needle) {
#if defined(ADMIT_CATCH2_V3)
  return Catch::Matchers::ContainsSubstring(needle);
#else
  return Catch::Matchers::Contains(needle);
#endif
}

}  // namespace admit_test

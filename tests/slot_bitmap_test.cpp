// Tests for admit/detail/slot_bitmap.hpp: unique slot indices, lowest first,
// never past the slot count.
#include <admit/detail/slot_bitmap.hpp>

#include <algorithm>
#include <cstdint>
#include <set>

#include "catch.hpp"

using admit::detail::SlotBitmap;

TEST_CASE("claims hand out every index once, lowest first", "[slot_bitmap]") {
  for (const std::uint32_t slots : {1u, 2u, 63u, 64u, 65u, 128u, 130u}) {
    CAPTURE(slots);
    SlotBitmap bitmap{slots};
    for (std::uint32_t i = 0; i < slots; ++i) {
      CHECK_FALSE(bitmap.is_held(i));
      CHECK(bitmap.claim() == i);
      CHECK(bitmap.is_held(i));
    }
    CHECK(bitmap.claims() == slots);
    for (std::uint32_t i = 0; i < slots; ++i) bitmap.release(i);
  }
}

TEST_CASE("a released index is handed out again before higher ones", "[slot_bitmap]") {
  SlotBitmap bitmap{100};
  for (int i = 0; i < 100; ++i) (void)bitmap.claim();
  bitmap.release(70);
  bitmap.release(3);
  CHECK(bitmap.claim() == 3);
  CHECK(bitmap.claim() == 70);
  CHECK(bitmap.claims() == 102);
  for (std::uint32_t i = 0; i < 100; ++i) bitmap.release(i);
  for (std::uint32_t i = 0; i < 100; ++i) CHECK_FALSE(bitmap.is_held(i));
}

TEST_CASE("indices past the slot count are never handed out", "[slot_bitmap]") {
  // 65 slots use two words; the 63 unused bits of the second stay set.
  SlotBitmap bitmap{65};
  std::set<std::uint32_t> seen;
  for (int i = 0; i < 65; ++i) seen.insert(bitmap.claim());
  CHECK(seen.size() == 65);
  CHECK(*seen.rbegin() == 64);
  for (const std::uint32_t slot : seen) bitmap.release(slot);
}

TEST_CASE("a freed index is found wherever the scan starts", "[slot_bitmap]") {
  // Three words; filling them moves the scan's starting hint around and back
  // to word 0. Frees in any word must still be found, each exactly once.
  SlotBitmap bitmap{130};
  for (int i = 0; i < 130; ++i) (void)bitmap.claim();
  for (const std::uint32_t freed : {129u, 5u, 100u, 64u}) {
    bitmap.release(freed);
    CHECK(bitmap.claim() == freed);
  }
  bitmap.release(127);
  bitmap.release(2);
  const std::set<std::uint32_t> again{bitmap.claim(), bitmap.claim()};
  CHECK(again == std::set<std::uint32_t>{2, 127});
  for (std::uint32_t i = 0; i < 130; ++i) CHECK(bitmap.is_held(i));
  for (std::uint32_t i = 0; i < 130; ++i) bitmap.release(i);
}

TEST_CASE("a pool of many slots fills and drains through every index", "[slot_bitmap]") {
  // 1,048,575 claims, each starting at the hint: linear, not quadratic.
  constexpr std::uint32_t slots = (1u << 20) - 1;
  SlotBitmap bitmap{slots};
  std::uint32_t highest = 0;
  for (std::uint32_t i = 0; i < slots; ++i) highest = std::max(highest, bitmap.claim());
  CHECK(highest == slots - 1);
  CHECK(bitmap.claims() == slots);
  for (std::uint32_t i = 0; i < slots; ++i) bitmap.release(i);
  CHECK(bitmap.claim() == 0);
  bitmap.release(0);
}

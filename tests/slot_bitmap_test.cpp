// Tests for admit/detail/slot_bitmap.hpp: unique slot indices, lowest first,
// never past the slot count; and a claim given back at most once, whatever
// copies of it are released later.
#include <admit/detail/slot_bitmap.hpp>

#include <algorithm>
#include <cstdint>
#include <set>
#include <vector>

#include "catch.hpp"

using admit::detail::SlotBitmap;
using admit::detail::SlotClaim;
using Release = SlotBitmap::Release;

namespace {

/// Claims every slot of `bitmap`; the result is indexed by slot.
std::vector<SlotClaim> claim_all(SlotBitmap& bitmap) {
  std::vector<SlotClaim> held(bitmap.slots());
  for (std::uint32_t i = 0; i < bitmap.slots(); ++i) {
    const SlotClaim c = bitmap.claim();
    held[c.slot] = c;
  }
  return held;
}

void release_all(SlotBitmap& bitmap, const std::vector<SlotClaim>& held) {
  for (const SlotClaim& c : held) CHECK(bitmap.release(c) == Release::released);
}

}  // namespace

TEST_CASE("claims hand out every index once, lowest first", "[slot_bitmap]") {
  for (const std::uint32_t slots : {1u, 2u, 15u, 16u, 17u, 63u, 64u, 65u, 128u, 130u}) {
    CAPTURE(slots);
    SlotBitmap bitmap{slots};
    std::vector<SlotClaim> held;
    for (std::uint32_t i = 0; i < slots; ++i) {
      CHECK_FALSE(bitmap.is_held(i));
      held.push_back(bitmap.claim());
      CHECK(held.back().slot == i);
      CHECK(held.back().generation == 0);  // never claimed before
      CHECK(bitmap.is_held(i));
    }
    CHECK(bitmap.claims() == slots);
    release_all(bitmap, held);
  }
}

TEST_CASE("a released index is handed out again before higher ones", "[slot_bitmap]") {
  SlotBitmap bitmap{100};
  std::vector<SlotClaim> held = claim_all(bitmap);
  CHECK(bitmap.release(held[70]) == Release::released);
  CHECK(bitmap.release(held[3]) == Release::released);
  held[3] = bitmap.claim();
  held[70] = bitmap.claim();
  CHECK(held[3].slot == 3);
  CHECK(held[70].slot == 70);
  CHECK(bitmap.claims() == 102);
  release_all(bitmap, held);
  for (std::uint32_t i = 0; i < 100; ++i) CHECK_FALSE(bitmap.is_held(i));
}

TEST_CASE("indices past the slot count are never handed out", "[slot_bitmap]") {
  // 65 slots use five words of 16; the unused bits of the last stay set.
  SlotBitmap bitmap{65};
  std::set<std::uint32_t> seen;
  std::vector<SlotClaim> held;
  for (int i = 0; i < 65; ++i) {
    held.push_back(bitmap.claim());
    seen.insert(held.back().slot);
  }
  CHECK(seen.size() == 65);
  CHECK(*seen.rbegin() == 64);
  release_all(bitmap, held);
}

TEST_CASE("a freed index is found wherever the scan starts", "[slot_bitmap]") {
  // Nine words; filling them moves the scan's starting hint around and back
  // to word 0. Frees in any word must still be found, each exactly once.
  SlotBitmap bitmap{130};
  std::vector<SlotClaim> held = claim_all(bitmap);
  for (const std::uint32_t freed : {129u, 5u, 100u, 64u}) {
    CHECK(bitmap.release(held[freed]) == Release::released);
    held[freed] = bitmap.claim();
    CHECK(held[freed].slot == freed);
  }
  CHECK(bitmap.release(held[127]) == Release::released);
  CHECK(bitmap.release(held[2]) == Release::released);
  const SlotClaim first = bitmap.claim();
  const SlotClaim second = bitmap.claim();
  CHECK(std::set<std::uint32_t>{first.slot, second.slot} == std::set<std::uint32_t>{2, 127});
  held[first.slot] = first;
  held[second.slot] = second;
  for (std::uint32_t i = 0; i < 130; ++i) CHECK(bitmap.is_held(i));
  release_all(bitmap, held);
}

TEST_CASE("a pool of many slots fills and drains through every index", "[slot_bitmap]") {
  // 1,048,575 claims, each starting at the hint: linear, not quadratic.
  constexpr std::uint32_t slots = (1u << 20) - 1;
  SlotBitmap bitmap{slots};
  std::uint32_t highest = 0;
  for (std::uint32_t i = 0; i < slots; ++i) highest = std::max(highest, bitmap.claim().slot);
  CHECK(highest == slots - 1);
  CHECK(bitmap.claims() == slots);
  for (std::uint32_t i = 0; i < slots; ++i) REQUIRE(bitmap.release({i, 0}) == Release::released);
  const SlotClaim again = bitmap.claim();
  CHECK(again.slot == 0);
  CHECK(again.generation == 1);
  CHECK(bitmap.release(again) == Release::released);
}

TEST_CASE("each release moves the slot's generation on, and the next claim gets it",
          "[slot_bitmap][double_release]") {
  SlotBitmap bitmap{2};
  for (std::uint32_t round = 0; round < 5; ++round) {
    const SlotClaim c = bitmap.claim();
    CHECK(c.slot == 0);
    CHECK(c.generation == round);
    CHECK(bitmap.is_current(c));
    CHECK(bitmap.release(c) == Release::released);
    CHECK_FALSE(bitmap.is_current(c));
    CHECK(bitmap.generation(0) == round + 1);
  }
  CHECK(bitmap.generation(1) == 0);  // untouched
}

TEST_CASE("a claim given back twice is refused and touches nothing",
          "[slot_bitmap][double_release]") {
  SlotBitmap bitmap{64};
  const SlotClaim a = bitmap.claim();
  const SlotClaim b = bitmap.claim();
  CHECK(bitmap.release(a) == Release::released);

  SECTION("while the slot is free") {
    CHECK(bitmap.release(a) == Release::stale);
    CHECK_FALSE(bitmap.is_held(a.slot));
    CHECK(bitmap.generation(a.slot) == a.generation + 1);  // not moved on again
  }
  SECTION("after another holder took the slot: it keeps it") {
    const SlotClaim c = bitmap.claim();
    REQUIRE(c.slot == a.slot);
    CHECK(c.generation == a.generation + 1);
    CHECK(bitmap.release(a) == Release::stale);
    CHECK(bitmap.is_held(c.slot));
    CHECK(bitmap.is_current(c));
    CHECK(bitmap.claim().slot == 2);  // slot 0 was not freed under its holder
    CHECK(bitmap.release(c) == Release::released);
    CHECK(bitmap.release({2, 0}) == Release::released);
  }
  CHECK(bitmap.is_held(b.slot));
  CHECK(bitmap.release(b) == Release::released);
  CHECK(bitmap.release(b) == Release::stale);
}

TEST_CASE("the bit decides when the generation cannot: a free slot is not released",
          "[slot_bitmap][double_release]") {
  // A claim of slot 5 with the generation it would get now, though nobody
  // claimed it: what two racing copies of one claim look like to the loser.
  SlotBitmap bitmap{8};
  const SlotClaim held = bitmap.claim();
  CHECK(bitmap.release({5, 0}) == Release::not_held);
  CHECK_FALSE(bitmap.is_held(5));
  CHECK(bitmap.is_held(held.slot));
  CHECK(bitmap.release(held) == Release::released);
}

TEST_CASE("a slot index out of range is refused and touches nothing",
          "[slot_bitmap][double_release]") {
  // 65 slots: index 65 is a bit of the last word that is set for good.
  SlotBitmap bitmap{65};
  CHECK(bitmap.release({65, 0}) == Release::out_of_range);
  CHECK(bitmap.release({127, 0}) == Release::out_of_range);
  CHECK(bitmap.release({0xFFFF'FFFFu, 0}) == Release::out_of_range);
  CHECK_FALSE(bitmap.is_current({65, 0}));
  std::vector<SlotClaim> held = claim_all(bitmap);  // the set bits past the end stay set
  CHECK(held.back().slot == 64);
  release_all(bitmap, held);
}

TEST_CASE("the generation is 16 bits: a claim 65,536 reuses old matches again",
          "[slot_bitmap][double_release]") {
  // The documented limit (slot_bitmap.hpp): a stale claim is recognised for
  // 65,535 reuses of its slot; at 65,536 its generation is current again,
  // and only the bit can still refuse it.
  SlotBitmap bitmap{1};
  const SlotClaim old = bitmap.claim();
  REQUIRE(bitmap.release(old) == Release::released);
  for (std::uint32_t reuse = 1; reuse < 65'536; ++reuse) {
    const SlotClaim c = bitmap.claim();
    REQUIRE(c.generation == reuse);
    REQUIRE(bitmap.release(c) == Release::released);
    if (reuse % 4096 == 0) REQUIRE(bitmap.release(old) == Release::stale);
  }
  CHECK(bitmap.generation(0) == 0);  // wrapped
  CHECK(bitmap.is_current(old));
  CHECK(bitmap.release(old) == Release::not_held);  // free now: the bit refuses it
  const SlotClaim holder = bitmap.claim();
  CHECK(holder.generation == 1);  // the refused release still moved the generation on
  CHECK(bitmap.release(holder) == Release::released);
}

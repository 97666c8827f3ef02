// tests/chaos/load.hpp - the figures of the chaos stress test's pool and load:
// its slots, waiters and budgets, the sizes the workers ask for, how much each
// worker holds and hands over, and the limits of the coverage check, the
// watchdog and wait_idle; with the names every part of the test uses.
#pragma once

#include <admit/admit.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace admit_chaos {

using admit::MiB;
using admit::Reason;
using admit::SlotReservation;
using Clock = std::chrono::steady_clock;
using Pool = admit::SlotPool<admit::FlatPolicy>;
using namespace std::chrono_literals;

inline unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

// --- The pool and the load -----------------------------------------------------------------------

// Two words of the slot bitmap (16 slots a word): claims and their hint cross words.
inline constexpr std::uint32_t slot_count = 20;
// Below what the workers can have waiting at once (8 async requests each, and
// a blocking one), so that queue_full happens.
inline constexpr std::uint32_t max_waiters = 12;
// Every budget ever in force is one of these: a Rejection naming any other
// figure is a violation.
inline constexpr std::array<std::uint64_t, 9> budgets{
    8 * MiB, 12 * MiB, 16 * MiB, 24 * MiB, 32 * MiB, 48 * MiB, 64 * MiB, 80 * MiB, 96 * MiB};
inline constexpr std::uint64_t initial_budget = 48 * MiB;
// Larger than the smallest budgets (too_large), within the largest.
inline constexpr std::uint64_t largest_request = 40 * MiB;
// Larger than every budget: a grow by this is always too_large.
inline constexpr std::uint64_t impossible_grow = 128 * MiB;

inline constexpr std::size_t held_per_worker = 4;
inline constexpr std::size_t requests_per_worker = 8;
inline constexpr std::size_t exchange_places = 4;
inline constexpr std::size_t delivered_places = 8;
inline constexpr std::size_t lent_places = 8;
// Runs this long on this many threads must have exercised everything (see
// the comment of chaos_stress.cpp); fewer threads cannot fill every slot.
// At most the default --ops split over the default 16 runs (62,500 each), so
// that the plain ctest run checks it.
inline constexpr std::uint64_t coverage_ops = 60'000;
inline constexpr unsigned coverage_threads = 4;
inline constexpr auto watchdog_limit = 60s;
inline constexpr auto idle_limit = 10s;

inline bool is_budget(std::uint64_t b) {
  for (const std::uint64_t x : budgets) {
    if (x == b) return true;
  }
  return false;
}

}  // namespace admit_chaos

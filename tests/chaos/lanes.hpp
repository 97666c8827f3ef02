// tests/chaos/lanes.hpp - the fairness settings a chaos run can have (fifo,
// barging, and Fairness::lanes twice: windows that close quickly on the real
// clock, and a small share with a long wait on a fake clock), and that fake
// clock, which the controller moves forward in jumps.
#pragma once

#include <admit/admit.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>

#include "load.hpp"

namespace admit_chaos {

struct Mode {
  const char* name;  // in the run's name
  admit::Fairness fairness;
  std::chrono::milliseconds max_head_wait;
  std::uint32_t max_pass_percent;
  bool fake_clock;  // lanes on lanes_clock(), moved by the controller
};

// Their index fixes each run's seeds (see run_once), so a --fairness that
// picks some of them reruns those with the seeds they had among all.
inline constexpr std::array<Mode, 4> modes{{
    {"fifo", admit::Fairness::fifo, 1000ms, 100, false},
    {"barging", admit::Fairness::barging, 1000ms, 100, false},
    // Windows close on time within 2 ms, in the middle of the traffic that
    // passes; and on the pool's own clock (lanes_clock nullptr).
    {"lanes 2 ms 100 %", admit::Fairness::lanes, 2ms, 100, false},
    // Windows close mostly on the share (at most 10 MiB of a 40 MiB head),
    // on time only when the controller jumps the clock: so requests too
    // large for what is left of the share are kept back while smaller ones
    // still pass.
    {"lanes 500 ms 25 % fake clock", admit::Fairness::lanes, 500ms, 25, true},
}};

// The fake clock: what time it is, and how often the pool asked. Never
// reset: a steady clock does not go back, not even between two pools.
inline std::atomic<std::int64_t> lanes_clock_ns{0};
inline std::atomic<std::uint64_t> lanes_clock_reads{0};

inline Clock::time_point lanes_clock() noexcept {
  // relaxed: the pool reads it under its mutex, and any value read is a
  // time the clock has shown; nothing else is ordered by it.
  lanes_clock_reads.fetch_add(1, std::memory_order_relaxed);
  return Clock::time_point{std::chrono::duration_cast<Clock::duration>(
      std::chrono::nanoseconds{lanes_clock_ns.load(std::memory_order_relaxed)})};
}

/// A random step for the fake clock, of the sizes that matter to a window of
/// `wait`: none (windows then close on the share only), small ones that add
/// up, one just short of the wait (a window opened just before it stays
/// open by 1 ns), exactly the wait (the boundary: that window closes) and
/// beyond it (every open window closes).
inline std::chrono::nanoseconds lanes_clock_step(std::mt19937_64& rng,
                                                 std::chrono::milliseconds wait) {
  const auto w = std::chrono::nanoseconds{wait};
  const auto span = static_cast<std::uint64_t>(w.count());
  const auto ns = [](std::uint64_t n) {
    return std::chrono::nanoseconds{static_cast<std::int64_t>(n)};
  };
  switch (rng() % 8) {
    case 0:
    case 1:
    case 2:
      return 0ns;
    case 3:
    case 4:
      return ns(1 + rng() % (span / 8));
    case 5:
      return w - 1ns;
    case 6:
      return w;
    default:
      return w + ns(rng() % (2 * span));
  }
}

}  // namespace admit_chaos

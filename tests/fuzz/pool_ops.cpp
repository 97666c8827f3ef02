// pool_ops.cpp - a fuzzer-chosen sequence of single-threaded SlotPool
// operations, checked step by step against a plain model of the contract.
//
// The input chooses a pool (slots, budget, flat policy percent, FIFO, barging
// or lanes, max_waiters, tracking; for lanes max_head_wait, max_pass_percent
// and the clock) and then up to 256 operations: try_acquire, acquire
// (answered at once: admitted, refused, or an expired deadline), async_acquire
// without a deadline, with a far one and with one the timer thread lets
// expire, cancel, release, moves between holders, try_grow, shrink,
// set_label, close, set_memory_budget (invalid values included),
// set_pressure, wait_idle, the release of a stale bitwise copy and, for
// lanes, time going by on a fake lanes clock. A partition run also starts
// with 0..4 partitions (partition.hpp; guarantee and ceiling percents from
// the input) and has two operations more: add_partition mid-run (valid, or
// refused: a taken name, a bad ceiling or guarantee, guarantees past 100 %)
// and bypass(); each of its requests names a partition or none.
//
// The model (pool_model.hpp) is the contract written as the simplest code
// that could keep it: counters, a list of waiters in queue order, the refusal
// order of pool.hpp, and for lanes the head's window (when the head became
// the head, the bytes that passed it). After every operation the fuzzer
// (pool_run.hpp, pool_check.hpp) compares everything observable: stats()
// (every field, peaks and refusal counts included), every reservation (held
// or not, bytes, declared size, a slot index unique among the held ones),
// every async request (its handler called exactly once when, and only when,
// the model answered it, with the same reservation or the same Rejection,
// every figure included), head_waiter_needs(), reservations() when
// tracking is on, and each partition's figures (stats(p) and
// partition_stats(), every field) with the sums they keep
// (pool_partitions.hpp). The lanes window is not observable itself: every
// admission and refusal it decides is. At the end it closes the pool, gives
// everything back and checks that the pool is empty. Any difference aborts,
// naming what differed.
//
// Determinism: one thread drives the pool, so every answer is the model's,
// except the timer thread's: an expiring request is only made when the model
// says it will queue, and the fuzzer then waits (bounded) for its handler,
// with nothing else changing in between. Lanes windows run on a fake clock
// that only the input moves; a lanes run on the real clock (lanes_clock
// nullptr) only gets a max_head_wait of 0 or of an hour, whose windows never
// depend on how fast the run goes.
//
// Input layout (ADMIT_FUZZ_TRACE=1 prints each operation): the pool's bytes
// as read in LLVMFuzzerTestOneInput below, then one byte per operation
// (modulo 17; modulo 18 in a lanes run on the fake clock, 17 moving it)
// followed by that operation's own bytes. Inputs written before lanes decode
// as they did, except those whose fairness byte is 2 modulo 4: once FIFO, now
// lanes (and still a valid run). Partitions: bits 1 and 2 of the tracking
// byte (bit 0) both set make a partition run, which reads after the lanes
// bytes one byte for the number of partitions (modulo 5) and for each a
// ceiling (a byte, 0 modulo 4: 100 %, else one more: 1..100) and a guarantee
// (a byte, 0 modulo 3: none, else one more, up to the ceiling and what is
// left of 100 %, unless that is 0); its operation byte is modulo 19 (20 with
// the lanes clock), the last two add_partition and bypass, and try_acquire,
// acquire and async_acquire read one byte more, the partition (modulo
// partitions + 1; 0: none). Older inputs whose tracking byte has both bits set now decode as
// partition runs (still valid ones); the others as they did.
// tests/fuzz/corpus/pool_ops/partitions_* are seeds written for this layout.
#include <admit/pool.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "fuzz_input.hpp"
#include "pool_run.hpp"

namespace {

/// max_head_wait for a lanes run: none (FIFO), a few milliseconds, up to a
/// second, the default, or longer than any run.
std::chrono::milliseconds head_wait(admit_fuzz::FuzzInput& in) {
  switch (in.byte() % 5) {
    case 0:
      return std::chrono::milliseconds{0};
    case 1:
      return std::chrono::milliseconds{in.in_range(1, 10)};
    case 2:
      return std::chrono::milliseconds{in.in_range(0, 1000)};
    case 3:
      return admit::PoolConfig{}.max_head_wait;
    default:
      return std::chrono::hours{1};
  }
}

/// The partitions a partition run starts with: 0..4 valid ones, each a
/// ceiling (1..100, often 100) and a guarantee (often 0, else up to the
/// ceiling and what the others left of 100 %).
std::vector<admit::PartitionConfig> initial_partitions(admit_fuzz::FuzzInput& in) {
  std::vector<admit::PartitionConfig> all(in.byte() % 5);
  std::uint32_t room = 100;
  for (admit::PartitionConfig& c : all) {
    c.ceiling_percent = in.byte() % 4 == 0 ? 100 : static_cast<std::uint32_t>(in.in_range(1, 100));
    c.guarantee_percent =
        in.byte() % 3 == 0
            ? 0
            : static_cast<std::uint32_t>(in.in_range(0, std::min(room, c.ceiling_percent)));
    room -= c.guarantee_percent;
  }
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  admit_fuzz::FuzzInput in{data, size};
  admit::PoolConfig config;
  // Up to 70 slots: past 64 the slot bitmap takes a second word.
  config.slots =
      static_cast<std::uint32_t>(in.byte() % 8 == 0 ? in.in_range(1, 70) : in.in_range(1, 6));
  config.memory_budget = in.byte() % 8 == 0
                             ? admit::PoolConfig::max_memory_budget - in.in_range(0, 4096)
                             : in.in_range(1, 4096);
  config.max_waiters = static_cast<std::uint32_t>(in.byte() % 4 == 0 ? in.in_range(1, 4) : 0);
  // Odd: barging, as when this byte was a flag; even: FIFO, or lanes with bit 1.
  const std::uint8_t fairness = in.byte();
  config.fairness = (fairness & 1U) != 0   ? admit::Fairness::barging
                    : (fairness & 2U) != 0 ? admit::Fairness::lanes
                                           : admit::Fairness::fifo;
  // Bit 0: tracking; bits 1 and 2 both set: a partition run (see the top).
  const std::uint8_t tracking = in.byte();
  config.track_reservations = (tracking & 1U) != 0;
  const bool partition_run = (tracking & 6U) == 6U;
  const auto percent = static_cast<std::uint32_t>(in.byte() % 2 == 0 ? 100 : in.in_range(0, 100));

  const bool timers = in.byte() % 8 == 0;

  // Lanes only, so that the other runs read their operations where they did.
  if (config.fairness == admit::Fairness::lanes) {
    const bool real_clock = in.byte() % 8 == 0;
    config.max_head_wait = head_wait(in);
    switch (in.byte() % 4) {
      case 0:
        config.max_pass_percent = 0;  // FIFO
        break;
      case 1:
        config.max_pass_percent = 100;
        break;
      default:
        config.max_pass_percent = static_cast<std::uint32_t>(in.in_range(0, 100));
        break;
    }
    // The real clock only where a window never depends on it (see the top).
    const bool predictable = config.max_head_wait == std::chrono::milliseconds{0} ||
                             config.max_head_wait == std::chrono::hours{1};
    config.lanes_clock = real_clock && predictable ? nullptr : &pool_fuzz::fake_lanes_clock;
  }

  // Partition runs only, so that the other runs read their operations where they did.
  std::optional<std::vector<admit::PartitionConfig>> partitions;
  if (partition_run) partitions = initial_partitions(in);

  pool_fuzz::Run run{in, config, percent, timers, partitions};
  run.operations();
  run.finish();
  return 0;
}

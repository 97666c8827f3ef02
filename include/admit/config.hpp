// admit/config.hpp - what a SlotPool may hand out.
//
// The pool keeps bytes in use and slots in use together in one 64-bit atomic
// word (see detail/packed_state.hpp), which bounds both: at most
// PoolConfig::max_memory_budget bytes (8 TiB - 1) and PoolConfig::max_slots
// slots (1,048,575). A configuration outside those limits is refused when the
// pool is built, never truncated.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "detail/packed_state.hpp"

namespace admit {

/// Who goes first once requests wait for room.
enum class Fairness : std::uint8_t {
  /// First come, first served (the default). Once anyone waits, try_acquire,
  /// try_grow and new waiters queue behind the head: a 150 MiB upload is
  /// admitted as soon as 150 MiB are free, however many small uploads arrive
  /// meanwhile. The cost is head-of-line blocking: small uploads that would fit
  /// now wait (or are refused) while the head waits for its bytes.
  fifo,
  /// Whoever fits goes: try_acquire ignores the queue, and a release admits
  /// every waiter that fits, in queue order, skipping those that do not. Small
  /// uploads flow and the pool stays busier, but a large upload can wait as
  /// long as smaller ones keep arriving (starvation). Use it only when that
  /// is acceptable, for example when every upload has a short deadline.
  barging,
};

/// Members are declared in this order so that designated initializers work:
///     admit::PoolConfig{.memory_budget = 200 * admit::MiB, .slots = 16}
struct PoolConfig {
  static constexpr std::uint64_t max_memory_budget = detail::packed::max_bytes;
  static constexpr std::uint32_t max_slots = detail::packed::max_slots;

  std::uint64_t memory_budget = 0;     ///< bytes all reservations may hold together; 1..max
  std::uint32_t slots = 0;             ///< uploads that may run at once; 1..max_slots
  std::uint32_t max_waiters = 0;       ///< requests that may wait at once; 0 = unlimited
  Fairness fairness = Fairness::fifo;  ///< see Fairness
};

namespace detail {

[[noreturn]] inline void throw_invalid_config(const char* field, const std::string& limit,
                                              std::uint64_t got) {
  throw std::invalid_argument(std::string{"admit::PoolConfig::"} + field + " must be " + limit +
                              ", got " + std::to_string(got));
}

inline void validate_memory_budget(std::uint64_t memory_budget) {
  if (memory_budget == 0 || memory_budget > PoolConfig::max_memory_budget) {
    throw_invalid_config("memory_budget",
                         "in 1.." + std::to_string(PoolConfig::max_memory_budget) + " bytes",
                         memory_budget);
  }
}

/// Throws std::invalid_argument naming the first field that is out of range.
inline void validate(const PoolConfig& config) {
  validate_memory_budget(config.memory_budget);
  if (config.slots == 0 || config.slots > PoolConfig::max_slots) {
    throw_invalid_config("slots", "in 1.." + std::to_string(PoolConfig::max_slots), config.slots);
  }
  if (config.fairness != Fairness::fifo && config.fairness != Fairness::barging) {
    throw_invalid_config("fairness", "Fairness::fifo or Fairness::barging",
                         static_cast<std::uint64_t>(config.fairness));
  }
}

}  // namespace detail
}  // namespace admit

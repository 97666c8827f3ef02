// admit/config.hpp - what a SlotPool may hand out.
//
// The pool keeps bytes in use and slots in use together in one 64-bit atomic
// word (see detail/packed_state.hpp), which bounds both: at most
// PoolConfig::max_memory_budget bytes (8 TiB - 1) and PoolConfig::max_slots
// slots (1,048,575). A configuration outside those limits is refused when the
// pool is built, never truncated: SlotPool's constructor throws
// std::invalid_argument naming the field (built without exceptions, it prints
// the same message and aborts; validation_error() checks first).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "detail/failure.hpp"
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
  /// Keep a record of every live reservation for SlotPool::reservations()
  /// and admit::describe: 64 bytes per slot (reservation_record.hpp).
  bool track_reservations = false;
};

namespace detail {

inline std::string config_error(const char* field, const std::string& limit, std::uint64_t got) {
  return std::string{"admit::PoolConfig::"} + field + " must be " + limit + ", got " +
         std::to_string(got);
}

inline std::optional<std::string> memory_budget_error(std::uint64_t memory_budget) {
  if (memory_budget == 0 || memory_budget > PoolConfig::max_memory_budget) {
    return config_error("memory_budget",
                        "in 1.." + std::to_string(PoolConfig::max_memory_budget) + " bytes",
                        memory_budget);
  }
  return std::nullopt;
}

}  // namespace detail

/// Why a SlotPool would refuse `config`, in the words of the
/// std::invalid_argument it would throw, naming the first field out of range
/// ("admit::PoolConfig::slots must be in 1..1048575, got 0"); nullopt when
/// the configuration is valid. A program built without exceptions, where an
/// invalid configuration aborts, checks with this first.
[[nodiscard]] inline std::optional<std::string> validation_error(const PoolConfig& config) {
  if (auto error = detail::memory_budget_error(config.memory_budget)) return error;
  if (config.slots == 0 || config.slots > PoolConfig::max_slots) {
    return detail::config_error("slots", "in 1.." + std::to_string(PoolConfig::max_slots),
                                config.slots);
  }
  if (config.fairness != Fairness::fifo && config.fairness != Fairness::barging) {
    return detail::config_error("fairness", "Fairness::fifo or Fairness::barging",
                                static_cast<std::uint64_t>(config.fairness));
  }
  return std::nullopt;
}

namespace detail {

/// Throws std::invalid_argument (without exceptions: aborts) naming the
/// field, unless `memory_budget` is a valid budget.
inline void validate_memory_budget(std::uint64_t memory_budget) {
  if (auto error = memory_budget_error(memory_budget)) fail_invalid_argument(*error);
}

/// Returns `config` if it is valid; otherwise throws std::invalid_argument
/// (without exceptions: aborts) with validation_error(config).
inline const PoolConfig& validated(const PoolConfig& config) {
  if (auto error = validation_error(config)) fail_invalid_argument(*error);
  return config;
}

}  // namespace detail
}  // namespace admit

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

#include <chrono>
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
  /// FIFO with bounded passing. While a head waits, a request that fits now
  /// may go past it (try_acquire, try_grow, and waiters behind it when a
  /// release frees room) until the head's passing window closes; then nobody
  /// passes, as in FIFO. A head's window opens when it becomes the head and
  /// closes once PoolConfig::max_head_wait has gone by or once the requests
  /// that passed it hold max_pass_percent of the bytes the head needs (a
  /// request that would take them beyond that share does not pass; a head
  /// that needs no bytes has no share, so nobody passes it).
  ///
  /// Guarantee: a head is admitted as soon as, after its window closed, the
  /// reservations held at that moment have given back what it needs; with the
  /// budget unchanged and no pressure, that is at the latest when all of them
  /// have been given back. So if no upload holds its reservation longer than
  /// T, every head is admitted within max_head_wait + T of becoming the head.
  /// Passers take at most max_pass_percent of the head's bytes in all, never
  /// more. Small uploads flow while a large one waits, and the large one is
  /// not starved.
  lanes,
};

/// Where Fairness::lanes reads the time; nullptr means steady_clock::now.
/// A plain function pointer, so a simulator or a test can run lanes on its
/// own clock without the pool storing anything that allocates.
using LanesClock = std::chrono::steady_clock::time_point (*)() noexcept;

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
  /// Fairness::lanes: how long requests may pass a head, from when it became
  /// the head; 0 makes lanes behave as FIFO. At least 0.
  std::chrono::milliseconds max_head_wait{1000};
  /// Fairness::lanes: the share of the head's bytes that the requests passing
  /// it may take in all, in percent; 0 makes lanes behave as FIFO. 0..100.
  std::uint32_t max_pass_percent = 100;
  /// Fairness::lanes: the clock windows are measured on (see LanesClock).
  LanesClock lanes_clock = nullptr;
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
  if (config.fairness != Fairness::fifo && config.fairness != Fairness::barging &&
      config.fairness != Fairness::lanes) {
    return detail::config_error("fairness", "Fairness::fifo, Fairness::barging or Fairness::lanes",
                                static_cast<std::uint64_t>(config.fairness));
  }
  if (config.max_head_wait.count() < 0) {
    return std::string{"admit::PoolConfig::max_head_wait must be at least 0 ms, got "} +
           std::to_string(config.max_head_wait.count()) + " ms";
  }
  if (config.max_pass_percent > 100) {
    return detail::config_error("max_pass_percent", "in 0..100", config.max_pass_percent);
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

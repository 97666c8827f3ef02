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

/// Members are declared in this order so that designated initializers work:
///     admit::PoolConfig{.memory_budget = 200 * admit::MiB, .slots = 16}
struct PoolConfig {
  static constexpr std::uint64_t max_memory_budget = detail::packed::max_bytes;
  static constexpr std::uint32_t max_slots = detail::packed::max_slots;

  std::uint64_t memory_budget = 0;  ///< bytes all reservations together may hold; 1..max
  std::uint32_t slots = 0;          ///< uploads that may run at once; 1..max_slots
};

namespace detail {

[[noreturn]] inline void throw_invalid_config(const char* field, const std::string& limit,
                                              std::uint64_t got) {
  throw std::invalid_argument(std::string{"admit::PoolConfig::"} + field + " must be " + limit +
                              ", got " + std::to_string(got));
}

/// Throws std::invalid_argument naming the first field that is out of range.
inline void validate(const PoolConfig& config) {
  if (config.memory_budget == 0 || config.memory_budget > PoolConfig::max_memory_budget) {
    throw_invalid_config("memory_budget",
                         "in 1.." + std::to_string(PoolConfig::max_memory_budget) + " bytes",
                         config.memory_budget);
  }
  if (config.slots == 0 || config.slots > PoolConfig::max_slots) {
    throw_invalid_config("slots", "in 1.." + std::to_string(PoolConfig::max_slots), config.slots);
  }
}

}  // namespace detail
}  // namespace admit

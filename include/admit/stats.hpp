// admit/stats.hpp - a snapshot of a pool's counters.
//
// Each field is read on its own with relaxed loads, so under concurrent use
// the snapshot is approximate: fields may come from slightly different moments
// (bytes_in_use and slots_in_use always come from the same moment: they share
// one atomic word). With no concurrent activity every figure is exact.
//
// double_releases counts give-backs the pool refused: a reservation, or a
// copy of one, giving back a claim that was given back already
// (reservation.hpp). They change no other figure: bytes_in_use and slots_in_use
// stay exact, and admitted counts each claim once however often it comes
// back (see detail/slot_bitmap.hpp for what is detected, and the limits).
#pragma once

#include <cstdint>

#include "rejection.hpp"

namespace admit {

/// Refusals counted by reason. Only admissions count here: a refused
/// SlotReservation::try_grow is reported to its caller, not counted.
struct RejectionCounts {
  std::uint64_t too_large = 0;
  std::uint64_t no_slot = 0;
  std::uint64_t no_memory = 0;
  std::uint64_t queue_full = 0;
  std::uint64_t timeout = 0;
  std::uint64_t cancelled = 0;
  std::uint64_t closed = 0;
  std::uint64_t pressure = 0;

  [[nodiscard]] constexpr std::uint64_t operator[](Reason reason) const noexcept {
    switch (reason) {
      case Reason::too_large:
        return too_large;
      case Reason::no_slot:
        return no_slot;
      case Reason::no_memory:
        return no_memory;
      case Reason::queue_full:
        return queue_full;
      case Reason::timeout:
        return timeout;
      case Reason::cancelled:
        return cancelled;
      case Reason::closed:
        return closed;
      case Reason::pressure:
        return pressure;
    }
    return 0;
  }

  [[nodiscard]] constexpr std::uint64_t total() const noexcept {
    return too_large + no_slot + no_memory + queue_full + timeout + cancelled + closed + pressure;
  }

  friend constexpr bool operator==(const RejectionCounts&, const RejectionCounts&) = default;
};

struct Stats {
  std::uint64_t memory_budget = 0;      ///< the budget in force
  std::uint32_t slots = 0;              ///< the slot count
  std::uint64_t bytes_in_use = 0;       ///< reserved by live reservations
  std::uint32_t slots_in_use = 0;       ///< held by live reservations
  std::uint64_t peak_bytes_in_use = 0;  ///< highest bytes_in_use since construction
  std::uint32_t peak_slots_in_use = 0;  ///< highest slots_in_use since construction
  std::uint64_t waiters = 0;            ///< requests waiting for room now
  std::uint64_t admitted = 0;           ///< reservations handed out since construction
  RejectionCounts rejected{};           ///< refused admissions since construction
  /// Reservations given back more than once since construction: stale or
  /// bitwise copies, which the pool refused, so the figures above stay exact. Nonzero means a bug
  /// in the program (or its compiler: GCC 12 and `co_return c ? co_await x : y;`), not in the load.
  /// After the members above, so that their designated initializers still work.
  std::uint64_t double_releases = 0;
  /// Bytes the waiting requests need together (a waiter's needed bytes count
  /// from when it queues until it is answered). Kept on the slow path only.
  std::uint64_t waiting_bytes = 0;
  /// Requests that skipped admission (SlotPool::bypass) since construction.
  std::uint64_t bypassed = 0;

  friend constexpr bool operator==(const Stats&, const Stats&) = default;
};

}  // namespace admit

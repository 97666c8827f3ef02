// admit/reservation_record.hpp - what a pool knows about one live reservation.
//
// With PoolConfig::track_reservations on, SlotPool::reservations() answers
// "who holds what, since when" with one ReservationRecord per live
// reservation, and admit::describe (fmt.hpp) turns that into a diagnosis.
//
// Cost when on: 64 bytes per slot, allocated when the pool is built; on each
// admission a clock read and one cache line written; on each try_grow,
// shrink and set_label one line written; on release one line written. Off
// (the default), the admission path pays one predictable branch and nothing
// else. The README's benchmark figures say what that is in instructions.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace admit {

/// One live reservation, as SlotPool::reservations() saw it.
struct ReservationRecord {
  std::uint32_t slot = 0;                               ///< SlotReservation::slot()
  std::uint64_t declared_size = 0;                      ///< the size it was admitted for
  std::uint64_t bytes = 0;                              ///< bytes held, grows and shrinks included
  std::chrono::steady_clock::time_point admitted_at{};  ///< when it was handed out
  std::string label;  ///< SlotReservation::set_label, at most max_label_size bytes

  /// Labels longer than this are cut, at a UTF-8 character boundary.
  static constexpr std::size_t max_label_size = 32;

  friend bool operator==(const ReservationRecord&, const ReservationRecord&) = default;
};

}  // namespace admit

// admit/rejection.hpp - why an upload was refused, with the figures to say so.
//
// A refusal is an answer, not an error: the handler turns it into a protocol
// reply. Reason::too_large is the one permanent reason (the request is larger
// than the whole budget and can never fit: HTTP 413, WebSocket close 1009);
// every other reason is transient and worth a retry later (HTTP 503 with
// Retry-After, WebSocket close 1013).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace admit {

enum class Reason : std::uint8_t {
  too_large,   ///< needs more than the whole memory budget: can never succeed
  no_slot,     ///< every slot is in use
  no_memory,   ///< the bytes do not fit in what is free now
  queue_full,  ///< too many requests are already waiting
  timeout,     ///< waited until the deadline without room
  cancelled,   ///< the waiter was cancelled
  closed,      ///< the pool is closed (shutting down)
  pressure,    ///< the machine is short of memory: nobody new is admitted (set_pressure)
};

/// Number of enumerators in Reason, for tables indexed by reason.
inline constexpr std::size_t reason_count = 8;

/// True only for Reason::too_large: retrying the same request cannot help.
[[nodiscard]] constexpr bool is_permanent(Reason reason) noexcept {
  return reason == Reason::too_large;
}

/// The enumerator's name ("too_large", ...), stable for logs and metric labels.
[[nodiscard]] constexpr std::string_view to_string(Reason reason) noexcept {
  switch (reason) {
    case Reason::too_large:
      return "too_large";
    case Reason::no_slot:
      return "no_slot";
    case Reason::no_memory:
      return "no_memory";
    case Reason::queue_full:
      return "queue_full";
    case Reason::timeout:
      return "timeout";
    case Reason::cancelled:
      return "cancelled";
    case Reason::closed:
      return "closed";
    case Reason::pressure:
      return "pressure";
  }
  return "unknown";
}

/// Which limit refused a request: the whole pool's, or the partition's it
/// asked in (partition.hpp).
enum class Limit : std::uint8_t {
  pool,       ///< the pool's budget, slots, queue or state
  partition,  ///< the partition's ceiling; the figures are the partition's
};

[[nodiscard]] constexpr std::string_view to_string(Limit limit) noexcept {
  return limit == Limit::partition ? "partition" : "pool";
}

/// A refused request and the figures of the limit that refused it (the
/// pool's, unless `limit` says the partition's) at that moment.
/// For a refused SlotReservation::try_grow, `declared_size` is the
/// reservation's and `needed_bytes` is the extra amount asked for.
struct Rejection {
  Reason reason;
  std::uint64_t declared_size;    ///< the upload's declared size in bytes
  std::uint64_t needed_bytes;     ///< what the policy asked to reserve
  std::uint64_t available_bytes;  ///< budget minus bytes in use (0 if over budget)
  std::uint64_t memory_budget;    ///< the whole budget in force
  std::uint32_t slots_in_use;
  std::uint32_t slots;
  /// Limit::partition: refused by the partition's ceiling, and then
  /// available_bytes, memory_budget, slots_in_use and slots are the
  /// partition's (what it may still take, its ceiling, its slots in use, its
  /// slot ceiling). Limit::pool otherwise.
  Limit limit = Limit::pool;

  friend constexpr bool operator==(const Rejection&, const Rejection&) = default;
};

}  // namespace admit

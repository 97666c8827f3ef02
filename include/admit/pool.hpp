// admit/pool.hpp - SlotPool: admission control for uploads.
//
// A SlotPool owns a memory budget and a number of slots. try_acquire(size)
// asks the policy how many bytes an upload of that declared size needs and,
// if one slot and those bytes are free, hands out a SlotReservation holding
// both; otherwise it answers with a Rejection that says exactly why.
//
// Guarantees
//   - Bytes in use never exceed the budget and slots in use never exceed the
//     slot count (a slot and its bytes are taken in one CAS).
//   - A request larger than the whole budget is refused at once with
//     Reason::too_large.
//   - try_acquire, stats() and every SlotReservation operation are lock-free,
//     allocation-free and noexcept; they may be called from any thread.
//   - Every slot and byte handed out comes back exactly once, when its
//     reservation is released, moved over or destroyed.
// Refusal order: too_large, then no_slot, then no_memory.
//
// The pool must outlive its reservations, and is neither copyable nor movable
// (reservations point at it). Destroying it while reservations are held is a
// bug, caught by an assertion in debug builds.
#pragma once

#include <cstdint>
#include <utility>

#include "admission.hpp"
#include "config.hpp"
#include "detail/pool_core.hpp"
#include "policy.hpp"
#include "reservation.hpp"
#include "stats.hpp"

namespace admit {

template <MemoryPolicy Policy = DefaultPolicy>
class SlotPool {
 public:
  using policy_type = Policy;

  /// Throws std::invalid_argument naming the field when `config` is invalid
  /// (see PoolConfig for the limits).
  explicit SlotPool(const PoolConfig& config, Policy policy = Policy{})
      : policy_{std::move(policy)}, core_{config} {}

  SlotPool(const SlotPool&) = delete;
  SlotPool& operator=(const SlotPool&) = delete;

  /// Admits an upload of `declared_size` bytes now, or refuses it: never waits.
  [[nodiscard]] Admission try_acquire(std::uint64_t declared_size) noexcept {
    const std::uint64_t needed = policy_.bytes_for(declared_size);
    const detail::CoreAdmission answer = core_.try_acquire(declared_size, needed);
    if (!answer.admitted) return Admission{answer.rejection};
    return Admission{detail::ReservationAccess::adopt(core_, needed, declared_size, answer.slot)};
  }

  /// What an upload of `declared_size` bytes would reserve under this pool's policy.
  [[nodiscard]] std::uint64_t bytes_for(std::uint64_t declared_size) const noexcept {
    return policy_.bytes_for(declared_size);
  }

  /// A snapshot of the counters; approximate while other threads use the pool.
  [[nodiscard]] Stats stats() const noexcept { return core_.stats(); }

  [[nodiscard]] std::uint64_t memory_budget() const noexcept { return core_.memory_budget(); }
  [[nodiscard]] std::uint32_t slots() const noexcept { return core_.slots(); }
  [[nodiscard]] const Policy& policy() const noexcept { return policy_; }

 private:
  Policy policy_;
  detail::PoolCore core_;
};

template <MemoryPolicy Policy>
SlotPool(const PoolConfig&, Policy) -> SlotPool<Policy>;

}  // namespace admit

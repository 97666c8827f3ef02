// admit/detail/pool_core.hpp - the policy-free heart of a SlotPool.
//
// SlotPool<Policy> turns a declared size into bytes and forwards here, so this
// class (and SlotReservation, which points at it) is one type for every policy.
//
// State and invariants
//   state_   one atomic word: bytes in use | slots in use (packed_state.hpp).
//            Every admission adds one slot and its bytes in one CAS that first
//            checks both limits, so slots(state_) <= slots_ and
//            bytes(state_) <= the budget the CAS checked against, always.
//   bitmap_  which slot indices are held; bits set <= slots(state_) (see
//            slot_bitmap.hpp for the ordering that keeps that true).
// Progress
//   Admission is a CAS loop on state_ (lock-free: a failed CAS means another
//   thread's succeeded) followed by SlotBitmap::claim (lock-free). Release is
//   one fetch_and and one fetch_sub (wait-free). Neither allocates nor throws.
// Memory ordering
//   Giving capacity back is a release RMW on state_; taking it is an acquire
//   CAS. So, as with any semaphore, whatever a previous holder did before it
//   released happens-before the admission that reuses its capacity. Everything
//   else (statistics, the budget value) is relaxed: it orders nothing.
#pragma once

#include <array>
#include <atomic>
#include <cassert>
#include <cstdint>
#include <optional>

#include "../config.hpp"
#include "../rejection.hpp"
#include "../stats.hpp"
#include "packed_state.hpp"
#include "slot_bitmap.hpp"

namespace admit::detail {

/// What PoolCore::try_acquire answers: a slot index, or the refusal.
struct CoreAdmission {
  bool admitted;
  std::uint32_t slot;
  Rejection rejection;
};

class alignas(cache_line_size) PoolCore {
 public:
  explicit PoolCore(const PoolConfig& config)
      : budget_{(validate(config), config.memory_budget)},
        slots_{config.slots},
        bitmap_{config.slots} {}

  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;

  ~PoolCore() {
    // Reservations point at this object: destroying it first leaves them
    // dangling. That is a bug in the caller, reported here in debug builds.
    assert(packed::slots(state_.load(std::memory_order_relaxed)) == 0 &&
           "admit: SlotPool destroyed while reservations are still held");
  }

  /// Takes one slot and `needed` bytes together, or says why not.
  [[nodiscard]] CoreAdmission try_acquire(std::uint64_t declared_size,
                                          std::uint64_t needed) noexcept {
    // relaxed: the budget is a plain setting that orders no other data.
    const std::uint64_t budget = budget_.load(std::memory_order_relaxed);
    // relaxed: only a first guess, validated by the CAS below.
    std::uint64_t word = state_.load(std::memory_order_relaxed);
    if (needed > budget) return refuse(Reason::too_large, declared_size, needed, word, budget);
    for (;;) {
      if (packed::slots(word) >= slots_) {
        return refuse(Reason::no_slot, declared_size, needed, word, budget);
      }
      if (needed > available(word, budget)) {
        return refuse(Reason::no_memory, declared_size, needed, word, budget);
      }
      const std::uint64_t taken = word + packed::one_slot + needed;
      // acquire on success: pairs with the release RMWs that gave capacity
      // back (release(), give_back()). relaxed on failure: `word` is reloaded
      // and every check above runs again on it.
      if (state_.compare_exchange_weak(word, taken, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        note_peaks(taken);
        return {true, bitmap_.claim(), {}};
      }
    }
  }

  /// Adds `extra` bytes to a reservation that holds `held`; nullopt = grown.
  [[nodiscard]] std::optional<Rejection> try_grow(std::uint64_t held, std::uint64_t declared_size,
                                                  std::uint64_t extra) noexcept {
    // relaxed: as in try_acquire.
    const std::uint64_t budget = budget_.load(std::memory_order_relaxed);
    // relaxed: a first guess, validated by the CAS below.
    std::uint64_t word = state_.load(std::memory_order_relaxed);
    if (extra > budget || held > budget - extra) {
      return rejection(Reason::too_large, declared_size, extra, word, budget);
    }
    for (;;) {
      if (extra > available(word, budget)) {
        return rejection(Reason::no_memory, declared_size, extra, word, budget);
      }
      // acquire/relaxed: as in try_acquire.
      if (state_.compare_exchange_weak(word, word + extra, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        note_peaks(word + extra);
        return std::nullopt;
      }
    }
  }

  /// Gives back `bytes` of a reservation that keeps its slot.
  void give_back(std::uint64_t bytes) noexcept {
    // release: pairs with the acquire CAS of whoever takes these bytes next.
    state_.fetch_sub(bytes, std::memory_order_release);
  }

  /// Gives back a whole reservation: its slot index, its slot and its bytes.
  void release(std::uint32_t slot, std::uint64_t bytes) noexcept {
    // The index goes back before the slot does; slot_bitmap.hpp says why.
    bitmap_.release(slot);
    // release: pairs with the acquire CAS of the next admission.
    state_.fetch_sub(packed::one_slot + bytes, std::memory_order_release);
  }

  [[nodiscard]] Stats stats() const noexcept {
    // All relaxed: a snapshot of counters that order nothing (stats.hpp).
    const std::uint64_t word = state_.load(std::memory_order_relaxed);
    Stats s;
    s.memory_budget = budget_.load(std::memory_order_relaxed);
    s.slots = slots_;
    s.bytes_in_use = packed::bytes(word);
    s.slots_in_use = packed::slots(word);
    s.peak_bytes_in_use = peak_bytes_.load(std::memory_order_relaxed);
    s.peak_slots_in_use = peak_slots_.load(std::memory_order_relaxed);
    s.waiters = 0;
    s.admitted = bitmap_.claims();
    s.rejected.too_large = rejected(Reason::too_large);
    s.rejected.no_slot = rejected(Reason::no_slot);
    s.rejected.no_memory = rejected(Reason::no_memory);
    s.rejected.queue_full = rejected(Reason::queue_full);
    s.rejected.timeout = rejected(Reason::timeout);
    s.rejected.cancelled = rejected(Reason::cancelled);
    s.rejected.closed = rejected(Reason::closed);
    return s;
  }

  [[nodiscard]] std::uint64_t memory_budget() const noexcept {
    // relaxed: a setting, see try_acquire.
    return budget_.load(std::memory_order_relaxed);
  }

  [[nodiscard]] std::uint32_t slots() const noexcept { return slots_; }

  /// Whether slot index `slot` is held now (a snapshot, for tests).
  [[nodiscard]] bool slot_is_held(std::uint32_t slot) const noexcept {
    return slot < slots_ && bitmap_.is_held(slot);
  }

 private:
  static std::uint64_t available(std::uint64_t word, std::uint64_t budget) noexcept {
    const std::uint64_t in_use = packed::bytes(word);
    return in_use < budget ? budget - in_use : 0;
  }

  Rejection rejection(Reason reason, std::uint64_t declared_size, std::uint64_t needed,
                      std::uint64_t word, std::uint64_t budget) const noexcept {
    return Rejection{reason, declared_size,       needed, available(word, budget),
                     budget, packed::slots(word), slots_};
  }

  CoreAdmission refuse(Reason reason, std::uint64_t declared_size, std::uint64_t needed,
                       std::uint64_t word, std::uint64_t budget) noexcept {
    // relaxed: a statistic.
    rejected_[static_cast<std::size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
    return {false, 0, rejection(reason, declared_size, needed, word, budget)};
  }

  std::uint64_t rejected(Reason reason) const noexcept {
    return rejected_[static_cast<std::size_t>(reason)].load(std::memory_order_relaxed);
  }

  void note_peaks(std::uint64_t word) noexcept {
    raise_to(peak_bytes_, packed::bytes(word));
    raise_to(peak_slots_, packed::slots(word));
  }

  template <class T>
  static void raise_to(std::atomic<T>& peak, T value) noexcept {
    // relaxed: a statistic. Once the peak is reached this is a plain load of a
    // line nobody writes, so it adds no contention to the fast path.
    T seen = peak.load(std::memory_order_relaxed);
    while (value > seen && !peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
    }
  }

  // The contended word gets a cache line of its own.
  alignas(cache_line_size) std::atomic<std::uint64_t> state_{0};
  // Read on every admission, written only by configuration changes.
  alignas(cache_line_size) std::atomic<std::uint64_t> budget_;
  const std::uint32_t slots_;
  SlotBitmap bitmap_;
  // Written only while a peak is being raised.
  alignas(cache_line_size) std::atomic<std::uint64_t> peak_bytes_{0};
  std::atomic<std::uint32_t> peak_slots_{0};
  // Written only on refusals.
  alignas(cache_line_size) std::array<std::atomic<std::uint64_t>, reason_count> rejected_{};
};

}  // namespace admit::detail

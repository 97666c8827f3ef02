// admit/reservation.hpp - the RAII handle an admitted upload holds.
//
// A SlotReservation owns one slot and some bytes of a pool's budget from the
// moment it is admitted until it is released, moved from or destroyed; its
// destructor gives back exactly what it holds, once. It is move-only, does not
// depend on the pool's policy type, and none of its operations throws or
// allocates. The pool must outlive every reservation it hands out.
//
// Given back twice
//   A reservation is its pool, its bytes and its claim: the slot index and
//   that slot's generation when it was claimed (slot_bitmap.hpp). Two objects
//   can end up holding the same claim without a move: a bitwise copy (memcpy,
//   or GCC 12, which copies and destroys twice the reservation in
//   `co_return c ? co_await x : y;`). The first of them to give the claim
//   back does; every later one is refused by the pool, counted in
//   Stats::double_releases and reported on stderr in debug builds, and gives
//   back nothing, so the pool stays exact and keeps admitting. Such a stale
//   copy behaves, from its first operation on the pool (release, destructor,
//   try_grow, shrink), as an empty reservation, and is counted once.
//   Exact when the later operation is ordered after the first release (one
//   thread, or any synchronisation): GCC 12's two destructions run on one
//   thread, one after the other. slot_bitmap.hpp states the races it cannot
//   close. While two copies are both unreleased each looks like the holder:
//   a grow or shrink through one is not detected, and the release of the
//   other, if it comes first, does not include it.
#pragma once

#include <cassert>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

#include "detail/pool_core.hpp"
#include "partition.hpp"
#include "rejection.hpp"

namespace admit {

/// The answer of SlotReservation::try_grow: converts to true when the
/// reservation grew; otherwise error() says why, with the pool's figures.
class [[nodiscard]] GrowResult {
 public:
  constexpr GrowResult() noexcept = default;
  constexpr explicit GrowResult(const Rejection& refused) noexcept : refused_{refused} {}

  constexpr explicit operator bool() const noexcept { return !refused_.has_value(); }
  [[nodiscard]] constexpr bool grown() const noexcept { return !refused_.has_value(); }

  /// Precondition: !grown().
  [[nodiscard]] constexpr const Rejection& error() const noexcept {
    assert(refused_.has_value() && "admit: GrowResult::error() on a grown result");
    return *refused_;
  }

 private:
  std::optional<Rejection> refused_;
};

namespace detail {
struct ReservationAccess;
}

class [[nodiscard]] SlotReservation {
 public:
  /// An empty reservation: holds nothing, converts to false.
  SlotReservation() noexcept = default;

  SlotReservation(SlotReservation&& other) noexcept
      : core_{std::exchange(other.core_, nullptr)},
        bytes_{std::exchange(other.bytes_, 0)},
        declared_size_{std::exchange(other.declared_size_, 0)},
        slot_{std::exchange(other.slot_, 0)},
        generation_{std::exchange(other.generation_, 0)} {
    other.assert_unattached();  // resources_ stays with the object: still other's to check
  }

  /// Takes over `other`'s holding, then releases what this one held. In that
  /// order, like unique_ptr::reset: the release may run async handlers, and
  /// one that assigns to this reservation must find it already updated.
  SlotReservation& operator=(SlotReservation&& other) noexcept {
    if (this != &other) {
      other.assert_unattached();
      SlotReservation previous{std::move(*this)};
      core_ = std::exchange(other.core_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
      declared_size_ = std::exchange(other.declared_size_, 0);
      slot_ = std::exchange(other.slot_, 0);
      generation_ = std::exchange(other.generation_, 0);
    }  // `previous` releases here
    return *this;
  }

  SlotReservation(const SlotReservation&) = delete;
  SlotReservation& operator=(const SlotReservation&) = delete;

  ~SlotReservation() { release(); }

  /// True while this reservation holds a slot (even one with zero bytes).
  explicit operator bool() const noexcept { return core_ != nullptr; }

  /// Bytes held now: the policy's figure, plus grows, minus shrinks.
  [[nodiscard]] std::uint64_t bytes() const noexcept { return bytes_; }

  /// The upload size this reservation was admitted for.
  [[nodiscard]] std::uint64_t declared_size() const noexcept { return declared_size_; }

  /// This reservation's slot index, in [0, pool slots): unique among the
  /// reservations held at the same time, so usable to index per-slot storage.
  /// Meaningless (0) on an empty reservation.
  [[nodiscard]] std::uint32_t slot() const noexcept { return slot_ & slot_mask; }

  /// Gives back the slot and every byte now; afterwards this reservation is
  /// empty. Calling it again, or on an empty reservation, does nothing. On a
  /// stale copy it gives back nothing (see the file comment).
  void release() noexcept {
    assert_unattached();
    if (core_ != nullptr) {
      // Empty first: giving back may run async handlers (ticket.hpp), which
      // must see this reservation already released.
      detail::PoolCore* const core = std::exchange(core_, nullptr);
      const std::uint64_t bytes = std::exchange(bytes_, 0);
      const detail::SlotClaim claim = this->claim();
      slot_ = 0;
      generation_ = 0;
      declared_size_ = 0;
      core->release(claim, bytes);
    }
  }

  /// Takes `extra_bytes` more from the pool if they fit in what is free now.
  /// Never takes the pool past its budget. Refused with Reason::too_large when
  /// bytes() + extra_bytes exceeds the whole budget, with Reason::pressure
  /// while the pool is under pressure, with Reason::no_memory when it does
  /// not fit now or is owed to a waiting request (FIFO; lanes once the
  /// head's window is closed), and with Reason::closed on an empty reservation
  /// (or a stale copy, which becomes empty: see the file comment).
  /// Growing by zero always succeeds on a held reservation.
  GrowResult try_grow(std::uint64_t extra_bytes) noexcept {
    if (core_ == nullptr || !core_->check_current(claim())) [[unlikely]] {
      forget();
      return GrowResult{Rejection{Reason::closed, 0, extra_bytes, 0, 0, 0, 0}};
    }
    if (extra_bytes == 0) return GrowResult{};
    if (auto refused = core_->try_grow(bytes_, declared_size_, extra_bytes, claim().partition)) {
      return GrowResult{*refused};
    }
    // Checked again: a copy released between the check and the grow's CAS,
    // before it in the pool's word, is seen now (the CAS is acquire). Those
    // bytes would otherwise stay with a copy whose release gives back nothing.
    if (!core_->check_current(claim())) [[unlikely]] {
      core_->give_back(extra_bytes, claim().partition);
      forget();
      return GrowResult{Rejection{Reason::closed, 0, extra_bytes, 0, 0, 0, 0}};
    }
    bytes_ += extra_bytes;
    note_bytes();
    return GrowResult{};
  }

  /// Gives back min(fewer_bytes, bytes()) bytes at once, keeping the slot.
  /// Returns how many bytes were given back (none from a stale copy, which
  /// becomes empty: see the file comment).
  std::uint64_t shrink(std::uint64_t fewer_bytes) noexcept {
    if (core_ == nullptr) return 0;
    if (!core_->check_current(claim())) [[unlikely]] {
      forget();
      return 0;
    }
    const std::uint64_t given = fewer_bytes < bytes_ ? fewer_bytes : bytes_;
    if (given != 0) {
      bytes_ -= given;
      note_bytes();
      core_->give_back(given, claim().partition);
    }
    return given;
  }

  /// Names this reservation in the pool's records (PoolConfig::
  /// track_reservations), e.g. "ws#17 big.zip": kept up to
  /// ReservationRecord::max_label_size bytes, cut at a UTF-8 character
  /// boundary, never allocating. Does nothing when tracking is off or on an
  /// empty reservation; a moved reservation keeps its label.
  void set_label(std::string_view label) noexcept {
    if (core_ == nullptr) return;
    if (detail::ReservationTable* const table = core_->table(); table != nullptr) {
      if (!core_->check_current(claim())) [[unlikely]] {
        forget();
        return;
      }
      table->set_label(slot(), label);
    }
  }

 private:
  friend struct detail::ReservationAccess;

  SlotReservation(detail::PoolCore& core, std::uint64_t bytes, std::uint64_t declared_size,
                  detail::SlotClaim claim) noexcept
      : core_{&core},
        bytes_{bytes},
        declared_size_{declared_size},
        slot_{claim.slot | std::uint32_t{claim.partition} << slot_bits},
        generation_{claim.generation} {}

  [[nodiscard]] detail::SlotClaim claim() const noexcept {
    return {slot_ & slot_mask, generation_, static_cast<std::uint16_t>(slot_ >> slot_bits)};
  }

  /// Empties a stale copy without touching the pool: what it holds is not its own.
  void forget() noexcept {
    core_ = nullptr;
    bytes_ = 0;
    declared_size_ = 0;
    slot_ = 0;
    generation_ = 0;
  }

  /// Keeps the pool's record of this reservation's bytes (when tracking).
  void note_bytes() const noexcept {
    if (detail::ReservationTable* const table = core_->table(); table != nullptr) [[unlikely]]
      table->set_bytes(slot(), bytes_);
  }

  /// A ReservationResource charging this object needs it to stay put.
  void assert_unattached() const noexcept {
    assert(resources_ == 0 &&
           "admit: SlotReservation released, destroyed or moved from while a "
           "ReservationResource still charges it (destroy the resource first)");
  }

  detail::PoolCore* core_ = nullptr;
  std::uint64_t bytes_ = 0;
  std::uint64_t declared_size_ = 0;
  // The slot index below slot_bits (PoolConfig::max_slots fits), and above
  // them the partition it was admitted in (0: none): no room is left in the
  // padding, and the partition must come back with the release.
  static constexpr unsigned slot_bits = detail::packed::slots_bits;
  static constexpr std::uint32_t slot_mask = (std::uint32_t{1} << slot_bits) - 1;
  static_assert(max_partitions < (1U << (32 - slot_bits)), "partition ids fit above the slot");
  std::uint32_t slot_ = 0;
  // In what would otherwise be padding: the generation costs no size.
  std::uint16_t generation_ = 0;
  // Also in padding: ReservationResources built over this object and alive.
  // Belongs to the object, not to the holding: a move does not carry it.
  std::uint16_t resources_ = 0;
};

static_assert(sizeof(void*) != 8 || sizeof(SlotReservation) == 32,
              "a SlotReservation is four 8-byte words; the generation lives beside the slot");

namespace detail {
/// The one way to create a held reservation: only for the pool.
struct ReservationAccess {
  static SlotReservation adopt(PoolCore& core, std::uint64_t bytes, std::uint64_t declared_size,
                               SlotClaim claim) noexcept {
    if (ReservationTable* const table = core.table(); table != nullptr) [[unlikely]]
      table->admitted(claim, declared_size, bytes);
    return SlotReservation{core, bytes, declared_size, claim};
  }
  /// For ReservationResource's lifetime check (memory_resource.hpp).
  static void attach(SlotReservation& r) noexcept {
    assert(r.resources_ == 0 && "admit: one ReservationResource per SlotReservation");
    ++r.resources_;
  }
  static void detach(SlotReservation& r) noexcept { --r.resources_; }
};
}  // namespace detail

}  // namespace admit

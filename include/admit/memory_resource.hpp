// admit/memory_resource.hpp - allocations charged to a reservation.
//
// A reservation is bookkeeping until something ties real allocations to it.
// ReservationResource is a std::pmr::memory_resource that does: every byte an
// upload's containers allocate through it is charged to its SlotReservation,
// so what the upload holds can never exceed what the pool admitted.
//
//     admit::SlotReservation reservation = std::move(admission).value();
//     admit::ReservationResource memory{reservation};
//     std::pmr::vector<std::byte> part{&memory};
//     part.resize(8 * admit::MiB);   // charged; grows the reservation if needed
//
// Charging
//   An allocation of n bytes is charged n bytes, exactly what was asked for
//   (alignment padding is the upstream's). While used() + n fits in the
//   reservation's bytes() it is free; past them the resource asks the pool
//   for the difference with try_grow. If the pool refuses, the allocation
//   fails with std::bad_alloc and nothing is charged or grown; the refusal
//   stays readable in last_refusal(). If the upstream resource fails, what
//   was grown for that allocation is given back before its exception goes on.
//   A deallocation uncharges its bytes and gives back to the pool whatever
//   this resource grew that is no longer used: the reservation never falls
//   below the bytes it had when the resource was built (or had grown to by
//   its owner), and never stays above max(that, used()) for longer than one
//   deallocation.
//
// Without exceptions
//   do_allocate cannot report a refusal with a value: it prints the refusal
//   to stderr and aborts, like admit's other unrecoverable failures
//   (detail/failure.hpp). Code built that way calls try_allocate, which
//   returns nullptr instead, and uses the resource directly rather than
//   through containers.
//
// Lifetime and threads
//   The resource charges the SlotReservation object it was built over. That
//   reservation must outlive it, and must not be moved from, released or
//   reassigned while it lives: the charges would go with it. Debug builds
//   assert this when the reservation is released, destroyed or moved from.
//   It is not thread-safe: one upload, one handler; and one resource per
//   reservation (a second one would count the same bytes as its own).
//   Everything allocated through the resource must be deallocated through it
//   before it is destroyed (debug builds assert that too).
//
// Stacking
//   A std::pmr::monotonic_buffer_resource (or a pool resource) on top of it
//   charges the reservation for the buffers it takes, not for each object
//   carved out of them: the charge is what is really held.
//
// Availability
//   It needs the standard <memory_resource>, which libc++ has only from
//   version 16. Where it is missing, ADMIT_HAS_MEMORY_RESOURCE is 0 and
//   ReservationResource is declared but not defined, so code that uses it
//   stops at this comment instead of compiling against something else.
#pragma once

#if __has_include(<memory_resource>)
#define ADMIT_HAS_MEMORY_RESOURCE 1
#else
#define ADMIT_HAS_MEMORY_RESOURCE 0
#endif

#if !ADMIT_HAS_MEMORY_RESOURCE
namespace admit {
/// Not available: this standard library has no <memory_resource> (see the file comment).
class ReservationResource;
}  // namespace admit
#else

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <new>
#include <optional>

#include "config.hpp"
#include "detail/failure.hpp"
#include "rejection.hpp"
#include "reservation.hpp"

namespace admit {

class ReservationResource final : public std::pmr::memory_resource {
 public:
  /// Charges `reservation`, allocating from `upstream` (which must outlive
  /// this resource). `reservation` may be empty: then every allocation past
  /// zero bytes is refused (with Reason::closed).
  explicit ReservationResource(
      SlotReservation& reservation,
      std::pmr::memory_resource* upstream = std::pmr::new_delete_resource()) noexcept
      : reservation_{&reservation}, upstream_{upstream} {
    assert(upstream != nullptr && "admit: ReservationResource needs an upstream resource");
    detail::ReservationAccess::attach(reservation);
  }

  ReservationResource(const ReservationResource&) = delete;
  ReservationResource& operator=(const ReservationResource&) = delete;

  ~ReservationResource() override {
    assert(used_ == 0 &&
           "admit: ReservationResource destroyed while its allocations are still in use");
    detail::ReservationAccess::detach(*reservation_);
  }

  /// Allocates like allocate(), but answers a refusal of the pool (or of the
  /// upstream, with std::bad_alloc) with nullptr instead of an exception. For
  /// code built without exceptions. noexcept only if the upstream's allocate
  /// does not throw anything but std::bad_alloc.
  [[nodiscard]] void* try_allocate(std::size_t bytes,
                                   std::size_t alignment = alignof(std::max_align_t)) {
    if (!charge(bytes)) return nullptr;
#if ADMIT_HAS_EXCEPTIONS
    try {
      return upstream_->allocate(bytes, alignment);
    } catch (const std::bad_alloc&) {
      uncharge(bytes);
      return nullptr;
    }
#else
    return upstream_->allocate(bytes, alignment);
#endif
  }

  /// Bytes allocated through this resource and not yet deallocated.
  [[nodiscard]] std::uint64_t used() const noexcept { return used_; }

  /// The highest used() since construction.
  [[nodiscard]] std::uint64_t peak_used() const noexcept { return peak_used_; }

  /// Bytes this resource grew its reservation by and still holds.
  [[nodiscard]] std::uint64_t grown() const noexcept { return grown_; }

  /// Why the last refused allocation was refused; nullopt if none was.
  [[nodiscard]] const std::optional<Rejection>& last_refusal() const noexcept {
    return last_refusal_;
  }

  [[nodiscard]] SlotReservation& reservation() const noexcept { return *reservation_; }
  [[nodiscard]] std::pmr::memory_resource* upstream() const noexcept { return upstream_; }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (!charge(bytes)) {
#if ADMIT_HAS_EXCEPTIONS
      throw std::bad_alloc{};
#else
      detail::abort_with(
          "admit: ReservationResource: allocation refused by the pool (built without "
          "exceptions: use try_allocate)");
#endif
    }
#if ADMIT_HAS_EXCEPTIONS
    try {
      return upstream_->allocate(bytes, alignment);
    } catch (...) {
      uncharge(bytes);
      throw;
    }
#else
    return upstream_->allocate(bytes, alignment);
#endif
  }

  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    upstream_->deallocate(p, bytes, alignment);
    uncharge(bytes);
  }

  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    // Memory from one resource must go back through the same one, to be uncharged there.
    return this == &other;
  }

  /// Charges `bytes`, growing the reservation by what it lacks; false (and
  /// nothing charged) if the pool refuses.
  bool charge(std::uint64_t bytes) noexcept {
    if (bytes > PoolConfig::max_memory_budget) {
      // More than any budget, so always refused (error() asserts it): the
      // pool's own too_large, with its figures (closed for an empty
      // reservation). And no sum below can overflow.
      last_refusal_ = reservation_->try_grow(bytes).error();
      return false;
    }
    const std::uint64_t held = reservation_->bytes();
    // used_ never exceeds a budget, so neither sum overflows.
    const std::uint64_t wanted = used_ + bytes;
    if (wanted > held) {
      const std::uint64_t extra = wanted - held;
      if (GrowResult grown = reservation_->try_grow(extra); !grown) {
        last_refusal_ = grown.error();
        return false;
      }
      grown_ += extra;
    }
    used_ = wanted;
    if (used_ > peak_used_) peak_used_ = used_;
    return true;
  }

  /// Uncharges `bytes` and gives back what was grown and is no longer used.
  void uncharge(std::uint64_t bytes) noexcept {
    assert(bytes <= used_ && "admit: ReservationResource: deallocating more than was allocated");
    used_ -= bytes < used_ ? bytes : used_;
    const std::uint64_t held = reservation_->bytes();
    const std::uint64_t unused = held > used_ ? held - used_ : 0;
    const std::uint64_t back = unused < grown_ ? unused : grown_;
    if (back != 0) grown_ -= reservation_->shrink(back);
  }

  SlotReservation* reservation_;
  std::pmr::memory_resource* upstream_;
  std::uint64_t used_ = 0;
  std::uint64_t peak_used_ = 0;
  std::uint64_t grown_ = 0;
  std::optional<Rejection> last_refusal_;
};

}  // namespace admit

#endif  // ADMIT_HAS_MEMORY_RESOURCE

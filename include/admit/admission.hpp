// admit/admission.hpp - the answer to "may this upload start?".
//
// Admission is shaped like std::expected<SlotReservation, Rejection> (C++23),
// which C++20 lacks: it holds either the reservation or the refusal. Test it,
// then take the reservation out with std::move(admission).value() or
// *std::move(admission) to keep it beyond the Admission's lifetime. An
// Admission that still holds its reservation releases it when destroyed.
#pragma once

#include <cassert>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "detail/failure.hpp"
#include "rejection.hpp"
#include "reservation.hpp"

namespace admit {

/// Thrown by Admission::value() on a refused admission (as std::expected
/// throws bad_expected_access): asking a refusal for its reservation is a bug.
/// Built without exceptions, value() prints the same message and aborts.
class BadAdmissionAccess : public std::exception {
 public:
  explicit BadAdmissionAccess(const Rejection& rejection) noexcept : rejection_{rejection} {}
  [[nodiscard]] const char* what() const noexcept override {
    return "admit: Admission::value() called on a refused admission";
  }
  [[nodiscard]] const Rejection& error() const noexcept { return rejection_; }

 private:
  Rejection rejection_;
};

class [[nodiscard]] Admission {
 public:
  Admission(SlotReservation&& reservation) noexcept  // NOLINT(google-explicit-constructor)
      : admitted_{true} {
    std::construct_at(&reservation_, std::move(reservation));
  }

  Admission(const Rejection& rejection) noexcept  // NOLINT(google-explicit-constructor)
      : admitted_{false} {
    std::construct_at(&rejection_, rejection);
  }

  Admission(Admission&& other) noexcept : admitted_{other.admitted_} {
    if (admitted_) {
      std::construct_at(&reservation_, std::move(other.reservation_));
    } else {
      std::construct_at(&rejection_, other.rejection_);
    }
  }

  Admission& operator=(Admission&& other) noexcept {
    if (this != &other) {
      // Take over `other` before the old reservation is released, as
      // SlotReservation's assignment does, and for the same reason.
      Admission previous{std::move(*this)};
      destroy();
      admitted_ = other.admitted_;
      if (admitted_) {
        std::construct_at(&reservation_, std::move(other.reservation_));
      } else {
        std::construct_at(&rejection_, other.rejection_);
      }
    }  // `previous` releases here
    return *this;
  }

  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  ~Admission() { destroy(); }

  /// True when admitted. Stays true after the reservation is moved out.
  [[nodiscard]] bool has_value() const noexcept { return admitted_; }
  explicit operator bool() const noexcept { return admitted_; }

  /// Precondition: has_value().
  [[nodiscard]] SlotReservation& operator*() & noexcept { return checked(); }
  [[nodiscard]] const SlotReservation& operator*() const& noexcept { return checked(); }
  [[nodiscard]] SlotReservation&& operator*() && noexcept { return std::move(checked()); }
  [[nodiscard]] SlotReservation* operator->() noexcept { return &checked(); }
  [[nodiscard]] const SlotReservation* operator->() const noexcept { return &checked(); }

  /// Throws BadAdmissionAccess when refused (without exceptions: prints
  /// the message and the reason to stderr and aborts).
  [[nodiscard]] SlotReservation& value() & { return checked_or_throw(); }
  [[nodiscard]] const SlotReservation& value() const& { return checked_or_throw(); }
  [[nodiscard]] SlotReservation&& value() && { return std::move(checked_or_throw()); }

  /// Precondition: !has_value().
  [[nodiscard]] const Rejection& error() const noexcept {
    assert(!admitted_ && "admit: Admission::error() on an admitted request");
    return rejection_;
  }

 private:
  SlotReservation& checked() noexcept {
    assert(admitted_ && "admit: dereferenced a refused Admission");
    return reservation_;
  }
  const SlotReservation& checked() const noexcept {
    assert(admitted_ && "admit: dereferenced a refused Admission");
    return reservation_;
  }
  SlotReservation& checked_or_throw() {
    if (!admitted_) fail_bad_access();
    return reservation_;
  }
  const SlotReservation& checked_or_throw() const {
    if (!admitted_) fail_bad_access();
    return reservation_;
  }

  [[noreturn]] void fail_bad_access() const {
#if ADMIT_HAS_EXCEPTIONS
    throw BadAdmissionAccess{rejection_};
#else
    // The same words as BadAdmissionAccess::what(), and the reason: the
    // program stops here, so this line is all its operator will see.
    std::string message{"admit: Admission::value() called on a refused admission ("};
    message += to_string(rejection_.reason);
    message += ')';
    detail::abort_with(message.c_str());
#endif
  }

  void destroy() noexcept {
    // Rejection is trivially destructible; only a reservation has work to do.
    if (admitted_) std::destroy_at(&reservation_);
  }

  union {
    SlotReservation reservation_;
    Rejection rejection_;
  };
  bool admitted_;
};

}  // namespace admit

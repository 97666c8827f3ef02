// tests/bitwise_copy.hpp - a second SlotReservation object holding the same
// claim as a first one, made the way GCC 12's coroutine bug (or a memcpy)
// makes it: its bytes copied, no constructor run. Formally undefined
// behaviour; the tests use it to stand in for the compiler, and check that
// the pool survives the second release.
#pragma once

#include <admit/reservation.hpp>

#include <cstddef>
#include <cstring>
#include <memory>
#include <new>

namespace admit_test {

class BitwiseCopy {
 public:
  explicit BitwiseCopy(const admit::SlotReservation& original) noexcept {
    std::memcpy(storage_, static_cast<const void*>(&original), sizeof original);
  }
  BitwiseCopy(const BitwiseCopy&) = delete;
  BitwiseCopy& operator=(const BitwiseCopy&) = delete;

  /// The second destruction, unless destroy() already ran it.
  ~BitwiseCopy() { destroy(); }

  [[nodiscard]] admit::SlotReservation& get() noexcept {
    return *std::launder(reinterpret_cast<admit::SlotReservation*>(storage_));
  }
  admit::SlotReservation* operator->() noexcept { return &get(); }

  /// Runs the copy's destructor now (once).
  void destroy() noexcept {
    if (!destroyed_) {
      destroyed_ = true;
      std::destroy_at(&get());
    }
  }

 private:
  alignas(admit::SlotReservation) std::byte storage_[sizeof(admit::SlotReservation)];
  bool destroyed_ = false;
};

}  // namespace admit_test

// admit/ticket.hpp - the handle of an async_acquire.
//
// SlotPool::async_acquire queues a request and returns at once with a Ticket;
// the handler is called exactly once with the Admission (an rvalue, so it may
// take it by value): admitted, or refused with the reason. Ticket::cancel()
// answers a request that is still waiting with Reason::cancelled. If the grant
// already happened, cancel() returns false and the handler receives (or has
// received) the reservation: a cancel racing a grant never loses capacity.
// Dropping a Ticket does not cancel the request.
//
// Where a handler runs
//   - On the thread that called async_acquire, before it returns, when the
//     answer is immediate: admitted at once, too_large, closed, queue_full or
//     an expired deadline.
//   - Otherwise on the thread that made the answer: the one whose release,
//     shrink or set_memory_budget made room, the one that called cancel() or
//     close(), or the pool's timer thread for an async deadline. When several
//     threads change the pool at once, whichever of them hands the capacity
//     over first runs the handler; the timer thread hands over only what an
//     expired deadline gave back.
//   It always runs outside every lock of the pool, so it may call back into
//   the pool (acquire, release, cancel, stats...) without deadlock. A
//   handler must not throw: it is called from noexcept code (for example a
//   SlotReservation destructor), so an exception ends in std::terminate.
#pragma once

#include <concepts>
#include <memory>
#include <type_traits>
#include <utility>

#include "admission.hpp"
#include "detail/pool_core.hpp"
#include "detail/waiter.hpp"
#include "reservation.hpp"

namespace admit {

/// A callable that receives the answer of an async_acquire.
template <class H>
concept AdmissionHandler =
    std::move_constructible<std::decay_t<H>> && std::invocable < std::decay_t<H>
&, Admission&& > ;

namespace detail {

template <class Handler>
class AsyncWaiterFor final : public AsyncWaiter {
 public:
  AsyncWaiterFor(std::uint64_t declared, std::uint64_t bytes, Handler handler)
      : AsyncWaiter{declared, bytes}, handler_{std::move(handler)} {}

  void complete(PoolCore& core) noexcept override {
    // Moved out so that what the handler captured dies right after the call,
    // not when the last Ticket does.
    Handler handler = std::move(handler_);
    if (state == State::granted) {
      handler(Admission{ReservationAccess::adopt(core, needed, declared_size, claim)});
    } else {
      handler(Admission{rejection});
    }
  }

 private:
  Handler handler_;
};

struct TicketAccess;

}  // namespace detail

class Ticket {
 public:
  /// A ticket for no request: cancel() returns false.
  Ticket() noexcept = default;

  /// Answers the request with Reason::cancelled if it is still waiting, and
  /// returns true. Returns false if it was already answered; then the handler
  /// has been or is being called with that answer. The pool must still exist.
  bool cancel() noexcept { return waiter_ != nullptr && core_->cancel(*waiter_); }

  /// True if this ticket belongs to a request (answered or not).
  explicit operator bool() const noexcept { return waiter_ != nullptr; }

 private:
  friend struct detail::TicketAccess;
  Ticket(std::shared_ptr<detail::AsyncWaiter> waiter, detail::PoolCore& core) noexcept
      : waiter_{std::move(waiter)}, core_{&core} {}

  std::shared_ptr<detail::AsyncWaiter> waiter_;
  detail::PoolCore* core_ = nullptr;
};

namespace detail {
struct TicketAccess {
  static Ticket make(std::shared_ptr<AsyncWaiter> waiter, PoolCore& core) noexcept {
    return Ticket{std::move(waiter), core};
  }
};
}  // namespace detail

}  // namespace admit

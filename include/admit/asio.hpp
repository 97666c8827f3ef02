// admit/asio.hpp - SlotPool::async_acquire as an Asio asynchronous operation,
// on Boost.Asio or on standalone Asio.
//
//   admit::Admission admission =
//       co_await admit::asio::async_acquire(pool, declared_size, boost::asio::use_awaitable);
//
// async_acquire(pool, size, token), async_acquire(pool, size, deadline, token)
// and async_acquire_for(pool, size, timeout, token) take any completion token
// (a callback, use_awaitable, use_future, deferred, as_tuple...) and complete
// with the signature void(admit::Admission). A refusal is an answer, not an
// error: it arrives as a refused Admission (cancellation and timeouts too,
// as Reason::cancelled and Reason::timeout), never as an exception or an
// error_code.
//
// As every Asio operation:
//   - The handler runs on its associated executor (for use_awaitable, the
//     coroutine's), never inside the initiating call, even when the answer is
//     immediate. A plain callback with no associated executor runs on
//     asio::system_executor, as asio::post(callback) would: bind one with
//     asio::bind_executor to choose.
//   - Until it completes, the operation counts as outstanding work on that
//     executor, so io_context::run() does not return while it waits.
//   - It supports per-operation cancellation (terminal, partial and total: a
//     waiting request has taken nothing, so cancelling it has no side
//     effect). Cancellation is admit's Ticket::cancel(): if the grant won the
//     race, the handler receives the reservation, so nothing is lost. Emit
//     cancellation from the handler's executor, as Asio requires of every
//     cancellation slot.
// Deadlines are the pool's own (its timer thread answers `timeout`); a timer
// raced against the operation with asio::experimental::awaitable_operators
// works as well, through cancellation.
//
// Lifetime: the pool must outlive the operation and the handler's executor.
// A completion that is never run (its io_context destroyed first) still
// releases the reservation it carries, into the pool: destroy the
// io_context before the pool.
//
// Which Asio: Boost.Asio by default (Boost 1.77 or later; CMake target
// admit::asio, which links Boost::headers). Define ADMIT_ASIO_STANDALONE before
// including this header for standalone Asio, namespace ::asio (Asio 1.19 or
// later; CMake target admit::asio_standalone, which defines it and links
// asio::asio). Both versions are the first with per-operation cancellation. The
// functions are admit::asio::... either way; each Asio gets its own inline
// namespace, so that a program whose translation units choose differently has
// two distinct sets of functions rather than one with two definitions.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "admission.hpp"
#include "pool.hpp"
#include "ticket.hpp"

#if defined(ADMIT_ASIO_STANDALONE)
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/version.hpp>

#if !defined(ASIO_VERSION) || ASIO_VERSION < 101900
#error "admit/asio.hpp needs standalone Asio 1.19 or later (per-operation cancellation)"
#endif
#else
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/version.hpp>

#if !defined(BOOST_VERSION) || BOOST_VERSION < 107700
#error "admit/asio.hpp needs Boost.Asio 1.77 or later (per-operation cancellation)"
#endif
#endif

namespace admit::asio {
// Inside namespace admit, `asio` is this namespace: Asio itself is always `::asio`.
#if defined(ADMIT_ASIO_STANDALONE)
inline namespace standalone_asio {
#else
inline namespace boost_asio {
#endif

namespace detail {

#if defined(ADMIT_ASIO_STANDALONE)
namespace net = ::asio;
#else
namespace net = ::boost::asio;
#endif

/// Where the cancellation handler finds the request to cancel. Shared because
/// the handler is installed before the request exists (see initiate()), and
/// the slot may drop the handler on another thread while the initiator is
/// still filling this in.
struct CancelTarget {
  Ticket ticket;
};

class CancelHandler {
 public:
  explicit CancelHandler(std::shared_ptr<CancelTarget> target) noexcept
      : target_{std::move(target)} {}

  void operator()(net::cancellation_type type) const noexcept {
    // A waiting request has taken nothing, so every kind of cancellation is
    // honoured; a request already answered makes cancel() a no-op.
    constexpr auto honoured = net::cancellation_type::terminal | net::cancellation_type::partial |
                              net::cancellation_type::total;
    if ((type & honoured) != net::cancellation_type::none) {
      target_->ticket.cancel();
    }
  }

 private:
  std::shared_ptr<CancelTarget> target_;
};

/// The handler admit's pool calls, on whatever thread answers. It hands the
/// answer over to the user's handler on that handler's executor.
template <class Handler>
class Completion {
 public:
  explicit Completion(Handler handler)
      : work_executor_{net::prefer(net::get_associated_executor(handler),
                                   net::execution::outstanding_work.tracked)},
        slot_{net::get_associated_cancellation_slot(handler)},
        handler_{std::move(handler)} {}

  void operator()(Admission&& admission) noexcept {
    // post, never dispatch: the pool may call this inside the initiating
    // function, where Asio forbids running the handler. If posting fails
    // (std::bad_alloc), the noexcept ends the program: losing the answer
    // would leave a caller waiting forever.
    auto executor = work_executor_;
    net::post(executor, Deliver{std::move(slot_), std::move(handler_), std::move(admission),
                                std::move(work_executor_)});
  }

  [[nodiscard]] auto cancellation_slot() const noexcept { return slot_; }

 private:
  using WorkExecutor =
      std::decay_t<decltype(net::prefer(std::declval<net::associated_executor_t<Handler>>(),
                                        net::execution::outstanding_work.tracked))>;
  using Slot = net::associated_cancellation_slot_t<Handler>;

  // Runs on the handler's executor, where the slot may be touched. Destroyed
  // without running (its io_context gone), it destroys the Admission, which
  // returns any reservation to the pool.
  struct Deliver {
    Slot slot;
    Handler handler;
    Admission admission;
    WorkExecutor work;  // keeps the executor's outstanding work until now

    void operator()() {
      if (slot.is_connected()) {
        slot.clear();  // the request is answered: nothing left to cancel
      }
      std::move(handler)(std::move(admission));
    }

    // The handler's associated allocator and executor stay visible to Asio.
    using allocator_type = net::associated_allocator_t<Handler>;
    [[nodiscard]] allocator_type get_allocator() const noexcept {
      return net::get_associated_allocator(handler);
    }
  };

  WorkExecutor work_executor_;
  Slot slot_;
  Handler handler_;
};

struct InitiateAcquire {
  template <class Handler, class Policy>
  void operator()(Handler&& handler, SlotPool<Policy>* pool, std::uint64_t declared_size,
                  std::optional<typename SlotPool<Policy>::clock::time_point> deadline,
                  std::optional<Partition> partition = std::nullopt) const {
    Completion<std::decay_t<Handler>> completion{std::forward<Handler>(handler)};
    auto slot = completion.cancellation_slot();

    // The cancellation handler goes in before the request is queued: once
    // queued, the answer may already be on its way to the handler's executor,
    // which clears the slot, and the slot must not be written from two places.
    std::shared_ptr<CancelTarget> target;
    if (slot.is_connected()) {
      target = std::make_shared<CancelTarget>();
      slot.template emplace<CancelHandler>(target);
    }

    Ticket ticket;
    if (partition) {
      ticket = deadline ? pool->async_acquire(declared_size, *deadline, *partition,
                                              std::move(completion))
                        : pool->async_acquire(declared_size, *partition, std::move(completion));
    } else {
      ticket = deadline ? pool->async_acquire(declared_size, *deadline, std::move(completion))
                        : pool->async_acquire(declared_size, std::move(completion));
    }
    if (target) {
      target->ticket = std::move(ticket);
    }
  }
};

}  // namespace detail

/// Asks `pool` for room for an upload of `declared_size` bytes, waiting as
/// long as it takes; completes with void(Admission). See the file comment.
template <MemoryPolicy Policy, class CompletionToken>
auto async_acquire(SlotPool<Policy>& pool, std::uint64_t declared_size, CompletionToken&& token) {
  return detail::net::async_initiate<CompletionToken, void(Admission)>(
      detail::InitiateAcquire{}, token, &pool, declared_size,
      std::optional<typename SlotPool<Policy>::clock::time_point>{});
}

/// As above, answered with Reason::timeout at `deadline` (an expired deadline
/// is answered at once, and takes nothing).
template <MemoryPolicy Policy, class CompletionToken>
auto async_acquire(SlotPool<Policy>& pool, std::uint64_t declared_size,
                   typename SlotPool<Policy>::clock::time_point deadline, CompletionToken&& token) {
  return detail::net::async_initiate<CompletionToken, void(Admission)>(
      detail::InitiateAcquire{}, token, &pool, declared_size,
      std::optional<typename SlotPool<Policy>::clock::time_point>{deadline});
}

/// As above, answered with Reason::timeout after `timeout`.
template <MemoryPolicy Policy, class Rep, class Period, class CompletionToken>
auto async_acquire_for(SlotPool<Policy>& pool, std::uint64_t declared_size,
                       std::chrono::duration<Rep, Period> timeout, CompletionToken&& token) {
  using clock = typename SlotPool<Policy>::clock;
  return async_acquire(pool, declared_size, admit::detail::deadline_after<clock>(timeout),
                       std::forward<CompletionToken>(token));
}

/// The three above in partition `partition` (partition.hpp).
template <MemoryPolicy Policy, class CompletionToken>
auto async_acquire(SlotPool<Policy>& pool, std::uint64_t declared_size, Partition partition,
                   CompletionToken&& token) {
  return detail::net::async_initiate<CompletionToken, void(Admission)>(
      detail::InitiateAcquire{}, token, &pool, declared_size,
      std::optional<typename SlotPool<Policy>::clock::time_point>{},
      std::optional<Partition>{partition});
}

template <MemoryPolicy Policy, class CompletionToken>
auto async_acquire(SlotPool<Policy>& pool, std::uint64_t declared_size,
                   typename SlotPool<Policy>::clock::time_point deadline, Partition partition,
                   CompletionToken&& token) {
  return detail::net::async_initiate<CompletionToken, void(Admission)>(
      detail::InitiateAcquire{}, token, &pool, declared_size,
      std::optional<typename SlotPool<Policy>::clock::time_point>{deadline},
      std::optional<Partition>{partition});
}

template <MemoryPolicy Policy, class Rep, class Period, class CompletionToken>
auto async_acquire_for(SlotPool<Policy>& pool, std::uint64_t declared_size,
                       std::chrono::duration<Rep, Period> timeout, Partition partition,
                       CompletionToken&& token) {
  using clock = typename SlotPool<Policy>::clock;
  return async_acquire(pool, declared_size, admit::detail::deadline_after<clock>(timeout),
                       partition, std::forward<CompletionToken>(token));
}

}  // namespace standalone_asio / boost_asio
}  // namespace admit::asio

// admit/pool.hpp - SlotPool: admission control for uploads.
//
// A SlotPool owns a memory budget and a number of slots. An upload asks with
// its declared size; the policy says how many bytes that needs; if one slot
// and those bytes are free, the pool hands out a SlotReservation holding both,
// otherwise it answers with a Rejection that says exactly why.
//
// Three ways to ask:
//   try_acquire(size)                   now or never: lock-free, never waits
//   acquire(size, deadline)             blocks the calling thread until
//   acquire_for(size, timeout)          admitted, refused for good, closed or
//                                       the deadline (steady clock)
//   async_acquire(size, [deadline,] h)  queues and returns a Ticket; the
//                                       handler gets the answer (ticket.hpp)
// A request larger than the whole budget is refused at once with too_large:
// it never waits. An already-expired deadline is refused at once with
// timeout and takes nothing (use try_acquire to "try without waiting").
// Beyond PoolConfig::max_waiters waiting requests, a new one is refused at
// once with queue_full.
//
// Fairness (PoolConfig::fairness): FIFO by default. Once anyone waits,
// try_acquire, try_grow and new waiters do not pass the queue's head, so a
// large upload is not starved by a stream of small ones. See Fairness for the
// barging alternative and its trade-off, and for lanes: requests that fit
// may pass a waiting head within a bound (PoolConfig::max_head_wait,
// max_pass_percent) that still admits the head in bounded time.
//
// Guarantees
//   - Bytes in use never exceed the budget in force when they were admitted;
//     slots in use never exceed the slot count.
//   - When nobody waits, try_acquire, release and every SlotReservation
//     operation are lock-free, allocation-free and noexcept. (With waiters, a
//     lanes pool's try_acquire and try_grow take the pool's lock to pass.)
//   - Every slot and byte handed out comes back exactly once; every waiter is
//     answered exactly once (admitted, timeout, cancelled, closed, too_large).
//   - A reservation given back twice (a bitwise copy; GCC 12 and
//     `co_return c ? co_await x : y;`) is refused and counted in
//     Stats::double_releases, in release builds too: the pool stays exact
//     (reservation.hpp says what is detected).
//
// Partitions (partition.hpp): add_partition(name, {guarantee, ceiling})
// divides the pool among tenants; a request made with a Partition must fit
// both its partition's ceiling and the pool, and waiters that their
// partition's guarantee covers go first. bypass() admits a request outside
// admission control altogether (health probes, admin), counted.
//
// Pressure: set_pressure(true) (for example from MemoryWatch, environment.hpp,
// when the machine runs short of memory) admits nobody new until
// set_pressure(false): try_acquire and try_grow are refused at once with
// `pressure`, waiting requests (old and new) keep waiting for their deadline
// and are admitted when it clears. Off, it costs the fast path nothing.
//
// Lifecycle: close() refuses new requests and answers every waiter with
// `closed`; reservations already held keep working. wait_idle(deadline) then
// waits until all are back, for a graceful shutdown. The pool must outlive
// its reservations and tickets; destroying it while any are held or waiting
// is a bug, caught by an assertion in debug builds. It is neither copyable
// nor movable (reservations point at it).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "admission.hpp"
#include "config.hpp"
#include "detail/compiler.hpp"
#include "detail/pool_core.hpp"
#include "partition.hpp"
#include "policy.hpp"
#include "reservation.hpp"
#include "reservation_record.hpp"
#include "stats.hpp"
#include "ticket.hpp"

namespace admit {

namespace detail {

/// now + timeout, saturating instead of overflowing for huge timeouts.
template <class Clock, class Rep, class Period>
typename Clock::time_point deadline_after(std::chrono::duration<Rep, Period> timeout) noexcept {
  const typename Clock::time_point now = Clock::now();
  if (timeout <= timeout.zero()) return now;
  const auto left = Clock::time_point::max() - now;
  if (timeout >= std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(left)) {
    return Clock::time_point::max();
  }
  return now + std::chrono::ceil<typename Clock::duration>(timeout);
}

}  // namespace detail

template <MemoryPolicy Policy = DefaultPolicy>
class SlotPool {
 public:
  using policy_type = Policy;
  using clock = std::chrono::steady_clock;

  /// Throws std::invalid_argument naming the field when `config` is invalid
  /// (see PoolConfig for the limits).
  explicit SlotPool(const PoolConfig& config, Policy policy = Policy{})
      : policy_{std::move(policy)}, core_{config} {}

  SlotPool(const SlotPool&) = delete;
  SlotPool& operator=(const SlotPool&) = delete;

  /// Admits an upload of `declared_size` bytes now, or refuses it: never waits.
  /// Refusal order: closed, too_large, pressure, no_slot, no_memory (and, in
  /// FIFO mode while others wait, no_slot or no_memory: what is free is theirs;
  /// in lanes mode the same once the head's passing window is closed).
  [[nodiscard]] ADMIT_ALWAYS_INLINE Admission try_acquire(std::uint64_t declared_size) noexcept {
    const std::uint64_t needed = policy_.bytes_for(declared_size);
    // Built here, from the claim, so that success copies no Rejection.
    if (detail::SlotClaim claim; core_.try_claim(needed, claim)) [[likely]]
      return Admission{detail::ReservationAccess::adopt(core_, needed, declared_size, claim)};
    return answer(declared_size, needed, core_.try_acquire(declared_size, needed));
  }

  /// Waits until admitted or `deadline`; refused with timeout, closed,
  /// queue_full, or at once with too_large.
  [[nodiscard]] Admission acquire(std::uint64_t declared_size,
                                  clock::time_point deadline) noexcept {
    const std::uint64_t needed = policy_.bytes_for(declared_size);
    return answer(declared_size, needed, core_.acquire_until(declared_size, needed, deadline));
  }

  /// acquire() with a deadline `timeout` from now.
  template <class Rep, class Period>
  [[nodiscard]] Admission acquire_for(std::uint64_t declared_size,
                                      std::chrono::duration<Rep, Period> timeout) noexcept {
    return acquire(declared_size, detail::deadline_after<clock>(timeout));
  }

  /// Lets a request skip admission (health probes, an operator's upload):
  /// always admitted, with an empty reservation that holds no slot and no
  /// bytes, so it neither waits nor makes anyone wait; counted in
  /// Stats::bypassed. Lock-free and allocation-free.
  [[nodiscard]] Admission bypass() noexcept {
    core_.note_bypass();
    return Admission{SlotReservation{}};
  }

  // --- Partitions (partition.hpp) --------------------------------------------------

  /// Adds a partition named `name`; thread-safe, also while requests run.
  /// Throws std::invalid_argument naming what is wrong: an invalid name or
  /// config (validation_error(name, config)), a name taken already, more than
  /// max_partitions, or guarantees adding up to more than 100 %.
  Partition add_partition(std::string_view name, const PartitionConfig& config) {
    return detail::PartitionAccess::make(core_.add_partition(name, config));
  }

  /// The partition named `name`; nullopt when there is none.
  [[nodiscard]] std::optional<Partition> find_partition(std::string_view name) const noexcept {
    const std::uint16_t id = core_.find_partition(name);
    if (id == 0) return std::nullopt;
    return detail::PartitionAccess::make(id);
  }

  /// The partition named `name`. Throws std::invalid_argument
  /// ("admit: no partition named 'x'") when there is none.
  [[nodiscard]] Partition partition(std::string_view name) const {
    if (auto p = find_partition(name)) return *p;
    detail::fail_invalid_argument("admit: no partition named '" + std::string{name} + "'");
  }

  /// try_acquire in partition `p`: admitted only if it fits both the
  /// partition's ceiling and the pool (partition.hpp). Takes the pool's lock.
  [[nodiscard]] Admission try_acquire(std::uint64_t declared_size, Partition p) noexcept {
    const std::uint64_t needed = policy_.bytes_for(declared_size);
    return answer(declared_size, needed,
                  core_.try_acquire_partitioned(declared_size, needed, id(p)));
  }

  /// acquire in partition `p`.
  [[nodiscard]] Admission acquire(std::uint64_t declared_size, clock::time_point deadline,
                                  Partition p) noexcept {
    const std::uint64_t needed = policy_.bytes_for(declared_size);
    return answer(declared_size, needed,
                  core_.acquire_until(declared_size, needed, deadline, id(p)));
  }

  template <class Rep, class Period>
  [[nodiscard]] Admission acquire_for(std::uint64_t declared_size,
                                      std::chrono::duration<Rep, Period> timeout,
                                      Partition p) noexcept {
    return acquire(declared_size, detail::deadline_after<clock>(timeout), p);
  }

  /// async_acquire in partition `p`.
  template <AdmissionHandler Handler>
  Ticket async_acquire(std::uint64_t declared_size, Partition p, Handler&& handler) {
    return start_async(declared_size, nullptr, std::forward<Handler>(handler), id(p));
  }

  template <AdmissionHandler Handler>
  Ticket async_acquire(std::uint64_t declared_size, clock::time_point deadline, Partition p,
                       Handler&& handler) {
    return start_async(declared_size, &deadline, std::forward<Handler>(handler), id(p));
  }

  template <class Rep, class Period, AdmissionHandler Handler>
  Ticket async_acquire_for(std::uint64_t declared_size, std::chrono::duration<Rep, Period> timeout,
                           Partition p, Handler&& handler) {
    return async_acquire(declared_size, detail::deadline_after<clock>(timeout), p,
                         std::forward<Handler>(handler));
  }

  /// Partition `p`'s figures, exact (taken under the pool's lock).
  [[nodiscard]] PartitionStats stats(Partition p) const { return core_.partition_stats(id(p)); }

  /// Every partition's figures, in the order they were added (index()).
  [[nodiscard]] std::vector<PartitionStats> partition_stats() const {
    return core_.partition_stats();
  }

  /// Queues the request and returns at once; `handler(Admission&&)` is called
  /// exactly once with the answer (ticket.hpp says on which thread). Throws
  /// std::bad_alloc if the request cannot be allocated; then the handler is
  /// never called.
  template <AdmissionHandler Handler>
  Ticket async_acquire(std::uint64_t declared_size, Handler&& handler) {
    return start_async(declared_size, nullptr, std::forward<Handler>(handler));
  }

  /// As above, answered with timeout at `deadline`. The first such request
  /// starts the pool's timer thread (std::system_error if it cannot start).
  template <AdmissionHandler Handler>
  Ticket async_acquire(std::uint64_t declared_size, clock::time_point deadline, Handler&& handler) {
    return start_async(declared_size, &deadline, std::forward<Handler>(handler));
  }

  template <class Rep, class Period, AdmissionHandler Handler>
  Ticket async_acquire_for(std::uint64_t declared_size, std::chrono::duration<Rep, Period> timeout,
                           Handler&& handler) {
    return async_acquire(declared_size, detail::deadline_after<clock>(timeout),
                         std::forward<Handler>(handler));
  }

  /// Refuses new requests with `closed` and answers every waiter with
  /// `closed`. Reservations already held keep working. Idempotent.
  void close() noexcept { core_.close(); }
  [[nodiscard]] bool closed() const noexcept { return core_.closed(); }

  /// Pressure on: nobody new is admitted (try_acquire and try_grow are refused
  /// with Reason::pressure; waiting and new blocking or async requests wait).
  /// Off: the waiters that fit are admitted at once. Idempotent, thread-safe.
  void set_pressure(bool on) noexcept { core_.set_pressure(on); }
  [[nodiscard]] bool under_pressure() const noexcept { return core_.under_pressure(); }

  /// Blocks until no reservation is held, or `deadline`; true if idle.
  bool wait_idle(clock::time_point deadline = clock::time_point::max()) noexcept {
    return core_.wait_idle(deadline);
  }

  /// Changes the budget, validated as in the constructor (throws
  /// std::invalid_argument naming memory_budget). Growing admits waiters that
  /// now fit; shrinking below what is in use admits nobody until usage falls
  /// under it; waiters that can no longer ever fit are answered too_large.
  void set_memory_budget(std::uint64_t memory_budget) { core_.set_memory_budget(memory_budget); }

  /// What an upload of `declared_size` bytes would reserve under this pool's policy.
  [[nodiscard]] std::uint64_t bytes_for(std::uint64_t declared_size) const noexcept {
    return policy_.bytes_for(declared_size);
  }

  /// A snapshot of the counters; approximate while other threads use the pool.
  [[nodiscard]] Stats stats() const noexcept { return core_.stats(); }

  [[nodiscard]] std::uint64_t memory_budget() const noexcept { return core_.memory_budget(); }
  [[nodiscard]] std::uint32_t slots() const noexcept { return core_.slots(); }
  [[nodiscard]] const Policy& policy() const noexcept { return policy_; }

  /// Every live reservation, in slot order, when PoolConfig::track_reservations
  /// is on (empty when off). A snapshot: safe from any thread while uploads
  /// run, each record consistent in itself. Allocates; never blocks admission.
  [[nodiscard]] std::vector<ReservationRecord> reservations() const { return core_.reservations(); }

  /// The bytes the first waiting request needs; nullopt when nobody waits.
  /// Takes the pool's lock briefly: for diagnostics, not for every request.
  [[nodiscard]] std::optional<std::uint64_t> head_waiter_needs() const noexcept {
    return core_.head_waiter_needs();
  }

 private:
  Admission answer(std::uint64_t declared_size, std::uint64_t needed,
                   const detail::CoreAdmission& a) noexcept {
    if (!a.admitted) return Admission{a.rejection};
    return Admission{detail::ReservationAccess::adopt(core_, needed, declared_size, a.claim)};
  }

  static std::uint16_t id(Partition p) noexcept { return detail::PartitionAccess::id(p); }

  template <class Handler>
  Ticket start_async(std::uint64_t declared_size, const clock::time_point* deadline,
                     Handler&& handler, std::uint16_t partition = 0) {
    using Waiter = detail::AsyncWaiterFor<std::decay_t<Handler>>;
    auto waiter = std::make_shared<Waiter>(declared_size, bytes_for(declared_size),
                                           std::forward<Handler>(handler));
    waiter->partition = partition;
    if (deadline != nullptr) {
      waiter->has_deadline = true;
      waiter->deadline = *deadline;
      core_.ensure_timer();
    }
    core_.async_acquire(waiter);
    return detail::TicketAccess::make(std::move(waiter), core_);
  }

  Policy policy_;
  detail::PoolCore core_;
};

template <MemoryPolicy Policy>
SlotPool(const PoolConfig&, Policy) -> SlotPool<Policy>;

}  // namespace admit

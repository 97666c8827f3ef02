// admit/detail/pool_core.hpp - the policy-free heart of a SlotPool.
//
// SlotPool<Policy> turns a declared size into bytes and forwards here, so this
// class (and SlotReservation, which points at it) is one type for every policy.
//
// State and invariants
//   state_   one atomic word: bytes in use | slots in use | attention bit
//            (packed_state.hpp). Every admission adds one slot and its bytes
//            in one CAS that first checks both limits, so slots(state_) <=
//            slots_ and bytes(state_) <= the budget the CAS checked, always.
//   bitmap_  which slot indices are held; bits set <= slots(state_) (see
//            slot_bitmap.hpp for the ordering that keeps that true), and each
//            slot's generation: a reservation is the claim (slot, generation)
//            and the bytes it was given.
//   queue_   waiters, under mutex_. The attention bit is set exactly while the
//            queue is non-empty, the pool is closed or under pressure, or
//            someone waits for idle (update_attention_locked, under mutex_).
// Fast path (no attention bit): try_acquire is one CAS loop on state_ plus a
//   SlotBitmap claim (lock-free); release is one fetch_and and one fetch_sub
//   (wait-free). Neither allocates, locks or throws.
// Given back at most once, in release builds too: release() subtracts a
//   reservation's slot and bytes from state_ only after the bitmap accepted
//   its claim (slot_bitmap.hpp: the generation still matches and the bit was
//   still set). A claim the bitmap refuses - a stale or bitwise copy of a
//   reservation given back already, a corrupt slot index - changes nothing
//   but the double_releases_ count (and a line on stderr in debug builds).
//   So state_ never underflows through a double release, and the accounting
//   stays exact within the guarantee slot_bitmap.hpp states. A reservation's
//   try_grow and shrink check its claim first (check_current), so a stale
//   copy moves no bytes either.
// Lanes (Fairness::lanes): a request that finds waiters takes mutex_ and goes
//   past the head only through its window (head_since_, passed_bytes_, under
//   mutex_; see Fairness::lanes); dispatch lets waiters behind the head pass
//   the same way. Without waiters a lanes pool runs the same fast path.
// Slow path: a release whose fetch_sub saw the attention bit takes mutex_ and
//   hands the capacity to the queue (dispatch_locked). No wake-up is lost: a
//   waiter sets the bit (an RMW on state_, under mutex_) and then retries
//   under mutex_; any release ordered before that RMW is seen by the retry,
//   any release ordered after it sees the bit and dispatches under mutex_.
// Memory ordering
//   Giving capacity back is a release RMW on state_; taking it is an acquire
//   CAS; so what a previous holder did before it released happens-before the
//   admission that reuses its capacity. The attention bit is set with a
//   release RMW after closed_ / pressure_ / queued_ are written; a fast path
//   that sees the bit re-reads state_ with acquire before reading them. Statistics and the
//   budget value are relaxed: they order nothing.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cassert>
#include <cinttypes>  // PRIu32, PRIu64: the debug report of a double release
#include <condition_variable>
#include <cstdint>
#include <cstdio>  // std::fprintf, for the same
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "../config.hpp"
#include "../rejection.hpp"
#include "../stats.hpp"
#include "compiler.hpp"
#include "packed_state.hpp"
#include "partition_table.hpp"
#include "reservation_table.hpp"
#include "slot_bitmap.hpp"
#include "waiter.hpp"

namespace admit::detail {

/// What PoolCore answers: a claimed slot, or the refusal.
struct CoreAdmission {
  bool admitted;
  SlotClaim claim;
  Rejection rejection;
};

class alignas(cache_line_size) PoolCore {
 public:
  explicit PoolCore(const PoolConfig& config)
      : budget_{validated(config).memory_budget},
        slots_{config.slots},
        full_word_{packed::make(0, config.slots)},
        fifo_{config.fairness != Fairness::barging},
        lanes_{config.fairness == Fairness::lanes},
        max_waiters_{config.max_waiters},
        max_head_wait_{config.max_head_wait},
        max_pass_percent_{config.max_pass_percent},
        lanes_clock_{config.lanes_clock},
        bitmap_{config.slots},
        table_{config.track_reservations ? std::make_unique<ReservationTable>(config.slots)
                                         : nullptr} {}

  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;

  ~PoolCore() {
    {
      const std::scoped_lock lock{mutex_};
      // Waiters and reservations point at this object: destroying it first
      // leaves them dangling. That is a bug in the caller, reported here in
      // debug builds.
      assert(queue_.empty() && "admit: SlotPool destroyed while requests wait");
      assert(idle_waiters_ == 0 && "admit: SlotPool destroyed during wait_idle");
      timer_stop_ = true;
    }
    timer_wakeup_.notify_all();
    if (timer_.joinable()) timer_.join();
    assert(packed::slots(state_.load(std::memory_order_relaxed)) == 0 &&
           "admit: SlotPool destroyed while reservations are still held");
  }

  // --- Admission without waiting --------------------------------------------

  /// The admission fast path: takes one slot and `needed` bytes together
  /// into `claim` and returns true, or returns false having taken nothing
  /// and counted nothing, for anything unusual (waiters, closed, pressure,
  /// partitions, a full pool, too little memory): then the caller asks try_acquire, which decides.
  /// Everything a refusal needs is kept out of here, so this inlines into
  /// each call site at the cost of a CAS and a few compares.
  [[nodiscard]] ADMIT_ALWAYS_INLINE bool try_claim(std::uint64_t needed,
                                                   SlotClaim& claim) noexcept {
    // relaxed: the budget is a plain setting that orders no other data.
    const std::uint64_t budget = budget_.load(std::memory_order_relaxed);
    // relaxed: only a first guess, validated by the CAS below.
    std::uint64_t word = state_.load(std::memory_order_relaxed);
    if (needed > budget) [[unlikely]]
      return false;
    for (;;) {
      // One unsigned compare for two cases: the attention bit (63) or a full
      // pool (the slots field at slots_) make the word at least full_word_.
      // Then the bytes, without overflow: bytes(word) < 2^43, needed < 2^43.
      if (word >= full_word_ || packed::bytes(word) + needed > budget) [[unlikely]]
        return false;
      // acquire on success: pairs with the release RMWs that gave capacity
      // back (release(), give_back()). relaxed on failure: `word` is
      // reloaded and checked again.
      if (state_.compare_exchange_weak(word, word + packed::one_slot + needed,
                                       std::memory_order_acquire, std::memory_order_relaxed))
          [[likely]]
        break;
    }
    const std::uint64_t taken = word + packed::one_slot + needed;
    note_peaks(taken);
    claim = bitmap_.claim();
    return true;
  }

  /// Takes one slot and `needed` bytes together, or says why not (counted).
  [[nodiscard]] ADMIT_COLD CoreAdmission try_acquire(std::uint64_t declared_size,
                                                     std::uint64_t needed) noexcept {
    const Attempt a = attempt</*ForQueue=*/false>(needed);
    if (a.admitted) return {true, a.claim, {}};
    return refuse(a.reason, declared_size, needed, a.word, a.budget);
  }

  /// Adds `extra` bytes to a reservation that holds `held`; nullopt = grown.
  [[nodiscard]] std::optional<Rejection> try_grow(std::uint64_t held, std::uint64_t declared_size,
                                                  std::uint64_t extra,
                                                  std::uint16_t partition) noexcept {
    // relaxed: the budget is a plain setting that orders no other data.
    const std::uint64_t budget = budget_.load(std::memory_order_relaxed);
    // relaxed: a first guess, validated by the CAS below.
    std::uint64_t word = state_.load(std::memory_order_relaxed);
    if (extra > budget || held > budget - extra) {
      return rejection(Reason::too_large, declared_size, extra, word, budget);
    }
    for (;;) {
      if (packed::has_attention(word)) [[unlikely]] {
        // A partitioned pool decides every grow under the lock (partition.hpp).
        if (partitioned_flag()) return grow_partitioned(held, declared_size, extra, partition);
        if (pressure_flag()) {
          return rejection(Reason::pressure, declared_size, extra, word, budget);
        }
        // FIFO: bytes a waiter is owed do not go to a running upload first;
        // lanes: unless the head's passing window is open.
        if (queue_has_priority()) {
          if (lanes_ && pass_grow(extra)) return std::nullopt;
          // relaxed: the figures of the refusal only.
          word = state_.load(std::memory_order_relaxed);
          // Pressure may have come on while pass_grow waited for the lock.
          const Reason why = lanes_ && pressure_flag() ? Reason::pressure : Reason::no_memory;
          return rejection(why, declared_size, extra, word, budget);
        }
      }
      if (extra > available(word, budget)) {
        return rejection(Reason::no_memory, declared_size, extra, word, budget);
      }
      // acquire/relaxed: as in attempt().
      if (state_.compare_exchange_weak(word, word + extra, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        note_peaks(word + extra);
        return std::nullopt;
      }
    }
  }

  /// Whether `claim` is still the holding of its slot; if not (a stale or
  /// corrupt copy of a reservation), counts and reports it as given back
  /// twice. For try_grow and shrink, which must not move bytes for a holding
  /// that is gone. Exact when the release that made it stale is ordered
  /// before this call (slot_bitmap.hpp).
  [[nodiscard]] bool check_current(SlotClaim claim) noexcept {
    if (bitmap_.is_current(claim)) [[likely]]
      return true;
    given_back_twice(claim, claim.slot < slots_ ? SlotBitmap::Release::stale
                                                : SlotBitmap::Release::out_of_range);
    return false;
  }

  // --- Giving back -----------------------------------------------------------

  /// Gives back `bytes` of a reservation that keeps its slot.
  void give_back(std::uint64_t bytes, std::uint16_t partition) noexcept {
    if (bytes == 0) return;
    // release: pairs with the acquire CAS of whoever takes these bytes next.
    const std::uint64_t before = state_.fetch_sub(bytes, std::memory_order_release);
    if (packed::has_attention(before)) [[unlikely]]
      capacity_returned(partition, bytes, /*slot=*/false);
  }

  /// Gives back a whole reservation: its slot index, its slot and its bytes;
  /// or nothing, if the bitmap refuses the claim (see the file comment).
  void release(SlotClaim claim, std::uint64_t bytes) noexcept {
    // The index goes back before the slot does; slot_bitmap.hpp says why.
    if (const SlotBitmap::Release r = bitmap_.release(claim); r != SlotBitmap::Release::released)
        [[unlikely]] {
      given_back_twice(claim, r);
      return;
    }
    // release: pairs with the acquire CAS of the next admission.
    const std::uint64_t before =
        state_.fetch_sub(packed::one_slot + bytes, std::memory_order_release);
    // A partitioned pool keeps the attention bit set, so that a partition's
    // release always reaches capacity_returned, which gives back to it too.
    if (packed::has_attention(before)) [[unlikely]]
      capacity_returned(claim.partition, bytes, /*slot=*/true);
  }

  // --- Waiting -----------------------------------------------------------------

  /// Blocks until admitted, refused for good, closed, or `deadline`.
  [[nodiscard]] CoreAdmission acquire_until(std::uint64_t declared_size, std::uint64_t needed,
                                            Clock::time_point deadline,
                                            std::uint16_t partition = 0) noexcept;

  /// Starts the thread that times out async waiters, once. Call before
  /// queueing an async waiter with a deadline. Throws std::system_error if
  /// the thread cannot be started (then nothing was queued).
  void ensure_timer();

  /// Queues `waiter`, or answers it at once (on this thread) when it need not
  /// or cannot wait. `waiter` must be owned by a shared_ptr.
  void async_acquire(const std::shared_ptr<AsyncWaiter>& waiter) noexcept;

  /// Answers a queued async waiter with `cancelled`. False if it was already
  /// answered (admitted, refused, timed out or cancelled before).
  bool cancel(AsyncWaiter& w) noexcept;

  // --- Lifecycle -----------------------------------------------------------------

  /// Refuses every new request with `closed` and answers every waiter with
  /// `closed`. Reservations already held are unaffected. Idempotent.
  void close() noexcept;

  [[nodiscard]] bool closed() const noexcept {
    // acquire: a caller that sees the pool closed also sees its effects.
    return closed_.load(std::memory_order_acquire);
  }

  /// Turns pressure on (nobody new is admitted: try_acquire and try_grow are
  /// refused with `pressure`, waiters keep waiting) or off (waiters that fit
  /// are admitted). Idempotent.
  void set_pressure(bool on) noexcept;

  [[nodiscard]] bool under_pressure() const noexcept {
    // acquire: pairs with the release store in set_pressure, so a caller that
    // sees the state also sees what was done before it was set.
    return pressure_.load(std::memory_order_acquire);
  }

  /// Blocks until no slot is held, or `deadline`; true if the pool is idle.
  bool wait_idle(Clock::time_point deadline) noexcept;

  /// Changes the budget: growing admits waiters that now fit; shrinking below
  /// what is in use admits nobody until usage falls under it; waiters that
  /// can no longer ever fit are answered too_large.
  void set_memory_budget(std::uint64_t memory_budget);

  // --- Observation ---------------------------------------------------------------

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
    s.waiters = queued_.load(std::memory_order_relaxed);
    s.admitted = bitmap_.claims();
    s.rejected.too_large = rejected(Reason::too_large);
    s.rejected.no_slot = rejected(Reason::no_slot);
    s.rejected.no_memory = rejected(Reason::no_memory);
    s.rejected.queue_full = rejected(Reason::queue_full);
    s.rejected.timeout = rejected(Reason::timeout);
    s.rejected.cancelled = rejected(Reason::cancelled);
    s.rejected.closed = rejected(Reason::closed);
    s.rejected.pressure = rejected(Reason::pressure);
    s.double_releases = double_releases_.load(std::memory_order_relaxed);
    s.bypassed = bypassed_.load(std::memory_order_relaxed);
    s.waiting_bytes = queued_bytes_.load(std::memory_order_relaxed);
    return s;
  }

  [[nodiscard]] std::uint64_t memory_budget() const noexcept {
    // relaxed: a setting, see attempt().
    return budget_.load(std::memory_order_relaxed);
  }

  [[nodiscard]] std::uint32_t slots() const noexcept { return slots_; }

  /// The reservations' records, or nullptr when tracking is off.
  [[nodiscard]] ReservationTable* table() const noexcept { return table_.get(); }

  /// The live reservations' records; empty when tracking is off.
  [[nodiscard]] std::vector<ReservationRecord> reservations() const {
    return table_ != nullptr ? table_->snapshot(bitmap_) : std::vector<ReservationRecord>{};
  }

  /// The bytes the first waiter needs; nullopt when nobody waits.
  [[nodiscard]] std::optional<std::uint64_t> head_waiter_needs() const noexcept;

  /// Counts a request that skipped admission (SlotPool::bypass).
  void note_bypass() noexcept {
    // relaxed: a statistic.
    bypassed_.fetch_add(1, std::memory_order_relaxed);
  }

  // --- Partitions (partition.hpp; defined in pool_core_partitions.hpp) ------------

  /// try_acquire in partition `partition` (an id from add_partition), under
  /// the lock. Its own function, so that try_acquire stays as small as it was.
  [[nodiscard]] CoreAdmission try_acquire_partitioned(std::uint64_t declared_size,
                                                      std::uint64_t needed,
                                                      std::uint16_t partition) noexcept;

  /// Adds a partition and returns its id (1-based). Throws
  /// std::invalid_argument (without exceptions: aborts) naming what is wrong.
  std::uint16_t add_partition(std::string_view name, const PartitionConfig& config);

  /// The id of the partition named `name`, or 0.
  [[nodiscard]] std::uint16_t find_partition(std::string_view name) const noexcept;

  /// The figures of partition `id`, taken under the lock.
  [[nodiscard]] PartitionStats partition_stats(std::uint16_t id) const;

  /// Every partition's figures, in the order they were added.
  [[nodiscard]] std::vector<PartitionStats> partition_stats() const;

 private:
  struct Attempt {
    bool admitted;
    Reason reason;
    SlotClaim claim;
    std::uint64_t word;
    std::uint64_t budget;
  };

  /// The admission CAS. ForQueue: called by dispatch on behalf of the
  /// queue, which must not be refused for the queue's own sake.
  template <bool ForQueue>
  Attempt attempt(std::uint64_t needed) noexcept {
    // relaxed: the budget is a plain setting that orders no other data.
    const std::uint64_t budget = budget_.load(std::memory_order_relaxed);
    // relaxed: only a first guess, validated by the CAS below.
    std::uint64_t word = state_.load(std::memory_order_relaxed);
    for (;;) {
      if (!ForQueue && packed::has_attention(word)) [[unlikely]] {
        // One load for the states that take every request off this path
        // (closed, pressure, partitions), and one call: attempt() must stay
        // small enough to be inlined into try_acquire.
        if (const Blocked blocked = blocked_flag(); blocked != Blocked::no) {
          return blocked_attempt(blocked, needed, word, budget);
        }
        // FIFO: what is free is owed to the waiters ahead of us.
        if (queue_has_priority()) return behind_queue(needed, word, budget);
      }
      if (needed > budget) return {false, Reason::too_large, {}, word, budget};
      if (packed::slots(word) >= slots_) return {false, Reason::no_slot, {}, word, budget};
      if (needed > available(word, budget)) return {false, Reason::no_memory, {}, word, budget};
      const std::uint64_t taken = word + packed::one_slot + needed;
      // acquire on success: pairs with the release RMWs that gave capacity
      // back (release(), give_back()). relaxed on failure: `word` is reloaded
      // and every check above runs again on it.
      if (state_.compare_exchange_weak(word, taken, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        note_peaks(taken);
        return {true, Reason::too_large, bitmap_.claim(), taken, budget};
      }
    }
  }

  /// A request that found waiters ahead of it (FIFO or lanes): refused as
  /// FIFO wants, or in lanes mode admitted past the head if its window is
  /// open. Out of line and cold: the fast path without waiters stays small.
  Attempt behind_queue(std::uint64_t needed, std::uint64_t word, std::uint64_t budget) noexcept;

  /// Lanes: try_grow past a waiting head, if its window is open.
  bool pass_grow(std::uint64_t extra) noexcept;

  /// Lanes: may a request of `needed` bytes pass the head now? open: yes;
  /// too_big: not this one, but a smaller one may; closed: nobody may.
  enum class Pass : std::uint8_t { open, too_big, closed };
  Pass may_pass_locked(std::uint64_t needed) const noexcept;

  // --- Partitions (pool_core_partitions.hpp) -----------------------------------

  /// After seeing the attention bit: does this pool have partitions?
  bool partitioned_flag() const noexcept {
    see_slow_path_state();
    return partitioned_.load(std::memory_order_relaxed);
  }

  /// What decide_partitioned_locked answers: the pool's attempt (its figures
  /// when refused by the pool), or the partition's refusal.
  struct Decision {
    Attempt attempt;
    std::optional<Rejection> by_partition;
  };

  std::optional<Rejection> grow_partitioned(std::uint64_t held, std::uint64_t declared_size,
                                            std::uint64_t extra, std::uint16_t partition) noexcept;

  /// The whole decision for a request in a partitioned pool (partition 0:
  /// none), admitting it if it may go now; an uncounted refusal otherwise.
  Decision decide_partitioned_locked(std::uint64_t declared_size, std::uint64_t needed,
                                     std::uint16_t partition) noexcept;

  /// decide_partitioned_locked's answer as a CoreAdmission, uncounted.
  CoreAdmission admission_of(const Decision& d, std::uint64_t declared_size,
                             std::uint64_t needed) const noexcept {
    if (d.attempt.admitted) return {true, d.attempt.claim, {}};
    if (d.by_partition) return {false, {}, *d.by_partition};
    return {false,
            {},
            rejection(d.attempt.reason, declared_size, needed, d.attempt.word, d.attempt.budget)};
  }

  /// Who may go before the waiters: go, pass (lanes, through the head's
  /// window) or wait.
  enum class Turn : std::uint8_t { go, pass, wait };
  Turn turn_locked(std::uint64_t needed, bool covered) noexcept;

  /// Whether `w`'s own partition's ceiling holds it back now.
  bool held_by_ceiling_locked(const Waiter& w) const noexcept;

  /// Whether `w`'s partition's guarantee still covers it.
  bool covered_locked(const Waiter& w) const noexcept;

  /// Charges an admission of `needed` bytes to `partition` (0: none).
  void charge_locked(std::uint16_t partition, std::uint64_t needed) noexcept;

  /// Admits the waiters that their partition's guarantee covers, in queue
  /// order; false when FIFO must stop there (one of them does not fit).
  bool dispatch_covered_locked(ReadyList& ready) noexcept;

  Rejection partition_rejection(Reason reason, std::uint64_t declared_size, std::uint64_t needed,
                                const PartitionState& p, std::uint64_t budget) const noexcept;

  /// The lanes head: the first waiter not held back by its own partition's
  /// ceiling (the queue's front in a pool without partitions).
  const Waiter* lanes_head_locked() const noexcept;

  /// Lanes: if the head changed, the new head's window opens now.
  void refresh_head_locked() noexcept;

  /// Lanes: `bytes` passed the head. Under mutex_.
  void passed_locked(std::uint64_t bytes) noexcept {
    if (head_ != nullptr) passed_bytes_ += bytes;
  }

  std::chrono::steady_clock::time_point lanes_now() const noexcept {
    return lanes_clock_ != nullptr ? lanes_clock_() : std::chrono::steady_clock::now();
  }

  /// Whether everyone new is refused, and why: closed_ and pressure_ in one
  /// figure, kept by set_blocked_locked() (closed wins: it is for good).
  /// partitioned: nobody is refused for it, but a partitioned pool decides
  /// every request under the lock (pool_core_partitions.hpp).
  enum class Blocked : std::uint8_t { no, partitioned, pressure, closed };

  /// attempt() saw `blocked`: the refusal, or the decision under the lock.
  Attempt blocked_attempt(Blocked blocked, std::uint64_t needed, std::uint64_t word,
                          std::uint64_t budget) noexcept;

  /// After seeing the attention bit: is everyone new refused?
  Blocked blocked_flag() const noexcept {
    see_slow_path_state();
    return blocked_.load(std::memory_order_relaxed);
  }

  /// After seeing the attention bit: is the pool under pressure?
  bool pressure_flag() const noexcept {
    see_slow_path_state();
    return pressure_.load(std::memory_order_relaxed);
  }

  /// Derives blocked_ from closed_ and pressure_. Under mutex_, before
  /// update_attention_locked() publishes it.
  void set_blocked_locked() noexcept {
    // relaxed: published by the release RMW in update_attention_locked.
    blocked_.store(closed_.load(std::memory_order_relaxed)        ? Blocked::closed
                   : pressure_.load(std::memory_order_relaxed)    ? Blocked::pressure
                   : partitioned_.load(std::memory_order_relaxed) ? Blocked::partitioned
                                                                  : Blocked::no,
                   std::memory_order_relaxed);
  }

  /// After seeing the attention bit: must a newcomer queue behind waiters?
  bool queue_has_priority() const noexcept {
    see_slow_path_state();
    return fifo_ && queued_.load(std::memory_order_relaxed) != 0;
  }

  /// Called after a relaxed load of state_ showed the attention bit.
  void see_slow_path_state() const noexcept {
    // acquire: this reads the RMW that set the bit or a later write (read-read
    // coherence), and every write to state_ is an RMW, so it is in the release
    // sequence of the fetch_or(release) in update_attention_locked(), which
    // came after closed_ / pressure_ / queued_ were written: the relaxed loads that follow
    // see them. (Not a fence: ThreadSanitizer does not model fences, and GCC
    // rejects them under -fsanitize=thread.)
    static_cast<void>(state_.load(std::memory_order_acquire));
  }

  /// The answers a request gets without ever entering the queue.
  std::optional<CoreAdmission> refuse_before_waiting(std::uint64_t declared_size,
                                                     std::uint64_t needed,
                                                     Clock::time_point deadline,
                                                     std::uint16_t partition) noexcept;

  /// In a partitioned pool: `w` admitted at once, or refused for good
  /// (counted); nullopt when it is to queue (or the pool has no partitions).
  std::optional<CoreAdmission> decide_before_queueing_locked(Waiter& w) noexcept;

  /// Appends `w` and raises the attention bit, or refuses it (closed,
  /// queue_full). Under mutex_.
  std::optional<CoreAdmission> enqueue_locked(Waiter& w) noexcept;

  /// Hands free capacity to the waiters, in queue order. Under mutex_.
  void dispatch_locked(ReadyList& ready) noexcept;

  void grant_locked(Waiter& w, SlotClaim claim, ReadyList& ready) noexcept;

  void answer_locked(Waiter& w, Reason reason, ReadyList& ready) noexcept;

  void dequeue_locked(Waiter& w) noexcept;

  static void notify_locked(Waiter& w, ReadyList& ready) noexcept {
    // Told once mutex_ is released: a woken waiter does not then block on
    // the mutex its notifier still holds (ReadyList, wait_until_told).
    ready.push(w);
  }

  /// Completes `ready` with mutex_ released, then takes it again.
  void complete_outside(std::unique_lock<std::mutex>& lock, ReadyList& ready) noexcept;

  /// Writes `answer` into `w`: the one place a waiter's outcome is set.
  static void record(Waiter& w, const CoreAdmission& answer) noexcept {
    w.state = answer.admitted ? Waiter::State::granted : Waiter::State::refused;
    w.claim = answer.claim;
    w.rejection = answer.rejection;
  }

  /// Sets or clears the attention bit to match the slow-path state. Under mutex_.
  void update_attention_locked() noexcept;

  /// A release saw the attention bit: gives `bytes` (and a slot) back to
  /// `partition` if it is not 0, and lets the queue (or wait_idle) see it.
  void capacity_returned(std::uint16_t partition, std::uint64_t bytes, bool slot) noexcept;

  // --- Deadlines of async waiters ----------------------------------------------

  void run_timer() noexcept;

  /// Answers async waiters whose deadline passed; returns the next deadline.
  Clock::time_point expire_locked(Clock::time_point now, ReadyList& ready) noexcept;

  // --- Helpers -------------------------------------------------------------------

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
                       std::uint64_t word, std::uint64_t budget,
                       std::uint16_t partition = 0) noexcept {
    return counted({false, {}, rejection(reason, declared_size, needed, word, budget)}, partition);
  }

  /// Counts refusal `a` for the pool and for `partition` (0: none).
  CoreAdmission counted(const CoreAdmission& a, std::uint16_t partition) noexcept {
    const auto reason = static_cast<std::size_t>(a.rejection.reason);
    // relaxed: a statistic.
    rejected_[reason].fetch_add(1, std::memory_order_relaxed);
    // The table outlives every request that names one of its partitions.
    if (partition != 0) partitions_->at(partition).count_refusal(a.rejection.reason);
    return a;
  }

  std::uint64_t rejected(Reason reason) const noexcept {
    return rejected_[static_cast<std::size_t>(reason)].load(std::memory_order_relaxed);
  }

  /// A claim the bitmap refused: counted, reported in debug builds, ignored.
  void given_back_twice([[maybe_unused]] SlotClaim claim,
                        [[maybe_unused]] SlotBitmap::Release why) noexcept {
    // relaxed: a statistic, on a line written only on refusals and here.
    [[maybe_unused]] const std::uint64_t count =
        double_releases_.fetch_add(1, std::memory_order_relaxed) + 1;
#ifndef NDEBUG
    // Not an assertion: the pool stays exact, and tests (Debug builds) check
    // that it does. The first 16, then every power of two: a program that
    // does it on every request names the slot without flooding its log.
    if (count > 16 && !std::has_single_bit(count)) return;
    if (why == SlotBitmap::Release::out_of_range) {
      std::fprintf(stderr,
                   "admit: SlotReservation for slot %" PRIu32 " of a pool of %" PRIu32
                   " slots given back: a corrupt copy, ignored (double release %" PRIu64
                   ", see Stats::double_releases)\n",
                   claim.slot, slots_, count);
    } else {
      std::fprintf(stderr,
                   "admit: slot %" PRIu32
                   " given back twice: a %s copy of a SlotReservation (generation %u, the"
                   " slot's is %u), ignored (double release %" PRIu64
                   ", see Stats::double_releases)\n",
                   claim.slot, why == SlotBitmap::Release::stale ? "stale" : "concurrent",
                   unsigned{claim.generation}, unsigned{bitmap_.generation(claim.slot)}, count);
    }
#endif
  }

  /// Keeps the peaks exact. Once they are reached this is two loads of a
  /// line nobody writes and two compares; raising them is out of line.
  void note_peaks(std::uint64_t word) noexcept {
    // relaxed: statistics; raise_peaks re-reads them in its CAS loops.
    if (packed::bytes(word) > peak_bytes_.load(std::memory_order_relaxed) ||
        packed::slots(word) > peak_slots_.load(std::memory_order_relaxed)) [[unlikely]]
      raise_peaks(word);
  }

  ADMIT_COLD void raise_peaks(std::uint64_t word) noexcept {
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
  // The smallest word try_claim must not admit from: a full pool's (the
  // attention bit is above it). slots_ <= packed::max_slots keeps it < 2^63.
  const std::uint64_t full_word_;
  const bool fifo_;   // FIFO or lanes: newcomers do not simply pass waiters
  const bool lanes_;  // Fairness::lanes
  const std::uint32_t max_waiters_;
  const std::chrono::milliseconds max_head_wait_;  // Fairness::lanes
  const std::uint32_t max_pass_percent_;           // Fairness::lanes
  const LanesClock lanes_clock_;                   // Fairness::lanes
  SlotBitmap bitmap_;
  const std::unique_ptr<ReservationTable> table_;  // PoolConfig::track_reservations
  // Written only while a peak is being raised.
  alignas(cache_line_size) std::atomic<std::uint64_t> peak_bytes_{0};
  std::atomic<std::uint32_t> peak_slots_{0};
  // Written only on refusals and double releases.
  alignas(cache_line_size) std::array<std::atomic<std::uint64_t>, reason_count> rejected_{};
  std::atomic<std::uint64_t> double_releases_{0};
  std::atomic<std::uint64_t> bypassed_{0};
  // The slow path: read by the fast path only after it sees the attention bit.
  alignas(cache_line_size) std::atomic<bool> closed_{false};
  std::atomic<bool> pressure_{false};
  std::atomic<Blocked> blocked_{Blocked::no};
  std::atomic<std::uint64_t> queued_{0};
  std::atomic<std::uint64_t> queued_bytes_{0};  // what the waiters need together
  mutable std::mutex mutex_;                    // mutable: head_waiter_needs() reads the queue
  WaitQueue queue_;                             // guarded by mutex_
  std::uint32_t idle_waiters_ = 0;              // guarded by mutex_
  std::condition_variable idle_wakeup_;
  std::thread timer_;  // started by the first async deadline
  std::condition_variable timer_wakeup_;
  bool timer_stop_ = false;  // guarded by mutex_
  // Fairness::lanes, guarded by mutex_: when the head became the head, and
  // the bytes that passed it since.
  std::chrono::steady_clock::time_point head_since_{};
  std::uint64_t passed_bytes_ = 0;
  const Waiter* head_ = nullptr;  // whose window head_since_ is; null when none
  // Partitions: created by the first add_partition, then kept; guarded by
  // mutex_ (partition_table.hpp says what is not). partitioned_ is a
  // slow-path flag: set before the attention bit that publishes it.
  std::unique_ptr<PartitionTable> partitions_;
  std::atomic<bool> partitioned_{false};
};

}  // namespace admit::detail

// The slow path's definitions (waiting, close, budget changes; partitions).
#include "pool_core_partitions.hpp"  // IWYU pragma: export
#include "pool_core_waiting.hpp"     // IWYU pragma: export

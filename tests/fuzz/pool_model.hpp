// pool_model.hpp - the contract of SlotPool as the simplest code that could
// keep it, for pool_ops.cpp: counters, a list of waiters in queue order, the
// refusal order of pool.hpp, and for Fairness::lanes the head's passing window
// (config.hpp), and partitions (partition.hpp): each one's bytes and slots,
// its ceiling and guarantee recomputed from the budget in force, the
// guarantee's waiters first, the ceiling's waiters out of everyone's way.
// Plain and single-threaded on purpose: a second implementation of the pool's
// tricks would share their mistakes.
//
// Time, for lanes: the model keeps its own clock in microseconds (now_us),
// which pool_ops advances together with the pool's fake lanes clock. The
// other clocks (deadlines) are the pool's business: the harness only makes
// requests whose answer does not depend on when they are looked at.
#pragma once

#include <admit/config.hpp>
#include <admit/partition.hpp>
#include <admit/rejection.hpp>
#include <admit/stats.hpp>

#include "pool_model_types.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <list>
#include <optional>
#include <string>
#include <vector>

namespace pool_fuzz {

class Model {
 public:
  using Waiter = std::list<ModelWaiter>::iterator;

  explicit Model(const admit::PoolConfig& config)
      : fairness_{config.fairness},
        max_waiters_{config.max_waiters},
        max_head_wait_us_{std::chrono::microseconds{config.max_head_wait}.count()},
        max_pass_percent_{config.max_pass_percent} {
    stats.memory_budget = config.memory_budget;
    stats.slots = config.slots;
  }

  admit::Stats stats{};
  bool closed = false;
  bool pressure = false;
  std::list<ModelWaiter> queue;
  std::array<ModelRequest, request_count> requests{};
  std::vector<ModelPartition> partitions;  // partition id i is partitions[i - 1]
  std::int64_t now_us = 0;  // the lanes clock; only pool_ops moves it, with the pool's

  [[nodiscard]] bool lanes() const noexcept { return fairness_ == admit::Fairness::lanes; }
  [[nodiscard]] bool barging() const noexcept { return fairness_ == admit::Fairness::barging; }

  [[nodiscard]] std::uint64_t available() const noexcept {
    return stats.bytes_in_use < stats.memory_budget ? stats.memory_budget - stats.bytes_in_use : 0;
  }
  [[nodiscard]] bool slots_full() const noexcept { return stats.slots_in_use >= stats.slots; }
  [[nodiscard]] bool fits(std::uint64_t needed) const noexcept {
    return !slots_full() && needed <= available();
  }

  // --- Partitions ------------------------------------------------------------------

  /// `percent` of `whole`, rounded down; but a share of something that is
  /// not 0 % is at least 1 (a partition of 10 % of 4 slots still has one).
  [[nodiscard]] static std::uint64_t share(std::uint64_t whole, std::uint32_t percent) noexcept {
    const std::uint64_t part = whole * percent / 100;
    return part == 0 && percent != 0 && whole != 0 ? 1 : part;
  }
  [[nodiscard]] ModelPartition& partition(std::uint16_t id) { return partitions.at(id - 1U); }
  [[nodiscard]] const ModelPartition& partition(std::uint16_t id) const {
    return partitions.at(id - 1U);
  }
  [[nodiscard]] std::uint64_t ceiling_bytes(const ModelPartition& p) const noexcept {
    return share(stats.memory_budget, p.config.ceiling_percent);
  }
  [[nodiscard]] std::uint64_t ceiling_slots(const ModelPartition& p) const noexcept {
    return share(stats.slots, p.config.ceiling_percent);
  }
  [[nodiscard]] std::uint64_t guarantee_bytes(const ModelPartition& p) const noexcept {
    return share(stats.memory_budget, p.config.guarantee_percent);
  }
  [[nodiscard]] std::uint64_t guarantee_slots(const ModelPartition& p) const noexcept {
    return share(stats.slots, p.config.guarantee_percent);
  }
  /// Whether one more reservation of `needed` bytes stays under p's ceiling
  /// (sizes stay far below 2^63 here: plain sums).
  [[nodiscard]] bool under_ceiling(const ModelPartition& p, std::uint64_t needed) const noexcept {
    return p.slots + 1U <= ceiling_slots(p) && p.bytes + needed <= ceiling_bytes(p);
  }
  /// Whether p's guarantee still covers one more reservation of `needed` bytes.
  [[nodiscard]] bool guaranteed(const ModelPartition& p, std::uint64_t needed) const noexcept {
    return p.slots + 1U <= guarantee_slots(p) && p.bytes + needed <= guarantee_bytes(p);
  }
  /// A waiter that its own partition's ceiling keeps waiting, whatever the pool has free.
  [[nodiscard]] bool held_by_ceiling(const ModelWaiter& w) const {
    return w.partition != 0 && !under_ceiling(partition(w.partition), w.needed);
  }
  [[nodiscard]] bool guaranteed(const ModelWaiter& w) const {
    return w.partition != 0 && guaranteed(partition(w.partition), w.needed);
  }
  /// Whether `guarantee_percent` more would take the guarantees past 100 %.
  [[nodiscard]] bool guarantees_exceed(std::uint32_t guarantee_percent) const noexcept {
    std::uint32_t total = guarantee_percent;
    for (const ModelPartition& p : partitions) total += p.config.guarantee_percent;
    return total > 100;
  }

  // --- Refusals --------------------------------------------------------------------

  [[nodiscard]] Rejection rejection(Reason reason, std::uint64_t declared,
                                    std::uint64_t needed) const noexcept {
    return Rejection{
        reason,     declared, needed, available(), stats.memory_budget, stats.slots_in_use,
        stats.slots};
  }
  /// A refusal by partition `id`'s ceiling: its figures, not the pool's.
  [[nodiscard]] Rejection partition_rejection(Reason reason, std::uint64_t declared,
                                              std::uint64_t needed, std::uint16_t id) const {
    const ModelPartition& p = partition(id);
    const std::uint64_t ceiling = ceiling_bytes(p);
    return Rejection{reason,
                     declared,
                     needed,
                     p.bytes < ceiling ? ceiling - p.bytes : 0,
                     ceiling,
                     p.slots,
                     static_cast<std::uint32_t>(ceiling_slots(p)),
                     admit::Limit::partition};
  }
  /// A counted refusal: in stats().rejected, and in its partition's (if any).
  Rejection refuse(Reason reason, std::uint64_t declared, std::uint64_t needed,
                   std::uint16_t id = 0) {
    return refuse(Refusal{reason, false}, declared, needed, id);
  }
  Rejection refuse(Refusal why, std::uint64_t declared, std::uint64_t needed, std::uint16_t id) {
    count_refusal(stats.rejected, why.reason);
    if (id != 0) count_refusal(partition(id).rejected, why.reason);
    return why.by_partition ? partition_rejection(why.reason, declared, needed, id)
                            : rejection(why.reason, declared, needed);
  }
  void take(std::uint64_t needed, std::uint16_t id) {
    stats.bytes_in_use += needed;
    ++stats.slots_in_use;
    ++stats.admitted;
    if (id != 0) {
      ModelPartition& p = partition(id);
      p.bytes += needed;
      ++p.slots;
      ++p.admitted;
    }
    raise_peaks();
    refresh_head();
  }
  void raise_peaks() noexcept {
    stats.peak_bytes_in_use = std::max(stats.peak_bytes_in_use, stats.bytes_in_use);
    stats.peak_slots_in_use = std::max(stats.peak_slots_in_use, stats.slots_in_use);
  }
  /// A whole reservation given back (the caller dispatches).
  void give_back(const ModelHolding& h) {
    stats.bytes_in_use -= h.bytes;
    --stats.slots_in_use;
    if (h.partition != 0) {
      partition(h.partition).bytes -= h.bytes;
      --partition(h.partition).slots;
    }
  }
  /// Bytes given back by a reservation that keeps its slot (the caller dispatches).
  void give_back_bytes(ModelHolding& h, std::uint64_t bytes) {
    h.bytes -= bytes;
    stats.bytes_in_use -= bytes;
    if (h.partition != 0) partition(h.partition).bytes -= bytes;
  }

  // --- Lanes: the head's passing window ----------------------------------------

  /// May a request of `needed` bytes pass the head now? open: yes; too_big:
  /// not this one (it would take the passers past the head's share), but a
  /// smaller one may; closed: nobody may (the share is used up, or
  /// max_head_wait has gone by since the head became the head). With
  /// partitions the head is the first waiter that its own ceiling does not
  /// hold back; with none such there is nobody to pass.
  enum class Pass { open, too_big, closed };
  [[nodiscard]] Pass may_pass(std::uint64_t needed) const noexcept {
    if (!head_) return Pass::open;
    const std::uint64_t share = head_share();
    if (passed_ >= share || now_us - head_since_us_ >= max_head_wait_us_) return Pass::closed;
    return needed > share - passed_ ? Pass::too_big : Pass::open;
  }
  /// The bytes the passers may take from the current head in all.
  [[nodiscard]] std::uint64_t head_share() const noexcept {
    return head_ ? head_needed_ * max_pass_percent_ / 100 : 0;
  }
  [[nodiscard]] std::uint64_t passed() const noexcept { return passed_; }
  [[nodiscard]] std::int64_t head_since_us() const noexcept { return head_since_us_; }

  // --- Requests ------------------------------------------------------------------

  /// Why the first attempt (try_acquire; acquire and async_acquire before
  /// they queue) refuses `needed` in partition `id` (0: none) now, in
  /// pool.hpp's order; nullopt: admitted (then call admit_first).
  [[nodiscard]] std::optional<Refusal> first_refusal(std::uint64_t needed,
                                                     std::uint16_t id = 0) const {
    if (closed) return Refusal{Reason::closed};
    if (needed > stats.memory_budget) return Refusal{Reason::too_large};
    if (!partitions.empty()) return partitioned_refusal(needed, id);
    if (pressure) return Refusal{Reason::pressure};
    if (!barging() && !queue.empty()) {
      // FIFO: what is free is owed to the waiters; lanes: unless the request
      // goes through the head's window, and fits.
      if (lanes() && may_pass(needed) == Pass::open && fits(needed)) return std::nullopt;
      return Refusal{slots_full() ? Reason::no_slot : Reason::no_memory};
    }
    if (slots_full()) return Refusal{Reason::no_slot};
    if (needed > available()) return Refusal{Reason::no_memory};
    return std::nullopt;
  }

  /// Whose turn it is when a request (or a grow) wants `needed` bytes now and
  /// waiters are queued: go (nobody it must let first), pass (lanes: it goes
  /// through the head's window) or wait. `covered`: its partition's guarantee
  /// covers it.
  enum class Turn { go, pass, wait };
  [[nodiscard]] Turn turn(std::uint64_t needed, bool covered) const {
    if (queue.empty() || barging()) return Turn::go;
    // A waiter its guarantee covers is owed what frees before anyone new.
    for (const ModelWaiter& w : queue) {
      if (guaranteed(w)) return Turn::wait;
    }
    // A newcomer its guarantee covers passes the uncovered; waiters held by
    // their own ceiling hold up nobody.
    const bool someone_in_line = std::any_of(
        queue.begin(), queue.end(), [this](const ModelWaiter& w) { return !held_by_ceiling(w); });
    if (covered || !someone_in_line) return Turn::go;
    if (lanes() && may_pass(needed) == Pass::open) return Turn::pass;
    return Turn::wait;
  }

  /// first_refusal in a pool with partitions, after closed and too_large.
  [[nodiscard]] std::optional<Refusal> partitioned_refusal(std::uint64_t needed,
                                                           std::uint16_t id) const {
    const ModelPartition* p = id != 0 ? &partition(id) : nullptr;
    if (p != nullptr && needed > ceiling_bytes(*p)) return Refusal{Reason::too_large, true};
    if (pressure) return Refusal{Reason::pressure};
    if (p != nullptr && !under_ceiling(*p, needed)) {
      return Refusal{p->slots >= ceiling_slots(*p) ? Reason::no_slot : Reason::no_memory, true};
    }
    if (turn(needed, p != nullptr && guaranteed(*p, needed)) != Turn::wait && fits(needed)) {
      return std::nullopt;
    }
    return Refusal{slots_full() ? Reason::no_slot : Reason::no_memory};
  }

  /// Takes what first_refusal admitted; in lanes mode it may have passed the head.
  void admit_first(std::uint64_t needed, std::uint16_t id = 0) {
    if (!partitions.empty()) {
      const ModelPartition* p = id != 0 ? &partition(id) : nullptr;
      if (turn(needed, p != nullptr && guaranteed(*p, needed)) == Turn::pass) passed_ += needed;
    } else if (lanes() && !queue.empty()) {
      passed_ += needed;
    }
    take(needed, id);
  }

  /// try_acquire's answer: nullopt when admitted (and taken).
  std::optional<Rejection> try_acquire(std::uint64_t declared, std::uint64_t needed,
                                       std::uint16_t id = 0) {
    if (const std::optional<Refusal> why = first_refusal(needed, id)) {
      return refuse(*why, declared, needed, id);
    }
    admit_first(needed, id);
    return std::nullopt;
  }

  /// What happens to a request that may wait: answered at once (admitted:
  /// nullopt in `refused`), or queued.
  struct WaitStart {
    bool queued = false;
    std::optional<Rejection> refused;
  };
  WaitStart start_waiting(std::uint64_t declared, std::uint64_t needed, bool deadline_passed,
                          std::uint16_t id = 0) {
    if (closed) return {false, refuse(Reason::closed, declared, needed, id)};
    if (needed > stats.memory_budget) {
      return {false, refuse(Reason::too_large, declared, needed, id)};
    }
    // too_large is permanent: over the partition's whole ceiling, an expired
    // deadline still hears it, not timeout.
    if (id != 0 && needed > ceiling_bytes(partition(id))) {
      return {false, refuse(Refusal{Reason::too_large, true}, declared, needed, id)};
    }
    if (deadline_passed) return {false, refuse(Reason::timeout, declared, needed, id)};
    const std::optional<Refusal> why = first_refusal(needed, id);
    if (!why) {
      admit_first(needed, id);
      return {false, std::nullopt};
    }
    // Larger than its partition's whole ceiling: waiting cannot help.
    if (why->reason == Reason::too_large) return {false, refuse(*why, declared, needed, id)};
    if (queue_full()) return {false, refuse(Reason::queue_full, declared, needed, id)};
    return {true, std::nullopt};
  }
  /// Whether start_waiting would queue the request (and not answer it at once).
  [[nodiscard]] bool would_queue(std::uint64_t needed, bool deadline_passed,
                                 std::uint16_t id = 0) const {
    if (closed || needed > stats.memory_budget || deadline_passed || queue_full()) return false;
    const std::optional<Refusal> why = first_refusal(needed, id);
    return why && why->reason != Reason::too_large;
  }
  [[nodiscard]] bool queue_full() const noexcept {
    return max_waiters_ != 0 && queue.size() >= max_waiters_;
  }

  /// try_grow of a held reservation by `extra` > 0: nullopt when grown (and
  /// taken). The too_large, pressure and no_memory refusals are not counted
  /// in stats().rejected: only admissions are.
  std::optional<Rejection> try_grow(ModelHolding& h, std::uint64_t extra) {
    const std::uint64_t budget = stats.memory_budget;
    if (extra > budget || h.bytes > budget - extra) {
      return rejection(Reason::too_large, h.declared, extra);
    }
    if (pressure) return rejection(Reason::pressure, h.declared, extra);
    if (!partitions.empty()) return partitioned_grow(h, extra);
    if (!barging() && !queue.empty()) {
      // FIFO: the bytes are owed to the waiters; lanes: unless the growth goes
      // through the head's window (it needs no slot, only the bytes).
      if (!lanes() || may_pass(extra) != Pass::open || extra > available()) {
        return rejection(Reason::no_memory, h.declared, extra);
      }
      passed_ += extra;
    } else if (extra > available()) {
      return rejection(Reason::no_memory, h.declared, extra);
    }
    grow(h, extra);
    return std::nullopt;
  }

  /// try_grow in a pool with partitions: the reservation's partition's
  /// ceiling first (too_large past the whole ceiling, no_memory past what is
  /// left of it, with the partition's figures), then whose turn it is (a
  /// grow needs no slot: its guarantee covers it by bytes alone).
  std::optional<Rejection> partitioned_grow(ModelHolding& h, std::uint64_t extra) {
    bool covered = false;
    if (h.partition != 0) {
      const ModelPartition& p = partition(h.partition);
      const std::uint64_t ceiling = ceiling_bytes(p);
      if (h.bytes + extra > ceiling) {
        return partition_rejection(Reason::too_large, h.declared, extra, h.partition);
      }
      if (p.bytes + extra > ceiling) {
        return partition_rejection(Reason::no_memory, h.declared, extra, h.partition);
      }
      covered = p.bytes + extra <= guarantee_bytes(p);
    }
    const Turn t = turn(extra, covered);
    if (t == Turn::wait || extra > available()) {
      return rejection(Reason::no_memory, h.declared, extra);
    }
    if (t == Turn::pass) passed_ += extra;
    grow(h, extra);
    return std::nullopt;
  }

  void grow(ModelHolding& h, std::uint64_t extra) {
    h.bytes += extra;
    stats.bytes_in_use += extra;
    if (h.partition != 0) partition(h.partition).bytes += extra;
    raise_peaks();
    refresh_head();
  }

  // --- The queue -------------------------------------------------------------------

  /// Queues a request start_waiting said waits. The pool then hands out what
  /// is free (a no-op if the rest of the model is right, kept to match).
  void enqueue(std::size_t request, std::uint64_t declared, std::uint64_t needed,
               std::uint16_t id = 0) {
    queue.push_back({request, declared, needed, id});
    if (id != 0) ++partition(id).waiters;
    stats.waiters = queue.size();
    stats.waiting_bytes += needed;
    refresh_head();
    dispatch();
  }

  /// Answers a waiter: admitted (nullopt) or refused; it leaves the queue.
  void answer(Waiter w, std::optional<Refusal> refusal) {
    ModelRequest& r = requests[w->request];
    r.answered = true;
    const ModelWaiter gone = *w;
    queue.erase(w);
    stats.waiters = queue.size();
    stats.waiting_bytes -= gone.needed;
    if (gone.partition != 0) --partition(gone.partition).waiters;
    if (refusal) {
      r.rejection = refuse(*refusal, gone.declared, gone.needed, gone.partition);
    } else {
      r.admitted = true;
      r.holding = {true, gone.needed, gone.declared, {}, gone.partition};
      take(gone.needed, gone.partition);
    }
    refresh_head();
  }
  void answer(Waiter w, Reason reason) { answer(w, Refusal{reason}); }

  /// Hands what is free to the waiters; under pressure, nobody. First those
  /// their partition's guarantee covers, in queue order (FIFO and lanes stop
  /// everything at one that does not fit: what frees is owed to it). Then
  /// everyone else in queue order, skipping whoever its own partition's
  /// ceiling holds back: FIFO stops at the first waiter that does not fit,
  /// barging tries them all; lanes tries the head, then each waiter behind it
  /// through the head's window: it stops once the window is closed and skips
  /// one too big for it. A head admitted here makes the next waiter in line
  /// the head, with a new window from now, tried as a head.
  void dispatch() {
    refresh_head();  // what was given back may have let a partition's waiter in line
    if (pressure) return;
    for (auto w = queue.begin(); w != queue.end();) {
      const auto next = std::next(w);
      if (guaranteed(*w)) {
        if (fits(w->needed)) {
          answer(w, std::nullopt);
        } else if (!barging()) {
          return;
        }
      }
      w = next;
    }
    for (auto w = queue.begin(); w != queue.end();) {
      const auto next = std::next(w);
      if (held_by_ceiling(*w)) {
        w = next;
        continue;
      }
      const bool passing = lanes() && w->request != head_request_;
      const Pass pass = passing ? may_pass(w->needed) : Pass::open;
      if (pass == Pass::closed) break;
      if (pass == Pass::open) {
        if (fits(w->needed)) {
          if (passing) passed_ += w->needed;
          answer(w, std::nullopt);
        } else if (fairness_ == admit::Fairness::fifo) {
          break;  // nobody passes the head
        }
      }
      w = next;
    }
  }

  /// A new budget: whoever can never fit it (or its partition's new
  /// ceiling) is refused at once, wherever it waits; then what is free goes
  /// to the others.
  void set_memory_budget(std::uint64_t budget) {
    stats.memory_budget = budget;
    for (auto w = queue.begin(); w != queue.end();) {
      const auto next = std::next(w);
      if (w->needed > budget) {
        answer(w, Reason::too_large);
      } else if (w->partition != 0 && w->needed > ceiling_bytes(partition(w->partition))) {
        answer(w, Refusal{Reason::too_large, true});
      }
      w = next;
    }
    dispatch();
  }

  void close() {
    if (closed) return;
    closed = true;
    while (!queue.empty()) answer(queue.begin(), Reason::closed);
  }

  Waiter find_waiter(std::size_t request) {
    return std::find_if(queue.begin(), queue.end(),
                        [&](const ModelWaiter& w) { return w.request == request; });
  }

 private:
  static constexpr std::size_t no_head = request_count;

  /// Lanes: whoever is the head now (the first waiter in line: with
  /// partitions, not held back by its own ceiling); a new head's window
  /// opens now. Called after everything that may change who it is.
  void refresh_head() {
    const auto in_line = std::find_if(queue.begin(), queue.end(),
                                      [this](const ModelWaiter& w) { return !held_by_ceiling(w); });
    const std::size_t head = in_line == queue.end() ? no_head : in_line->request;
    head_ = head != no_head;
    head_needed_ = head_ ? in_line->needed : 0;
    if (head == head_request_) return;
    head_request_ = head;
    head_since_us_ = now_us;
    passed_ = 0;
  }

  admit::Fairness fairness_;
  std::uint32_t max_waiters_;
  std::int64_t max_head_wait_us_;
  std::uint64_t max_pass_percent_;
  bool head_ = false;                   // lanes: someone is the head
  std::size_t head_request_ = no_head;  // lanes: which request it is
  std::uint64_t head_needed_ = 0;
  std::int64_t head_since_us_ = 0;  // lanes: when the head became the head
  std::uint64_t passed_ = 0;        // lanes: the bytes that passed it since
};

}  // namespace pool_fuzz

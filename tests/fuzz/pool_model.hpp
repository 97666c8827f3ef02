// pool_model.hpp - the contract of SlotPool as the simplest code that could
// keep it, for pool_ops.cpp: counters, a list of waiters in queue order, the
// refusal order of pool.hpp, and for Fairness::lanes the head's passing window
// (config.hpp). Plain and single-threaded on purpose: a second implementation
// of the pool's tricks would share their mistakes.
//
// Time, for lanes: the model keeps its own clock in microseconds (now_us),
// which pool_ops advances together with the pool's fake lanes clock. The
// other clocks (deadlines) are the pool's business: the harness only makes
// requests whose answer does not depend on when they are looked at.
#pragma once

#include <admit/config.hpp>
#include <admit/rejection.hpp>
#include <admit/stats.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <list>
#include <optional>
#include <string>

namespace pool_fuzz {

using admit::Reason;
using admit::Rejection;

constexpr std::size_t holder_count = 6;    // reservations the fuzzer holds by index
constexpr std::size_t request_count = 12;  // async requests per run, at most

/// What the model says a reservation holds.
struct ModelHolding {
  bool held = false;
  std::uint64_t bytes = 0;
  std::uint64_t declared = 0;
  std::string label;
};

/// What the model says about one async request.
struct ModelRequest {
  bool made = false;
  bool answered = false;
  bool admitted = false;
  Rejection rejection{};
  ModelHolding holding;  // the reservation the handler received, while it is kept there
};

struct ModelWaiter {
  std::size_t request;  // index into the requests
  std::uint64_t declared;
  std::uint64_t needed;
};

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
  std::int64_t now_us = 0;  // the lanes clock; only pool_ops moves it, with the pool's

  [[nodiscard]] bool lanes() const noexcept { return fairness_ == admit::Fairness::lanes; }

  [[nodiscard]] std::uint64_t available() const noexcept {
    return stats.bytes_in_use < stats.memory_budget ? stats.memory_budget - stats.bytes_in_use : 0;
  }
  [[nodiscard]] bool slots_full() const noexcept { return stats.slots_in_use >= stats.slots; }
  [[nodiscard]] bool fits(std::uint64_t needed) const noexcept {
    return !slots_full() && needed <= available();
  }

  [[nodiscard]] Rejection rejection(Reason reason, std::uint64_t declared,
                                    std::uint64_t needed) const noexcept {
    return Rejection{
        reason,     declared, needed, available(), stats.memory_budget, stats.slots_in_use,
        stats.slots};
  }
  Rejection refuse(Reason reason, std::uint64_t declared, std::uint64_t needed) noexcept {
    count(reason);
    return rejection(reason, declared, needed);
  }
  void count(Reason reason) noexcept {
    switch (reason) {
      case Reason::too_large:
        ++stats.rejected.too_large;
        break;
      case Reason::no_slot:
        ++stats.rejected.no_slot;
        break;
      case Reason::no_memory:
        ++stats.rejected.no_memory;
        break;
      case Reason::queue_full:
        ++stats.rejected.queue_full;
        break;
      case Reason::timeout:
        ++stats.rejected.timeout;
        break;
      case Reason::cancelled:
        ++stats.rejected.cancelled;
        break;
      case Reason::closed:
        ++stats.rejected.closed;
        break;
      case Reason::pressure:
        ++stats.rejected.pressure;
        break;
    }
  }

  void take(std::uint64_t needed) noexcept {
    stats.bytes_in_use += needed;
    ++stats.slots_in_use;
    ++stats.admitted;
    raise_peaks();
  }
  void raise_peaks() noexcept {
    stats.peak_bytes_in_use = std::max(stats.peak_bytes_in_use, stats.bytes_in_use);
    stats.peak_slots_in_use = std::max(stats.peak_slots_in_use, stats.slots_in_use);
  }
  void give_back(const ModelHolding& h) noexcept {
    stats.bytes_in_use -= h.bytes;
    --stats.slots_in_use;
  }

  // --- Lanes: the head's passing window ----------------------------------------

  /// May a request of `needed` bytes pass the head now? open: yes; too_big:
  /// not this one (it would take the passers past the head's share), but a
  /// smaller one may; closed: nobody may (the share is used up, or
  /// max_head_wait has gone by since the head became the head).
  enum class Pass { open, too_big, closed };
  [[nodiscard]] Pass may_pass(std::uint64_t needed) const noexcept {
    if (queue.empty()) return Pass::open;
    const std::uint64_t share = head_share();
    if (passed_ >= share || now_us - head_since_us_ >= max_head_wait_us_) return Pass::closed;
    return needed > share - passed_ ? Pass::too_big : Pass::open;
  }
  /// The bytes the passers may take from the current head in all.
  [[nodiscard]] std::uint64_t head_share() const noexcept {
    return queue.empty() ? 0 : queue.front().needed * max_pass_percent_ / 100;
  }
  [[nodiscard]] std::uint64_t passed() const noexcept { return passed_; }
  [[nodiscard]] std::int64_t head_since_us() const noexcept { return head_since_us_; }

  // --- Requests ------------------------------------------------------------------

  /// Why the first attempt (try_acquire; acquire and async_acquire before
  /// they queue) refuses `needed` now, in pool.hpp's order; nullopt: admitted
  /// (then call admit_first).
  [[nodiscard]] std::optional<Reason> first_refusal(std::uint64_t needed) const noexcept {
    if (closed) return Reason::closed;
    if (needed > stats.memory_budget) return Reason::too_large;
    if (pressure) return Reason::pressure;
    if (fairness_ != admit::Fairness::barging && !queue.empty()) {
      // FIFO: what is free is owed to the waiters; lanes: unless the request
      // goes through the head's window, and fits.
      if (lanes() && may_pass(needed) == Pass::open && fits(needed)) return std::nullopt;
      return slots_full() ? Reason::no_slot : Reason::no_memory;
    }
    if (slots_full()) return Reason::no_slot;
    if (needed > available()) return Reason::no_memory;
    return std::nullopt;
  }
  /// Takes what first_refusal admitted; in lanes mode with waiters it passed the head.
  void admit_first(std::uint64_t needed) noexcept {
    if (lanes() && !queue.empty()) passed_ += needed;
    take(needed);
  }

  /// try_acquire's answer: nullopt when admitted (and taken).
  std::optional<Rejection> try_acquire(std::uint64_t declared, std::uint64_t needed) noexcept {
    if (const std::optional<Reason> why = first_refusal(needed))
      return refuse(*why, declared, needed);
    admit_first(needed);
    return std::nullopt;
  }

  /// What happens to a request that may wait: answered at once (admitted:
  /// nullopt in `refused`), or queued.
  struct WaitStart {
    bool queued = false;
    std::optional<Rejection> refused;
  };
  WaitStart start_waiting(std::uint64_t declared, std::uint64_t needed, bool deadline_passed) {
    if (closed) return {false, refuse(Reason::closed, declared, needed)};
    if (needed > stats.memory_budget) return {false, refuse(Reason::too_large, declared, needed)};
    if (deadline_passed) return {false, refuse(Reason::timeout, declared, needed)};
    if (!first_refusal(needed)) {
      admit_first(needed);
      return {false, std::nullopt};
    }
    if (queue_full()) return {false, refuse(Reason::queue_full, declared, needed)};
    return {true, std::nullopt};
  }
  /// Whether start_waiting would queue the request (and not answer it at once).
  [[nodiscard]] bool would_queue(std::uint64_t needed, bool deadline_passed) const noexcept {
    return !closed && needed <= stats.memory_budget && !deadline_passed &&
           first_refusal(needed).has_value() && !queue_full();
  }
  [[nodiscard]] bool queue_full() const noexcept {
    return max_waiters_ != 0 && queue.size() >= max_waiters_;
  }

  /// try_grow of a held reservation by `extra` > 0: nullopt when grown (and
  /// taken). The too_large, pressure and no_memory refusals are not counted
  /// in stats().rejected: only admissions are.
  std::optional<Rejection> try_grow(ModelHolding& h, std::uint64_t extra) noexcept {
    const std::uint64_t budget = stats.memory_budget;
    if (extra > budget || h.bytes > budget - extra) {
      return rejection(Reason::too_large, h.declared, extra);
    }
    if (pressure) return rejection(Reason::pressure, h.declared, extra);
    if (fairness_ != admit::Fairness::barging && !queue.empty()) {
      // FIFO: the bytes are owed to the waiters; lanes: unless the growth goes
      // through the head's window (it needs no slot, only the bytes).
      if (!lanes() || may_pass(extra) != Pass::open || extra > available()) {
        return rejection(Reason::no_memory, h.declared, extra);
      }
      passed_ += extra;
    } else if (extra > available()) {
      return rejection(Reason::no_memory, h.declared, extra);
    }
    h.bytes += extra;
    stats.bytes_in_use += extra;
    raise_peaks();
    return std::nullopt;
  }

  // --- The queue -------------------------------------------------------------------

  /// Queues a request start_waiting said waits. The pool then hands out what
  /// is free (a no-op if the rest of the model is right, kept to match).
  void enqueue(std::size_t request, std::uint64_t declared, std::uint64_t needed) {
    queue.push_back({request, declared, needed});
    if (queue.size() == 1) new_head();
    stats.waiters = queue.size();
    stats.waiting_bytes += needed;
    dispatch();
  }

  /// Answers a waiter: admitted (nullopt) or refused; it leaves the queue.
  void answer(Waiter w, std::optional<Reason> refusal) {
    ModelRequest& r = requests[w->request];
    r.answered = true;
    if (refusal) {
      r.rejection = refuse(*refusal, w->declared, w->needed);
    } else {
      take(w->needed);
      r.admitted = true;
      r.holding = {true, w->needed, w->declared, {}};
    }
    stats.waiting_bytes -= w->needed;
    const bool was_head = w == queue.begin();
    queue.erase(w);
    stats.waiters = queue.size();
    // Whoever is at the front now has just become the head.
    if (was_head && !queue.empty()) new_head();
  }

  /// Hands what is free to the waiters in queue order; under pressure, nobody.
  /// FIFO stops at the first waiter that does not fit, barging tries them
  /// all; lanes tries the head, then each waiter behind it through the
  /// head's window: it stops once the window is closed and skips one too big
  /// for it. A head admitted here makes the next waiter the head, with a new
  /// window from now, tried as a head.
  void dispatch() {
    if (pressure) return;
    for (auto w = queue.begin(); w != queue.end();) {
      const auto next = std::next(w);
      const bool passing = lanes() && w != queue.begin();
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

  /// A new budget: whoever can never fit it is refused at once, wherever it
  /// waits; then what is free goes to the others.
  void set_memory_budget(std::uint64_t budget) {
    stats.memory_budget = budget;
    for (auto w = queue.begin(); w != queue.end();) {
      const auto next = std::next(w);
      if (w->needed > budget) answer(w, Reason::too_large);
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
  /// Lanes: the front of the queue has just become the head; its window opens.
  void new_head() noexcept {
    head_since_us_ = now_us;
    passed_ = 0;
  }

  admit::Fairness fairness_;
  std::uint32_t max_waiters_;
  std::int64_t max_head_wait_us_;
  std::uint64_t max_pass_percent_;
  std::int64_t head_since_us_ = 0;  // lanes: when the head became the head
  std::uint64_t passed_ = 0;        // lanes: the bytes that passed it since
};

}  // namespace pool_fuzz

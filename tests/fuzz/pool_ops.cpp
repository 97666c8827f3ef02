// pool_ops.cpp - a fuzzer-chosen sequence of single-threaded SlotPool
// operations, checked step by step against a plain model of the contract.
//
// The input chooses a pool (slots, budget, flat policy percent, FIFO or
// barging, max_waiters, tracking) and then up to 256 operations: try_acquire,
// acquire (answered at once: admitted, refused, or an expired deadline),
// async_acquire without a deadline, with a far one and with one the timer
// thread lets expire, cancel, release, moves between holders, try_grow,
// shrink, set_label, close, set_memory_budget (invalid values included),
// set_pressure, wait_idle and the release of a stale bitwise copy.
//
// The model is the contract written as the simplest code that could keep it:
// counters, a FIFO list of waiters, and the refusal order of pool.hpp. After
// every operation the fuzzer compares everything observable: stats() (every
// field, peaks and refusal counts included), every reservation (held or not,
// bytes, declared size, a slot index unique among the held ones), every
// async request (its handler called exactly once when, and only when, the
// model answered it, with the same reservation or the same Rejection, every
// figure included), head_waiter_needs(), and reservations() when tracking is
// on. At the end it closes the pool, gives everything back and checks that
// the pool is empty. Any difference aborts, naming what differed.
//
// Determinism: one thread drives the pool, so every answer is the model's,
// except the timer thread's: an expiring request is only made when the model
// says it will queue, and the fuzzer then waits (bounded) for its handler,
// with nothing else changing in between.
#include <admit/pool.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../bitwise_copy.hpp"
#include "fuzz_check.hpp"
#include "fuzz_input.hpp"

namespace {

using admit::Reason;
using admit::Rejection;
using admit::SlotReservation;
using Clock = std::chrono::steady_clock;
using Pool = admit::SlotPool<admit::FlatPolicy>;

constexpr std::size_t holder_count = 6;    // reservations the fuzzer holds by index
constexpr std::size_t request_count = 12;  // async requests per run, at most
constexpr int max_operations = 256;

/// What the model says a reservation holds.
struct ModelHolding {
  bool held = false;
  std::uint64_t bytes = 0;
  std::uint64_t declared = 0;
  std::string label;
};

/// What an async request's handler received; written by the handler (maybe on
/// the pool's timer thread), read by the fuzzer after `calls` says it ran.
struct Outcome {
  std::atomic<int> calls{0};
  bool admitted = false;
  Rejection rejection{};
  SlotReservation reservation;
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
  explicit Model(const admit::PoolConfig& config)
      : fifo_{config.fairness == admit::Fairness::fifo} {
    stats.memory_budget = config.memory_budget;
    stats.slots = config.slots;
    max_waiters_ = config.max_waiters;
  }

  admit::Stats stats{};
  bool closed = false;
  bool pressure = false;
  std::list<ModelWaiter> queue;
  std::array<ModelRequest, request_count> requests{};

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

  /// try_acquire's answer: nullopt when admitted (and taken).
  std::optional<Rejection> try_acquire(std::uint64_t declared, std::uint64_t needed) noexcept {
    if (const std::optional<Reason> why = fast_refusal(needed))
      return refuse(*why, declared, needed);
    take(needed);
    return std::nullopt;
  }

  /// Why the lock-free attempt refuses `needed` now, in pool.hpp's order.
  [[nodiscard]] std::optional<Reason> fast_refusal(std::uint64_t needed) const noexcept {
    const std::uint64_t budget = stats.memory_budget;
    if (closed) return Reason::closed;
    if (needed > budget) return Reason::too_large;
    if (pressure) return Reason::pressure;
    if (fifo_ && !queue.empty()) return slots_full() ? Reason::no_slot : Reason::no_memory;
    if (slots_full()) return Reason::no_slot;
    if (needed > available()) return Reason::no_memory;
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
    if (!fast_refusal(needed)) {
      take(needed);
      return {false, std::nullopt};
    }
    if (queue_full()) return {false, refuse(Reason::queue_full, declared, needed)};
    return {true, std::nullopt};
  }
  /// Whether start_waiting would queue the request (and not answer it at once).
  [[nodiscard]] bool would_queue(std::uint64_t needed, bool deadline_passed) const noexcept {
    return !closed && needed <= stats.memory_budget && !deadline_passed &&
           fast_refusal(needed).has_value() && !queue_full();
  }
  [[nodiscard]] bool queue_full() const noexcept {
    return max_waiters_ != 0 && queue.size() >= max_waiters_;
  }

  void enqueue(std::size_t request, std::uint64_t declared, std::uint64_t needed) {
    queue.push_back({request, declared, needed});
    stats.waiters = queue.size();
    stats.waiting_bytes += needed;
  }

  void answer(std::list<ModelWaiter>::iterator w, std::optional<Reason> refusal) {
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
    queue.erase(w);
    stats.waiters = queue.size();
  }

  /// Hands what is free to the waiters in queue order; under pressure, nobody.
  void dispatch() {
    if (pressure) return;
    for (auto w = queue.begin(); w != queue.end();) {
      const auto next = std::next(w);
      if (fits(w->needed)) {
        answer(w, std::nullopt);
      } else if (fifo_) {
        break;  // nobody passes the head
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

  std::list<ModelWaiter>::iterator find_waiter(std::size_t request) {
    return std::find_if(queue.begin(), queue.end(),
                        [&](const ModelWaiter& w) { return w.request == request; });
  }

  void give_back(const ModelHolding& h) noexcept {
    stats.bytes_in_use -= h.bytes;
    --stats.slots_in_use;
  }

 private:
  bool fifo_;
  std::uint32_t max_waiters_ = 0;
};

class Run {
 public:
  Run(admit_fuzz::FuzzInput& in, const admit::PoolConfig& config, std::uint32_t percent,
      bool timers)
      : in_{in},
        timers_{timers},
        tracking_{config.track_reservations},
        fifo_{config.fairness == admit::Fairness::fifo},
        pool_{config, admit::FlatPolicy{percent}},
        model_{config} {}

  void operations() {
    // ADMIT_FUZZ_TRACE=1: each operation and the pool after it, to read a crash's input.
    static const bool trace = std::getenv("ADMIT_FUZZ_TRACE") != nullptr;
    for (int step = 0; step < max_operations && !in_.empty(); ++step) {
      const unsigned op = in_.byte() % 17;
      operation(op);
      if (trace) {
        const admit::Stats s = pool_.stats();
        std::fprintf(stderr,
                     "step %d op %u: bytes %llu slots %u waiters %llu budget %llu closed %d "
                     "pressure %d (model: bytes %llu slots %u waiters %llu)\n",
                     step, op, static_cast<unsigned long long>(s.bytes_in_use), s.slots_in_use,
                     static_cast<unsigned long long>(s.waiters),
                     static_cast<unsigned long long>(s.memory_budget), pool_.closed() ? 1 : 0,
                     pool_.under_pressure() ? 1 : 0,
                     static_cast<unsigned long long>(model_.stats.bytes_in_use),
                     model_.stats.slots_in_use,
                     static_cast<unsigned long long>(model_.stats.waiters));
      }
      check();
    }
  }

  void finish() {
    pool_.close();
    model_.closed = true;
    while (!model_.queue.empty()) model_.answer(model_.queue.begin(), Reason::closed);
    if (std::getenv("ADMIT_FUZZ_TRACE") != nullptr) {
      std::fprintf(stderr, "close: waiters %llu, model %llu\n",
                   static_cast<unsigned long long>(pool_.stats().waiters),
                   static_cast<unsigned long long>(model_.stats.waiters));
    }
    check();
    for (std::size_t i = 0; i < holder_count; ++i) release_holder(i);
    for (std::size_t r = 0; r < request_count; ++r) {
      if (model_.requests[r].holding.held) {
        outcomes_[r].reservation.release();
        model_.give_back(model_.requests[r].holding);
        model_.requests[r].holding = {};
      }
    }
    check();
    const admit::Stats s = pool_.stats();
    ADMIT_FUZZ_CHECK(
        s.bytes_in_use == 0 && s.slots_in_use == 0 && s.waiters == 0 && s.waiting_bytes == 0,
        "the pool is not empty once everything was given back");
    ADMIT_FUZZ_CHECK(pool_.wait_idle(Clock::now()), "wait_idle() is false with nothing held");
    for (std::size_t r = 0; r < request_count; ++r) {
      ADMIT_FUZZ_CHECK(outcomes_[r].calls.load() == (model_.requests[r].made ? 1 : 0),
                       "a request's handler was not called exactly once");
    }
  }

 private:
  std::uint64_t size() {
    // Mostly around the budget, where the decisions are; sometimes anything.
    const std::uint64_t budget = model_.stats.memory_budget;
    switch (in_.byte() % 4) {
      case 0:
        return in_.in_range(0, budget / 4 + 1);
      case 1:
        return in_.in_range(0, budget + budget / 2 + 1);
      case 2:
        return budget;
      default:
        return in_.bits(8);
    }
  }
  std::size_t holder() { return in_.byte() % holder_count; }

  void operation(unsigned op) {
    switch (op) {
      case 0:
      case 1:
        return try_acquire();
      case 2:
        return acquire_at_once();
      case 3:
      case 4:
        return async_acquire();
      case 5:
        return cancel();
      case 6:
      case 7:
        return release_holder(holder());
      case 8:
        return move();
      case 9:
        return try_grow();
      case 10:
        return shrink();
      case 11:
        return set_label();
      case 12:
        return set_memory_budget();
      case 13:
        return set_pressure(in_.flag());
      case 14:
        return adopt();
      case 15:
        return stale_copy();
      default:
        return rare();
    }
  }

  void try_acquire() {
    const std::size_t i = holder();
    const std::uint64_t declared = size();
    const std::uint64_t needed = pool_.bytes_for(declared);
    admit::Admission a = pool_.try_acquire(declared);
    const std::optional<Rejection> expected = model_.try_acquire(declared, needed);
    if (expected) {
      ADMIT_FUZZ_CHECK(!a.has_value(), "try_acquire admitted what the model refuses");
      ADMIT_FUZZ_CHECK(a.error() == *expected, "try_acquire's Rejection differs from the model's");
      return;
    }
    ADMIT_FUZZ_CHECK(a.has_value(), "try_acquire refused what the model admits");
    hold(i, std::move(*a), {true, needed, declared, {}});
  }

  /// Puts `r` in holder i, releasing what it held before (as operator= does).
  void hold(std::size_t i, SlotReservation&& r, ModelHolding h) {
    const ModelHolding previous = holdings_[i];
    holders_[i] = std::move(r);
    holdings_[i] = std::move(h);
    if (previous.held) {
      model_.give_back(previous);
      model_.dispatch();
    }
  }

  void release_holder(std::size_t i) {
    holders_[i].release();
    if (holdings_[i].held) {
      model_.give_back(holdings_[i]);
      holdings_[i] = {};
      model_.dispatch();
    }
  }

  /// The blocking acquire, where it cannot block: an expired deadline, or a
  /// request the model answers at once.
  void acquire_at_once() {
    const std::size_t i = holder();
    const std::uint64_t declared = size();
    const std::uint64_t needed = pool_.bytes_for(declared);
    const bool expired = in_.flag();
    if (model_.would_queue(needed, expired)) return;  // it would block this thread
    const Model::WaitStart start = model_.start_waiting(declared, needed, expired);
    admit::Admission a = expired ? pool_.acquire(declared, Clock::now() - std::chrono::seconds{1})
                                 : pool_.acquire(declared, Clock::time_point::max());
    if (start.refused) {
      ADMIT_FUZZ_CHECK(!a.has_value(), "acquire admitted what the model refuses");
      ADMIT_FUZZ_CHECK(a.error() == *start.refused, "acquire's Rejection differs from the model's");
      return;
    }
    ADMIT_FUZZ_CHECK(a.has_value(), "acquire refused what the model admits");
    hold(i, std::move(*a), {true, needed, declared, {}});
  }

  void async_acquire() {
    if (next_request_ == request_count) return;
    const std::size_t r = next_request_++;
    const std::uint64_t declared = size();
    const std::uint64_t needed = pool_.bytes_for(declared);
    // A future deadline starts the pool's timer thread, and an expiring one
    // makes this thread wait for it: only in the runs that chose timers, so
    // that most runs stay on one thread and fast.
    enum class Deadline { none, far, expired, expiring };
    const unsigned choice = in_.byte() % 16;
    Deadline kind = choice < 6    ? Deadline::none
                    : choice < 10 ? Deadline::far
                    : choice < 15 ? Deadline::expired
                                  : Deadline::expiring;
    if (!timers_ && (kind == Deadline::far || kind == Deadline::expiring)) kind = Deadline::none;
    // An expiring deadline may pass before the pool looks at it: only where
    // that changes nothing (the request would wait) is it deterministic.
    if (kind == Deadline::expiring && !model_.would_queue(needed, false)) kind = Deadline::far;
    const Model::WaitStart start =
        model_.start_waiting(declared, needed, kind == Deadline::expired);
    ModelRequest& m = model_.requests[r];
    m.made = true;
    if (start.queued) {
      model_.enqueue(r, declared, needed);
    } else {
      m.answered = true;
      m.admitted = !start.refused;
      if (start.refused) m.rejection = *start.refused;
      if (m.admitted) m.holding = {true, needed, declared, {}};
    }

    Outcome& o = outcomes_[r];
    auto handler = [&o](admit::Admission&& a) {
      o.admitted = a.has_value();
      if (a) {
        o.reservation = std::move(*a);
      } else {
        o.rejection = a.error();
      }
      // release: the fuzzer reads the fields above after seeing the call.
      o.calls.fetch_add(1, std::memory_order_release);
    };
    switch (kind) {
      case Deadline::none:
        tickets_[r] = pool_.async_acquire(declared, handler);
        break;
      case Deadline::far:
        tickets_[r] = pool_.async_acquire(declared, Clock::now() + std::chrono::hours{1}, handler);
        break;
      case Deadline::expired:
        tickets_[r] =
            pool_.async_acquire(declared, Clock::now() - std::chrono::seconds{1}, handler);
        break;
      case Deadline::expiring:
        tickets_[r] =
            pool_.async_acquire(declared, Clock::now() + std::chrono::microseconds{200}, handler);
        // The timer thread answers it, then hands what is free to the others;
        // the model does the same, and the fuzzer waits for every handler it
        // expects to have run.
        model_.answer(model_.find_waiter(r), Reason::timeout);
        model_.dispatch();
        await_handlers();
        break;
    }
  }

  /// Waits (bounded) until every answer of the model has reached its handler.
  void await_handlers() {
    const Clock::time_point give_up = Clock::now() + std::chrono::seconds{10};
    for (std::size_t r = 0; r < request_count; ++r) {
      while (model_.requests[r].answered &&
             outcomes_[r].calls.load(std::memory_order_acquire) == 0) {
        ADMIT_FUZZ_CHECK(Clock::now() < give_up, "an expired request was never answered");
        std::this_thread::sleep_for(std::chrono::microseconds{100});
      }
    }
  }

  void cancel() {
    if (next_request_ == 0) return;
    const std::size_t r = in_.byte() % next_request_;
    const bool cancelled = tickets_[r].cancel();
    const auto w = model_.find_waiter(r);
    ADMIT_FUZZ_CHECK(cancelled == (w != model_.queue.end()),
                     "cancel() answered otherwise than whether the request waited");
    if (cancelled) {
      model_.answer(w, Reason::cancelled);
      model_.dispatch();
    }
  }

  void move() {
    const std::size_t from = holder();
    const std::size_t to = holder();
    if (from == to) return;
    const ModelHolding moved = holdings_[from];
    holdings_[from] = {};
    hold(to, std::move(holders_[from]), moved);
    ADMIT_FUZZ_CHECK(!holders_[from], "a moved-from reservation still holds");
  }

  /// Takes the reservation an async handler received into a holder.
  void adopt() {
    if (next_request_ == 0) return;
    const std::size_t r = in_.byte() % next_request_;
    ModelRequest& m = model_.requests[r];
    if (!m.holding.held) return;
    const ModelHolding moved = m.holding;
    m.holding = {};
    hold(holder(), std::move(outcomes_[r].reservation), moved);
  }

  void try_grow() {
    const std::size_t i = holder();
    const std::uint64_t extra = in_.flag() ? in_.in_range(0, 64) : size();
    const admit::GrowResult grown = holders_[i].try_grow(extra);
    ModelHolding& h = holdings_[i];
    const admit::Stats& s = model_.stats;
    std::optional<Rejection> expected;
    if (!h.held) {
      expected = Rejection{Reason::closed, 0, extra, 0, 0, 0, 0};
    } else if (extra == 0) {
      // always grows
    } else if (extra > s.memory_budget || h.bytes > s.memory_budget - extra) {
      expected = model_.rejection(Reason::too_large, h.declared, extra);
    } else if (model_.pressure) {
      expected = model_.rejection(Reason::pressure, h.declared, extra);
    } else if ((fifo_ && !model_.queue.empty()) || extra > model_.available()) {
      expected = model_.rejection(Reason::no_memory, h.declared, extra);
    }
    if (expected) {
      ADMIT_FUZZ_CHECK(!grown, "try_grow grew where the model refuses");
      ADMIT_FUZZ_CHECK(grown.error() == *expected, "try_grow's Rejection differs from the model's");
      return;
    }
    ADMIT_FUZZ_CHECK(grown.grown(), "try_grow refused where the model grows");
    h.bytes += extra;
    model_.stats.bytes_in_use += extra;
    model_.raise_peaks();
  }

  void shrink() {
    const std::size_t i = holder();
    const std::uint64_t fewer = in_.flag() ? in_.in_range(0, 64) : size();
    const std::uint64_t given = holders_[i].shrink(fewer);
    ModelHolding& h = holdings_[i];
    const std::uint64_t expected = h.held ? std::min(fewer, h.bytes) : 0;
    ADMIT_FUZZ_CHECK(given == expected, "shrink gave back another amount than the model");
    h.bytes -= expected;
    model_.stats.bytes_in_use -= expected;
    if (expected != 0) model_.dispatch();
  }

  void set_label() {
    const std::size_t i = holder();
    std::string label = in_.text(40);
    for (char& c : label) c = static_cast<char>('a' + static_cast<unsigned char>(c) % 26);
    holders_[i].set_label(label);
    if (tracking_ && holdings_[i].held) {
      holdings_[i].label = label.substr(0, admit::ReservationRecord::max_label_size);
    }
  }

  void set_memory_budget() {
    const std::uint64_t budget = in_.byte() % 8 == 0 ? in_.bits(8) : in_.in_range(1, 4096);
    if (budget == 0 || budget > admit::PoolConfig::max_memory_budget) {
      bool refused = false;
      try {
        pool_.set_memory_budget(budget);
      } catch (const std::invalid_argument&) {
        refused = true;
      }
      ADMIT_FUZZ_CHECK(refused, "set_memory_budget accepted a budget out of range");
      return;
    }
    pool_.set_memory_budget(budget);
    model_.set_memory_budget(budget);
  }

  void set_pressure(bool on) {
    pool_.set_pressure(on);
    if (model_.pressure == on) return;
    model_.pressure = on;
    if (!on) model_.dispatch();
  }

  /// A bitwise copy of a held reservation, destroyed after the original was
  /// released: the pool refuses it, counts it, and gives back nothing.
  void stale_copy() {
    const std::size_t i = holder();
    if (!holdings_[i].held) return;
    admit_test::BitwiseCopy copy{holders_[i]};
    release_holder(i);
    copy.destroy();
    ++model_.stats.double_releases;
  }

  void rare() {
    switch (in_.byte() % 4) {
      case 0:
        pool_.close();
        if (!model_.closed) {
          model_.closed = true;
          while (!model_.queue.empty()) model_.answer(model_.queue.begin(), Reason::closed);
        }
        return;
      case 1:
        ADMIT_FUZZ_CHECK(pool_.wait_idle(Clock::now()) == (model_.stats.slots_in_use == 0),
                         "wait_idle(now) disagrees with the slots in use");
        return;
      default:
        return set_pressure(!model_.pressure);
    }
  }

  void check() {
    const admit::Stats s = pool_.stats();
    ADMIT_FUZZ_CHECK(s.memory_budget == model_.stats.memory_budget, "stats().memory_budget");
    ADMIT_FUZZ_CHECK(s.bytes_in_use == model_.stats.bytes_in_use, "stats().bytes_in_use");
    ADMIT_FUZZ_CHECK(s.slots_in_use == model_.stats.slots_in_use, "stats().slots_in_use");
    ADMIT_FUZZ_CHECK(s.peak_bytes_in_use == model_.stats.peak_bytes_in_use,
                     "stats().peak_bytes_in_use");
    ADMIT_FUZZ_CHECK(s.peak_slots_in_use == model_.stats.peak_slots_in_use,
                     "stats().peak_slots_in_use");
    ADMIT_FUZZ_CHECK(s.waiters == model_.stats.waiters, "stats().waiters");
    ADMIT_FUZZ_CHECK(s.waiting_bytes == model_.stats.waiting_bytes, "stats().waiting_bytes");
    ADMIT_FUZZ_CHECK(s.admitted == model_.stats.admitted, "stats().admitted");
    ADMIT_FUZZ_CHECK(s.rejected == model_.stats.rejected, "stats().rejected (some reason's count)");
    ADMIT_FUZZ_CHECK(s.double_releases == model_.stats.double_releases, "stats().double_releases");
    ADMIT_FUZZ_CHECK(s == model_.stats, "stats() differs from the model in another field");
    ADMIT_FUZZ_CHECK(pool_.closed() == model_.closed, "closed()");
    ADMIT_FUZZ_CHECK(pool_.under_pressure() == model_.pressure, "under_pressure()");
    const std::optional<std::uint64_t> head = pool_.head_waiter_needs();
    ADMIT_FUZZ_CHECK(head.has_value() == !model_.queue.empty() &&
                         (!head || *head == model_.queue.front().needed),
                     "head_waiter_needs()");

    // Members, cleared: a check runs after every operation, and under ASan
    // fresh vectors each time were most of a run's cost.
    std::vector<bool>& slot_taken = slot_taken_;
    slot_taken.assign(model_.stats.slots, false);
    std::vector<admit::ReservationRecord>& expected_records = expected_records_;
    expected_records.clear();
    const auto check_holding = [&](const SlotReservation& r, const ModelHolding& h) {
      ADMIT_FUZZ_CHECK(static_cast<bool>(r) == h.held,
                       "a reservation held or not, unlike the model");
      if (!h.held) return;
      ADMIT_FUZZ_CHECK(r.bytes() == h.bytes, "a reservation's bytes()");
      ADMIT_FUZZ_CHECK(r.declared_size() == h.declared, "a reservation's declared_size()");
      ADMIT_FUZZ_CHECK(r.slot() < model_.stats.slots, "a slot index out of range");
      ADMIT_FUZZ_CHECK(!slot_taken[r.slot()], "one slot index held by two reservations");
      slot_taken[r.slot()] = true;
      if (tracking_) expected_records.push_back({r.slot(), h.declared, h.bytes, {}, h.label});
    };
    for (std::size_t i = 0; i < holder_count; ++i) check_holding(holders_[i], holdings_[i]);
    for (std::size_t r = 0; r < request_count; ++r) {
      const ModelRequest& m = model_.requests[r];
      const Outcome& o = outcomes_[r];
      // acquire: pairs with the handler's release (it may have run on the timer thread).
      const int calls = o.calls.load(std::memory_order_acquire);
      ADMIT_FUZZ_CHECK(calls == (m.answered ? 1 : 0),
                       "a handler was called other than once for an answered request");
      if (!m.answered) continue;
      ADMIT_FUZZ_CHECK(o.admitted == m.admitted, "a request admitted or refused, unlike the model");
      if (!m.admitted) {
        ADMIT_FUZZ_CHECK(o.rejection == m.rejection,
                         "a request's Rejection differs from the model's");
      }
      check_holding(o.reservation, m.holding);
    }

    if (tracking_) {
      std::vector<admit::ReservationRecord> records = pool_.reservations();
      const auto by_slot = [](const admit::ReservationRecord& a,
                              const admit::ReservationRecord& b) { return a.slot < b.slot; };
      std::sort(records.begin(), records.end(), by_slot);
      std::sort(expected_records.begin(), expected_records.end(), by_slot);
      for (admit::ReservationRecord& r : records) r.admitted_at = {};
      ADMIT_FUZZ_CHECK(records == expected_records, "reservations() differs from the held ones");
    }
  }

  admit_fuzz::FuzzInput& in_;
  bool timers_;
  bool tracking_;
  bool fifo_;
  // Declared first, destroyed last: the reservations and tickets below go back first.
  Pool pool_;
  Model model_;
  std::array<admit::Ticket, request_count> tickets_{};
  std::array<Outcome, request_count> outcomes_{};
  std::array<SlotReservation, holder_count> holders_{};
  std::array<ModelHolding, holder_count> holdings_{};
  std::size_t next_request_ = 0;
  std::vector<bool> slot_taken_;
  std::vector<admit::ReservationRecord> expected_records_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  admit_fuzz::FuzzInput in{data, size};
  admit::PoolConfig config;
  // Up to 70 slots: past 64 the slot bitmap takes a second word.
  config.slots =
      static_cast<std::uint32_t>(in.byte() % 8 == 0 ? in.in_range(1, 70) : in.in_range(1, 6));
  config.memory_budget = in.byte() % 8 == 0
                             ? admit::PoolConfig::max_memory_budget - in.in_range(0, 4096)
                             : in.in_range(1, 4096);
  config.max_waiters = static_cast<std::uint32_t>(in.byte() % 4 == 0 ? in.in_range(1, 4) : 0);
  config.fairness = in.flag() ? admit::Fairness::barging : admit::Fairness::fifo;
  config.track_reservations = in.flag();
  const auto percent = static_cast<std::uint32_t>(in.byte() % 2 == 0 ? 100 : in.in_range(0, 100));

  const bool timers = in.byte() % 8 == 0;

  Run run{in, config, percent, timers};
  run.operations();
  run.finish();
  return 0;
}

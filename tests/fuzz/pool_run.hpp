// pool_run.hpp - one pool_ops run: the operations the input chooses, each
// done to the pool and to the model (pool_model.hpp) and its answer compared
// at once; Run::check (pool_check.hpp) then compares everything observable.
// The partitions' operations and checks are in pool_partitions.hpp.
#pragma once

#include <admit/pool.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../bitwise_copy.hpp"
#include "fuzz_check.hpp"
#include "fuzz_input.hpp"
#include "pool_model.hpp"

namespace pool_fuzz {

using admit::SlotReservation;
using Clock = std::chrono::steady_clock;
using Pool = admit::SlotPool<admit::FlatPolicy>;

constexpr int max_operations = 256;

// --- The fake lanes clock ----------------------------------------------------------
// Lanes runs measure windows on this clock (PoolConfig::lanes_clock), so that
// a window's end is an operation of the input and every answer is exact.
// Microseconds, not milliseconds: a window's end is then checked to the
// microsecond (open one short of max_head_wait, closed at it), not only at
// whole milliseconds. Atomic: the pool's timer thread reads it too when a
// deadline expires (while the fuzzer waits, with the clock still).

/// Where each run starts the clock: far from the epoch, so that a window
/// measured from a head_since never set (the epoch) is closed at once.
constexpr std::int64_t clock_start_us = 1'000'000'000'000;  // 11.6 days

inline std::atomic<std::int64_t> fake_now_us{clock_start_us};

inline Clock::time_point fake_lanes_clock() noexcept {
  return Clock::time_point{} +
         std::chrono::microseconds{fake_now_us.load(std::memory_order_relaxed)};
}

/// What an async request's handler received; written by the handler (maybe on
/// the pool's timer thread), read by the fuzzer after `calls` says it ran.
struct Outcome {
  std::atomic<int> calls{0};
  bool admitted = false;
  Rejection rejection{};
  SlotReservation reservation;
};

class Run {
 public:
  /// `partitions`: nullopt in a run without partitions (its input reads no
  /// partition bytes); otherwise those to add before the first operation.
  Run(admit_fuzz::FuzzInput& in, const admit::PoolConfig& config, std::uint32_t percent,
      bool timers, const std::optional<std::vector<admit::PartitionConfig>>& partitions)
      : in_{in},
        timers_{timers},
        partitions_on_{partitions.has_value()},
        tracking_{config.track_reservations},
        fake_clock_{config.fairness == admit::Fairness::lanes &&
                    config.lanes_clock == &fake_lanes_clock},
        max_head_wait_us_{std::chrono::microseconds{config.max_head_wait}.count()},
        pool_{config, admit::FlatPolicy{percent}},
        model_{config} {
    // Each run starts the clock anew (the pool reads it only once someone waits).
    fake_now_us.store(clock_start_us, std::memory_order_relaxed);
    model_.now_us = clock_start_us;
    if (partitions) {
      for (const admit::PartitionConfig& c : *partitions) add_partition(c);
    }
  }

  void operations() {
    // ADMIT_FUZZ_TRACE=1: each operation and the pool after it, to read a crash's input.
    static const bool trace = std::getenv("ADMIT_FUZZ_TRACE") != nullptr;
    // Lanes runs have one operation more, moving the fake clock; the others
    // read their operations as before lanes existed, so older inputs keep
    // their meaning.
    // Partition runs have two more (add_partition, bypass), after those.
    const unsigned operation_count = base_operations() + (partitions_on_ ? 2 : 0);
    for (int step = 0; step < max_operations && !in_.empty(); ++step) {
      const unsigned op = in_.byte() % operation_count;
      operation(op);
      if (trace) print_step(step, op);
      check();
    }
  }

  void finish() {
    pool_.close();
    model_.close();
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

  [[nodiscard]] unsigned base_operations() const noexcept { return fake_clock_ ? 18 : 17; }

  void operation(unsigned op) {
    if (op >= base_operations()) return op == base_operations() ? add_partition_op() : bypass();
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
      case 16:
        return rare();
      default:
        return advance_clock();
    }
  }

  void try_acquire() {
    const std::size_t i = holder();
    const std::uint16_t p = which_partition();
    const std::uint64_t declared = size();
    const std::uint64_t needed = pool_.bytes_for(declared);
    admit::Admission a =
        p == 0 ? pool_.try_acquire(declared) : pool_.try_acquire(declared, handles_[p - 1U]);
    const std::optional<Rejection> expected = model_.try_acquire(declared, needed, p);
    if (expected) {
      ADMIT_FUZZ_CHECK(!a.has_value(), "try_acquire admitted what the model refuses");
      ADMIT_FUZZ_CHECK(a.error() == *expected, "try_acquire's Rejection differs from the model's");
      return;
    }
    ADMIT_FUZZ_CHECK(a.has_value(), "try_acquire refused what the model admits");
    hold(i, std::move(*a), {true, needed, declared, {}, p});
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
    const std::uint16_t p = which_partition();
    const std::uint64_t declared = size();
    const std::uint64_t needed = pool_.bytes_for(declared);
    const bool expired = in_.flag();
    if (model_.would_queue(needed, expired, p)) return;  // it would block this thread
    const Model::WaitStart start = model_.start_waiting(declared, needed, expired, p);
    // Not time_point::max(): a pool that waits where the model answers at
    // once then fails here, instead of hanging the fuzzer.
    const Clock::time_point deadline =
        Clock::now() + (expired ? -std::chrono::seconds{1} : std::chrono::seconds{5});
    admit::Admission a = p == 0 ? pool_.acquire(declared, deadline)
                                : pool_.acquire(declared, deadline, handles_[p - 1U]);
    ADMIT_FUZZ_CHECK(expired || a || a.error().reason != Reason::timeout,
                     "acquire waited where the model answers at once");
    if (start.refused) {
      ADMIT_FUZZ_CHECK(!a.has_value(), "acquire admitted what the model refuses");
      ADMIT_FUZZ_CHECK(a.error() == *start.refused, "acquire's Rejection differs from the model's");
      return;
    }
    ADMIT_FUZZ_CHECK(a.has_value(), "acquire refused what the model admits");
    hold(i, std::move(*a), {true, needed, declared, {}, p});
  }

  void async_acquire() {
    if (next_request_ == request_count) return;
    const std::size_t r = next_request_++;
    const std::uint16_t p = which_partition();
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
    if (kind == Deadline::expiring && !model_.would_queue(needed, false, p)) kind = Deadline::far;
    const Model::WaitStart start =
        model_.start_waiting(declared, needed, kind == Deadline::expired, p);
    ModelRequest& m = model_.requests[r];
    m.made = true;
    if (start.queued) {
      model_.enqueue(r, declared, needed, p);
    } else {
      m.answered = true;
      m.admitted = !start.refused;
      if (start.refused) m.rejection = *start.refused;
      if (m.admitted) m.holding = {true, needed, declared, {}, p};
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
        tickets_[r] = async_in(p, declared, std::nullopt, handler);
        break;
      case Deadline::far:
        tickets_[r] = async_in(p, declared, Clock::now() + std::chrono::hours{1}, handler);
        break;
      case Deadline::expired:
        tickets_[r] = async_in(p, declared, Clock::now() - std::chrono::seconds{1}, handler);
        break;
      case Deadline::expiring:
        tickets_[r] = async_in(p, declared, Clock::now() + std::chrono::microseconds{200}, handler);
        // The timer thread answers it, then hands what is free to the others
        // (lanes: on the fake clock, which stands still meanwhile); the model
        // does the same, and the fuzzer waits for every handler it expects to
        // have run.
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
    std::optional<Rejection> expected;
    if (!h.held) {
      expected = Rejection{Reason::closed, 0, extra, 0, 0, 0, 0};
    } else if (extra != 0) {  // growing by zero always succeeds
      expected = model_.try_grow(h, extra);
    }
    if (expected) {
      ADMIT_FUZZ_CHECK(!grown, "try_grow grew where the model refuses");
      ADMIT_FUZZ_CHECK(grown.error() == *expected, "try_grow's Rejection differs from the model's");
      return;
    }
    ADMIT_FUZZ_CHECK(grown.grown(), "try_grow refused where the model grows");
  }

  void shrink() {
    const std::size_t i = holder();
    const std::uint64_t fewer = in_.flag() ? in_.in_range(0, 64) : size();
    const std::uint64_t given = holders_[i].shrink(fewer);
    ModelHolding& h = holdings_[i];
    const std::uint64_t expected = h.held ? std::min(fewer, h.bytes) : 0;
    ADMIT_FUZZ_CHECK(given == expected, "shrink gave back another amount than the model");
    model_.give_back_bytes(h, expected);
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
    if (budget < model_.stats.memory_budget) budget_lowered_ = true;
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
        model_.close();
        return;
      case 1:
        ADMIT_FUZZ_CHECK(pool_.wait_idle(Clock::now()) == (model_.stats.slots_in_use == 0),
                         "wait_idle(now) disagrees with the slots in use");
        return;
      default:
        return set_pressure(!model_.pressure);
    }
  }

  /// Lanes: time goes by. Nothing is answered on its own when a window
  /// closes (the pool has no timer for it): the next request, grow or
  /// dispatch sees it closed.
  void advance_clock() {
    const auto two_windows_ms = static_cast<std::uint64_t>(max_head_wait_us_ / 1000) * 2 + 2;
    std::int64_t by = 0;
    switch (in_.byte() % 4) {
      case 0:  // a few milliseconds, none included
        by = static_cast<std::int64_t>(in_.in_range(0, 3)) * 1000;
        break;
      case 1: {  // to the end of the head's window, or a microsecond either side of it
        const std::int64_t end = model_.head_since_us() + max_head_wait_us_ + in_.byte() % 3 - 1;
        by = std::max<std::int64_t>(0, end - model_.now_us);
        break;
      }
      case 2:  // anything up to two windows
        by = static_cast<std::int64_t>(in_.in_range(0, two_windows_ms)) * 1000;
        break;
      default:  // less than a millisecond
        by = static_cast<std::int64_t>(in_.in_range(1, 999));
        break;
    }
    model_.now_us += by;
    fake_now_us.store(model_.now_us, std::memory_order_relaxed);
  }

  void check();
  void print_step(int step, unsigned op);

  // pool_partitions.hpp
  std::uint16_t which_partition();
  admit::PartitionConfig partition_config();
  void add_partition(const admit::PartitionConfig& config);
  void add_partition_op();
  void bypass();
  template <class Handler>
  admit::Ticket async_in(std::uint16_t p, std::uint64_t declared,
                         std::optional<Clock::time_point> deadline, Handler& handler);
  void check_partitions();

  admit_fuzz::FuzzInput& in_;
  bool timers_;
  bool partitions_on_;  // a partition run: partition bytes and operations
  bool tracking_;
  bool fake_clock_;  // lanes on fake_lanes_clock: advance_clock is an operation
  std::int64_t max_head_wait_us_;
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
  std::vector<admit::Partition> handles_;  // partition id i is handles_[i - 1]
  bool budget_lowered_ = false;            // since when a partition may hold more than its ceiling
};

}  // namespace pool_fuzz

#include "pool_check.hpp"
#include "pool_partitions.hpp"

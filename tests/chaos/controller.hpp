// tests/chaos/controller.hpp - the two threads of a chaos run that watch and
// disturb the workers: the controller, which moves the budget up and down and
// toggles pressure while checking that a budget, once settled, stays in force,
// and in a lanes run on the fake clock moves that clock forward in jumps; and
// the observer, which checks every stats() snapshot and, with tracking on,
// the records of reservations().
#pragma once

#include <admit/admit.hpp>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <random>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "checks.hpp"
#include "lanes.hpp"
#include "load.hpp"
#include "run.hpp"

namespace admit_chaos {

// --- The controller: budget and pressure ---------------------------------------------------------

class Controller {
 public:
  Controller(Run& run, std::uint64_t seed) : run_{run}, rng_{seed} {}

  void operator()(std::latch& start) {
    start.arrive_and_wait();
    while (!run_.stop_controller.load(std::memory_order_acquire)) {
      // Only runs with partitions draw this: the others keep their seeds' choices.
      if (run_.parts.on() && rng_() % 4 == 0 && run_.parts.add()) {
        run_.partitions_added.fetch_add(1, std::memory_order_relaxed);
      }
      if (pressure_) {
        end_pressure();
        hold(200 + rng_() % 2000, 5ms);
      } else if (rng_() % 4 == 0) {
        // release (both): a worker that reads a phase sees what came before it (see Phases).
        run_.outer.fetch_add(1, std::memory_order_release);
        run_.pool.set_pressure(true);
        run_.inner.fetch_add(1, std::memory_order_release);
        pressure_ = true;
        run_.pressure_cycles.fetch_add(1, std::memory_order_relaxed);
        hold(100 + rng_() % 500, 2ms);
      } else {
        change_budget();
        hold(200 + rng_() % 3000, 10ms);
      }
    }
    if (pressure_) end_pressure();
  }

 private:
  void end_pressure() {
    run_.inner.fetch_add(1, std::memory_order_release);
    run_.pool.set_pressure(false);
    run_.outer.fetch_add(1, std::memory_order_release);
    pressure_ = false;
  }

  void change_budget() {
    budget_ = budgets[rng_() % budgets.size()];
    if (budget_ > run_.largest_budget.load()) run_.largest_budget.store(budget_);
    run_.pool.set_memory_budget(budget_);
    epoch_ = run_.budget_epoch.fetch_add(1) + 1;
    grace_ = false;
    settled_ = false;
    run_.budget_changes.fetch_add(1, std::memory_order_relaxed);
    if (run_.pool.stats().bytes_in_use > budget_) {
      run_.cut_below_use.fetch_add(1, std::memory_order_relaxed);
    }
  }

  /// Lets the workers do about `ops` operations (at most `limit`), checking
  /// the budget in force meanwhile (see the comment of chaos_stress.cpp).
  void hold(std::uint64_t ops, Clock::duration limit) {
    const std::uint64_t until = worker_ops.load(std::memory_order_relaxed) + ops;
    const auto give_up = Clock::now() + limit;
    while (worker_ops.load(std::memory_order_relaxed) < until && Clock::now() < give_up &&
           !run_.stop_controller.load(std::memory_order_acquire)) {
      check_budget();
      // Every few ms: windows last from one step to many, and a jump lands
      // at any point of a budget or pressure phase.
      if (run_.config.mode.fake_clock && rng_() % 32 == 0) step_lanes_clock();
      std::this_thread::sleep_for(100us);
    }
  }

  void step_lanes_clock() {
    // Every eighth step jumps the whole wait: a short run, which makes only
    // a dozen steps, still closes windows by time, which coverage demands.
    const bool jump = run_.clock_steps.load(std::memory_order_relaxed) % 8 == 7;
    const std::chrono::nanoseconds step =
        jump ? std::chrono::nanoseconds{run_.config.mode.max_head_wait}
             : lanes_clock_step(rng_, run_.config.mode.max_head_wait);
    lanes_clock_ns.fetch_add(step.count(), std::memory_order_relaxed);
    run_.clock_steps.fetch_add(1, std::memory_order_relaxed);
    if (step >= run_.config.mode.max_head_wait) {
      run_.clock_steps_past_wait.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void check_budget() {
    // Quiescence first, then the snapshot: the snapshot must not predate it.
    if (!grace_ && !(grace_ = run_.quiescent(epoch_))) return;
    const admit::Stats s = run_.pool.stats();
    if (s.memory_budget != budget_) {
      violation("stats().memory_budget is %llu; the only setter set %llu", ull(s.memory_budget),
                ull(budget_));
    }
    if (s.bytes_in_use <= budget_) {
      settled_ = true;
      run_.settled_checks.fetch_add(1, std::memory_order_relaxed);
    } else if (settled_) {
      violation("%llu bytes in use under a budget of %llu, after usage had settled within it",
                ull(s.bytes_in_use), ull(budget_));
    }
  }

  Run& run_;
  std::mt19937_64 rng_;
  bool pressure_ = false;
  std::uint64_t budget_ = initial_budget;
  std::uint64_t epoch_ = 0;
  bool grace_ = true;  // the initial budget was in force before any call
  bool settled_ = false;
};

// --- The observer: stats() and reservations() ----------------------------------------------------

/// Whether `text` does not end inside a UTF-8 character (labels are cut at a boundary).
inline bool ends_on_character(std::string_view text) {
  std::size_t continuation = 0;
  std::size_t i = text.size();
  while (i > 0 && (static_cast<unsigned char>(text[i - 1]) & 0xC0U) == 0x80U) {
    --i;
    ++continuation;
  }
  if (i == 0) return continuation == 0;
  const auto lead = static_cast<unsigned char>(text[i - 1]);
  const std::size_t expected = lead < 0x80U              ? 0
                               : (lead & 0xE0U) == 0xC0U ? 1
                               : (lead & 0xF0U) == 0xE0U ? 2
                                                         : 3;
  return continuation == expected;
}

inline void observe(Run& run, std::latch& start) {
  start.arrive_and_wait();
  admit::Stats last{};
  for (std::uint64_t pass = 0; !run.stop_observer.load(std::memory_order_acquire); ++pass) {
    // Both before the largest budget, which only grows and is raised before
    // a budget is set: read later, it bounds what they saw.
    const admit::Stats s = run.pool.stats();
    const std::uint64_t ours = run.held_bytes.load();
    const std::uint64_t largest = run.largest_budget.load();
    if (s.slots != slot_count || s.slots_in_use > slot_count || s.peak_slots_in_use > slot_count) {
      violation("slots: %u in use, peak %u, of %u (expected %u)", s.slots_in_use,
                s.peak_slots_in_use, s.slots, slot_count);
    }
    if (s.bytes_in_use > largest || s.peak_bytes_in_use > largest) {
      violation("%llu bytes in use (peak %llu); the largest budget ever set is %llu",
                ull(s.bytes_in_use), ull(s.peak_bytes_in_use), ull(largest));
    }
    if (ours > largest) {
      violation("our live reservations hold %llu bytes; the largest budget ever set is %llu",
                ull(ours), ull(largest));
    }
    if (s.waiters > max_waiters || s.waiting_bytes > max_waiters * largest_request) {
      violation("%llu waiters needing %llu bytes; at most %u may wait, each for at most %llu",
                ull(s.waiters), ull(s.waiting_bytes), max_waiters, ull(largest_request));
    }
    if (!is_budget(s.memory_budget)) {
      violation("a budget of %llu was never set", ull(s.memory_budget));
    }
    if (s.double_releases != 0) violation("%llu double releases", ull(s.double_releases));
    bool went_down = s.admitted < last.admitted || s.peak_bytes_in_use < last.peak_bytes_in_use ||
                     s.peak_slots_in_use < last.peak_slots_in_use;
    for (std::size_t i = 0; i < admit::reason_count; ++i) {
      const auto reason = static_cast<Reason>(i);
      went_down = went_down || s.rejected[reason] < last.rejected[reason];
    }
    if (went_down) violation("a counter of stats() went down between two snapshots");
    last = s;
    run.parts.observe(run.largest_budget);
    run.snapshots.fetch_add(1, std::memory_order_relaxed);

    if (run.config.tracking && pass % 4 == 0) {
      const std::vector<admit::ReservationRecord> records = run.pool.reservations();
      std::int64_t previous = -1;
      for (const admit::ReservationRecord& rec : records) {
        if (static_cast<std::int64_t>(rec.slot) <= previous || rec.slot >= slot_count) {
          violation("reservations(): slot %u after slot %lld", rec.slot,
                    static_cast<long long>(previous));
        }
        previous = rec.slot;
        if (rec.bytes > largest || rec.declared_size > largest_request ||
            rec.admitted_at < run.created || rec.admitted_at > Clock::now()) {
          violation(
              "reservations(): slot %u holds %llu bytes of %llu, admitted %lld ns after the "
              "run began",
              rec.slot, ull(rec.bytes), ull(rec.declared_size),
              static_cast<long long>((rec.admitted_at - run.created).count()));
        }
        if (rec.label.size() > admit::ReservationRecord::max_label_size ||
            !ends_on_character(rec.label)) {
          violation(
              "reservations(): slot %u labelled \"%s\" (%zu bytes): too long or cut inside a "
              "character",
              rec.slot, rec.label.c_str(), rec.label.size());
        }
        // Labels are "s<slot>/...": one naming another slot was garbled or misplaced.
        if (!rec.label.empty()) {
          std::uint32_t named = 0;
          const char* const begin = rec.label.data() + 1;
          const char* const end = rec.label.data() + rec.label.size();
          const auto [at, error] = std::from_chars(begin, end, named);
          if (rec.label[0] != 's' || error != std::errc{} || at == end || *at != '/' ||
              named != rec.slot) {
            violation("reservations(): slot %u labelled \"%s\"", rec.slot, rec.label.c_str());
          }
        }
      }
      run.records_seen.fetch_add(records.size(), std::memory_order_relaxed);
    }
    std::this_thread::sleep_for(50us);
  }
}

}  // namespace admit_chaos

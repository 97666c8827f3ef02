// tests/chaos/worker.hpp - a chaos worker: its loop of random operations and
// those on the reservations it holds (try_acquire, acquire and acquire_for,
// try_grow, shrink, release, moves between its places, hand-overs to other
// threads, picking up what async handlers delivered, set_label, and checking
// its reservations against reservations()). Its state and its async
// operations are WorkerBase's (worker_async.hpp).
#pragma once

#include <admit/admit.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <latch>
#include <limits>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "checks.hpp"
#include "load.hpp"
#include "run.hpp"
#include "worker_async.hpp"

namespace admit_chaos {

// --- Workers -------------------------------------------------------------------------------------

struct Identity {
  bool held;
  std::uint32_t slot;
  std::uint64_t bytes;
  std::uint64_t declared;

  explicit Identity(const SlotReservation& r)
      : held{static_cast<bool>(r)}, slot{r.slot()}, bytes{r.bytes()}, declared{r.declared_size()} {}
  bool is(const SlotReservation& r) const {
    if (!held) return !r;
    return r && r.slot() == slot && r.bytes() == bytes && r.declared_size() == declared;
  }
};

/// One worker thread: its random operations, then it gives everything back
/// and waits for the answers to its async requests.
class Worker : private WorkerBase {
 public:
  Worker(Run& run, unsigned index, std::uint64_t seed) : WorkerBase{run, index, seed} {}

  void operator()(std::latch& start) {
    start.arrive_and_wait();
    for (std::uint64_t op = 0; op < run_.config.ops_per_worker; ++op) {
      step();
      // relaxed: a progress count that orders nothing.
      worker_ops.fetch_add(1, std::memory_order_relaxed);
    }
    finish();
  }

 private:
  void step() {
    const std::size_t place = rng_() % held_per_worker;
    SlotReservation& r = held_[place];
    const unsigned dice = static_cast<unsigned>(rng_() % 1000);
    // Only runs with partitions draw this: the others keep their seeds' choices.
    if (dice < 280 && run_.parts.on() && rng_() % 10 == 0) {
      bypass();
    } else if (dice < 280) {
      try_acquire(r);
    } else if (dice < 305) {
      blocking(r);
    } else if (dice < 435) {
      issue_async();
    } else if (dice < 475) {
      cancel_own();
    } else if (dice < 500) {
      cancel_lent();
    } else if (dice < 610) {
      grow(r);
    } else if (dice < 690) {
      shrink(r);
    } else if (dice < 820) {
      ++counts_.releases;
      run_.give_back(r);
    } else if (dice < 870) {
      move_between(place);
    } else if (dice < 920) {
      hand_over(r);
    } else if (dice < 960) {
      take_delivered(r);
    } else if (dice < 985) {
      label(r);
    } else {
      check_records();
    }
  }

  /// Puts a new admission into `r`: sometimes onto what `r` holds, which
  /// the move assignment then releases.
  void keep(SlotReservation& r, SlotReservation&& admitted) {
    run_.giving_back(r);
    r = std::move(admitted);
  }

  void try_acquire(SlotReservation& r) {
    ++counts_.try_acquires;
    if (rng_() % 2 == 0) run_.give_back(r);
    Asked asked{Ask::try_acquire, random_size()};
    asked.partition = run_.parts.pick(rng_);
    asked.after_close = run_.closed.load(std::memory_order_acquire);
    asked.before = run_.phases();
    admit::Admission a = [&] {
      const Admitting in_call{self_.admitting, run_.budget_epoch};
      return run_.parts.try_acquire(asked.declared, asked.partition);
    }();
    const Phases after = run_.phases();
    if (a) {
      run_.check_admitted(asked, after);
      run_.took(*a, asked.declared, "try_acquire", asked.partition);
      run_.admitted_try.fetch_add(1, std::memory_order_relaxed);
      keep(r, *std::move(a));
    } else {
      run_.refused(a.error(), asked, after);
    }
  }

  void blocking(SlotReservation& r) {
    ++counts_.blocking;
    // Never wait while holding this one: the others are held on, so waits do
    // time out, and every wait has a deadline.
    run_.give_back(r);
    Asked asked{Ask::blocking, random_size()};
    asked.partition = run_.parts.pick(rng_);
    asked.after_close = run_.closed.load(std::memory_order_acquire);
    asked.before = run_.phases();
    const unsigned d = static_cast<unsigned>(rng_() % 8);
    const bool use_for = rng_() % 2 == 0;
    const auto timeout = d < 2   ? 0us
                         : d < 4 ? 1000us
                                 : std::chrono::microseconds{2000 + rng_() % 3000};
    if (d < 2) asked.ask = Ask::blocking_expired;
    admit::Admission a = [&] {
      const Admitting in_call{self_.admitting, run_.budget_epoch};
      const auto start = Clock::now();
      asked.deadline = start + timeout;
      return use_for ? run_.parts.acquire_for(asked.declared, timeout, asked.partition)
                     : run_.parts.acquire(asked.declared, asked.deadline, asked.partition);
    }();
    const Phases after = run_.phases();
    if (a) {
      run_.check_admitted(asked, after);
      run_.took(*a, asked.declared, name(asked.ask), asked.partition);
      run_.admitted_blocking.fetch_add(1, std::memory_order_relaxed);
      keep(r, *std::move(a));
    } else {
      run_.refused(a.error(), asked, after);
    }
  }

  void grow(SlotReservation& r) {
    ++counts_.grows;
    const unsigned d = static_cast<unsigned>(rng_() % 32);
    const std::uint64_t extra = d == 0 ? 0 : d == 1 ? impossible_grow : rng_() % (2 * MiB);
    const Identity before{r};
    const Phases phases_before = run_.phases();
    const admit::GrowResult g = [&] {
      const Admitting in_call{self_.admitting, run_.budget_epoch};
      return r.try_grow(extra);
    }();
    const Phases after = run_.phases();
    if (!before.held) {
      if (g || g.error().reason != Reason::closed) {
        violation("try_grow on an empty reservation not refused with closed");
      }
      return;
    }
    if (g) {
      if (r.bytes() != before.bytes + extra) {
        violation("try_grow(%llu) succeeded: %llu bytes became %llu", ull(extra), ull(before.bytes),
                  ull(r.bytes()));
      }
      run_.held_bytes.fetch_add(extra);
      if (extra != 0 && pressure_on_throughout(phases_before, after)) {
        violation("try_grow(%llu) succeeded while pressure was on throughout", ull(extra));
      }
      return;
    }
    const admit::Rejection& e = g.error();
    const auto why = std::string{to_string(e.reason)};
    if (!before.is(r)) violation("a refused try_grow changed the reservation");
    if (extra == 0) violation("try_grow(0) on a held reservation refused (%s)", why.c_str());
    if (e.needed_bytes != extra || e.declared_size != before.declared) {
      violation("try_grow(%llu) of a %llu-byte upload refused naming %llu of %llu", ull(extra),
                ull(before.declared), ull(e.needed_bytes), ull(e.declared_size));
    }
    // A grow in a partition is limited by its ceiling too; its refusal is
    // then the partition's, which may leave the pool's bytes free.
    const bool by_partition = e.limit == admit::Limit::partition;
    if (by_partition) run_.parts.check_refusal(e, Partitions::none, /*grow=*/true, "try_grow");
    switch (e.reason) {
      case Reason::too_large:
        if (before.bytes + extra <= e.memory_budget) {
          violation("try_grow to %llu bytes refused too_large by a budget of %llu",
                    ull(before.bytes + extra), ull(e.memory_budget));
        }
        break;
      case Reason::no_memory:
        // As for an admission (Run::refused): only barging never keeps free bytes for a waiter.
        if (!by_partition && run_.config.mode.fairness == admit::Fairness::barging &&
            extra <= e.available_bytes) {
          violation("try_grow(%llu) refused no_memory with %llu free (barging)", ull(extra),
                    ull(e.available_bytes));
        }
        break;
      case Reason::pressure:
        if (pressure_off_throughout(phases_before, after)) {
          violation("try_grow refused with pressure while pressure was off throughout");
        }
        break;
      default:
        violation("try_grow on a held reservation refused with %s", why.c_str());
    }
  }

  /// Outside admission control: always admitted, holding nothing.
  void bypass() {
    ++counts_.bypasses;
    admit::Admission a = run_.pool.bypass();
    run_.parts.bypassed.fetch_add(1, std::memory_order_relaxed);
    if (!a) {
      violation("bypass() refused (%s)", std::string{to_string(a.error().reason)}.c_str());
    } else if (*a || a->bytes() != 0) {
      violation("bypass() handed out a reservation holding slot %u, %llu bytes", a->slot(),
                ull(a->bytes()));
    }
  }

  void shrink(SlotReservation& r) {
    ++counts_.shrinks;
    const std::uint64_t fewer =
        rng_() % 16 == 0 ? std::numeric_limits<std::uint64_t>::max() : rng_() % (2 * MiB);
    const std::uint64_t before = r.bytes();
    const std::uint64_t expected = fewer < before ? fewer : before;
    run_.held_bytes.fetch_sub(expected);  // before the pool has them back: ours never runs ahead
    const std::uint64_t given = r.shrink(fewer);
    if (given != expected || r.bytes() != before - expected) {
      violation("shrink(%llu) of %llu bytes gave back %llu, left %llu", ull(fewer), ull(before),
                ull(given), ull(r.bytes()));
    }
  }

  void move_between(std::size_t from) {
    ++counts_.moves;
    const std::size_t to = (from + 1 + rng_() % (held_per_worker - 1)) % held_per_worker;
    SlotReservation& a = held_[from];
    SlotReservation& b = held_[to];
    const Identity ia{a};
    const Identity ib{b};
    if (rng_() % 2 == 0) {
      // A swap through a temporary: construction, then assignments onto empty ones.
      SlotReservation tmp{std::move(a)};
      const bool ok1 = ia.is(tmp) && !a;
      a = std::move(b);
      const bool ok2 = ib.is(a) && !b;
      b = std::move(tmp);
      if (!ok1 || !ok2 || !ia.is(b) || tmp) violation("a swap of two reservations lost a holding");
    } else {
      // Onto a held one: the assignment releases what `b` held.
      run_.giving_back(b);
      b = std::move(a);
      if (!ia.is(b) || a) violation("a move assignment did not carry the holding");
    }
  }

  /// To whichever thread takes it (maybe this one, later).
  void hand_over(SlotReservation& r) {
    ++counts_.hand_overs;
    if (r && rng_() % 2 == 0) {
      static_cast<void>(run_.exchange.put(r));
    } else if (SlotReservation got = run_.exchange.take()) {
      keep(r, std::move(got));
    }
  }

  void take_delivered(SlotReservation& r) {
    ++counts_.deliveries_taken;
    if (SlotReservation got = run_.delivered.take()) keep(r, std::move(got));
  }

  void label(SlotReservation& r) {
    ++counts_.labels;
    char text[64];
    // Half of them longer than max_label_size and ending in two-byte
    // characters: cut at a character boundary, still naming the slot.
    const bool tail = rng_() % 2 == 0;
    const int n = std::snprintf(text, sizeof text, "s%u/w%u/%llx%s", r.slot(), index_, ull(rng_()),
                                tail ? "/\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9" : "");
    r.set_label(std::string_view{text, static_cast<std::size_t>(n)});
  }

  /// Our reservations cannot change under us: each must be in reservations()
  /// exactly as we see it.
  void check_records() {
    ++counts_.record_checks;
    const std::vector<admit::ReservationRecord> records = run_.pool.reservations();
    if (!run_.config.tracking) {
      if (!records.empty()) violation("reservations() not empty with tracking off");
      return;
    }
    for (const SlotReservation& r : held_) {
      if (!r) continue;
      bool found = false;
      for (const admit::ReservationRecord& rec : records) {
        if (rec.slot != r.slot()) continue;
        found = true;
        if (rec.bytes != r.bytes() || rec.declared_size != r.declared_size()) {
          violation("the record of slot %u says %llu bytes of %llu, the reservation %llu of %llu",
                    r.slot(), ull(rec.bytes), ull(rec.declared_size), ull(r.bytes()),
                    ull(r.declared_size()));
        }
      }
      if (!found)
        violation("a live reservation on slot %u is missing from reservations()", r.slot());
    }
  }

  void finish() {
    for (SlotReservation& r : held_) run_.give_back(r);
    // Every request is answered by now or by close(); the handlers refer to
    // them, so wait, bounded by the watchdog.
    for (AsyncRequest& req : self_.requests) {
      while (!recycle(req)) std::this_thread::sleep_for(100us);
    }
    const std::scoped_lock lock{run_.lent_mutex};
    run_.op_counts.add(counts_);
    run_.workers_done.fetch_add(1);
  }
};

}  // namespace admit_chaos

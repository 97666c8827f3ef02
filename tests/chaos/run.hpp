// tests/chaos/run.hpp - the state one run of the chaos stress test shares
// between its threads: the pool, each worker's part the others see (its async
// requests, whether it is in a call that may admit), the boxes reservations and
// tickets are handed over in, our books of every reservation handed out and
// every answer, and the checks of each admission and refusal against them.
#pragma once

#include <admit/admit.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "checks.hpp"
#include "lanes.hpp"
#include "load.hpp"
#include "partitions.hpp"

namespace admit_chaos {

// --- Shared state --------------------------------------------------------------------------------

/// One async request of a worker, reused once answered: a fixed number of
/// them, so memory does not grow with the operation count.
struct AsyncRequest {
  // The owner's, written before async_acquire and read by the handler: the
  // pool's mutex orders them (or it is the same thread, for an answer at once).
  Asked asked{};
  bool in_use = false;   // the owner's only
  admit::Ticket ticket;  // the owner's only; copies go to the lent box
  // Which use of this request a handler belongs to: a handler of an earlier
  // use called now was called after its request had been answered.
  std::atomic<std::uint64_t> use{0};
  std::atomic<int> calls{0};
  std::atomic<int> cancel_attempts{0};
  std::atomic<int> cancels_won{0};
  std::atomic<bool> lent{false};  // a copy of the ticket is in the lent box or a canceller's hands
  // The handler's, published by `done`.
  bool admitted = false;
  Reason reason = Reason::closed;
  std::atomic<bool> done{false};
};

/// What the controller must know of a worker (see Run::quiescent).
struct alignas(64) WorkerShared {
  static constexpr std::uint64_t idle = 0;
  static constexpr std::uint64_t entering = std::numeric_limits<std::uint64_t>::max();
  // idle, entering, or 1 + the budget epoch the call in progress started in.
  std::atomic<std::uint64_t> admitting{idle};
  std::array<AsyncRequest, requests_per_worker> requests;
};

/// Reservations handed between threads: the test's plumbing, so a mutex.
/// Only empty places are assigned under the lock, so nothing is released
/// under it (a release may run handlers, which take these locks).
template <std::size_t N>
class ReservationBox {
 public:
  bool put(SlotReservation& r) {
    const std::scoped_lock lock{mutex_};
    for (SlotReservation& place : places_) {
      if (!place) {
        place = std::move(r);
        return true;
      }
    }
    return false;
  }

  SlotReservation take() {
    const std::scoped_lock lock{mutex_};
    for (SlotReservation& place : places_) {
      if (place) return SlotReservation{std::move(place)};
    }
    return SlotReservation{};
  }

 private:
  std::mutex mutex_;
  std::array<SlotReservation, N> places_;
};

struct LentTicket {
  admit::Ticket ticket;
  AsyncRequest* request = nullptr;
};

struct RunConfig {
  Mode mode = modes[0];
  bool tracking = false;
  bool partitions = false;  // partitions.hpp: requests in them, added while running, bypass
  unsigned threads = 4;
  std::uint64_t ops_per_worker = 0;
  std::uint64_t seed = 1;
};

/// Operation counts, summed over the workers at the end of a run.
struct OpCounts {
  std::uint64_t try_acquires = 0, blocking = 0, asyncs = 0, own_cancels = 0, lent_cancels = 0,
                grows = 0, shrinks = 0, releases = 0, moves = 0, hand_overs = 0,
                deliveries_taken = 0, labels = 0, record_checks = 0, bypasses = 0;

  void add(const OpCounts& o) {
    try_acquires += o.try_acquires;
    blocking += o.blocking;
    asyncs += o.asyncs;
    own_cancels += o.own_cancels;
    lent_cancels += o.lent_cancels;
    grows += o.grows;
    shrinks += o.shrinks;
    releases += o.releases;
    moves += o.moves;
    hand_overs += o.hand_overs;
    deliveries_taken += o.deliveries_taken;
    labels += o.labels;
    record_checks += o.record_checks;
    bypasses += o.bypasses;
  }
};

class Run {
 public:
  explicit Run(const RunConfig& c)
      : config{c},
        workers{std::make_unique<WorkerShared[]>(c.threads)},
        pool{admit::PoolConfig{.memory_budget = initial_budget,
                               .slots = slot_count,
                               .max_waiters = max_waiters,
                               .fairness = c.mode.fairness,
                               .track_reservations = c.tracking,
                               .max_head_wait = c.mode.max_head_wait,
                               .max_pass_percent = c.mode.max_pass_percent,
                               .lanes_clock = c.mode.fake_clock ? &lanes_clock : nullptr},
             admit::FlatPolicy{100}},
        parts{pool, c.partitions} {}

  const RunConfig config;
  // Before the pool: handlers point into it, and must not outlive it.
  const std::unique_ptr<WorkerShared[]> workers;
  Pool pool;
  Partitions parts;

  // Set by the controller: the largest budget so far (raised before it is
  // set), the epoch (counted after each change) and the pressure phases.
  std::atomic<std::uint64_t> largest_budget{initial_budget};
  std::atomic<std::uint64_t> budget_epoch{0};
  std::atomic<std::uint64_t> outer{0};
  std::atomic<std::uint64_t> inner{0};
  // Set by the main thread: before close(), and once it has returned.
  std::atomic<bool> closing{false};
  std::atomic<bool> closed{false};
  std::atomic<bool> stop_controller{false};
  std::atomic<bool> stop_observer{false};

  // Our bookkeeping of live reservations.
  std::array<std::atomic<int>, slot_count> owners{};
  std::atomic<std::uint64_t> held_bytes{0};
  std::atomic<std::uint64_t> held_count{0};

  // What we were told, to compare with stats() at the end.
  std::atomic<std::uint64_t> admitted{0};
  std::array<std::atomic<std::uint64_t>, admit::reason_count> rejected{};
  std::atomic<std::uint64_t> admitted_try{0}, admitted_blocking{0}, admitted_async{0};
  std::atomic<std::uint64_t> async_issued{0}, async_answered{0};
  std::atomic<std::uint64_t> own_cancels_won{0}, lent_cancels_won{0};
  std::atomic<unsigned> workers_done{0};
  const Clock::time_point created = Clock::now();  // before any reservation of this run

  // The controller's and the observer's figures.
  std::atomic<std::uint64_t> budget_changes{0}, cut_below_use{0}, settled_checks{0};
  std::atomic<std::uint64_t> pressure_cycles{0}, snapshots{0}, records_seen{0};
  std::atomic<std::uint64_t> partitions_added{0};  // by the controller, while the pool runs
  // Steps of the fake lanes clock, and those of at least max_head_wait.
  std::atomic<std::uint64_t> clock_steps{0}, clock_steps_past_wait{0};

  ReservationBox<exchange_places> exchange;
  ReservationBox<delivered_places> delivered;
  std::mutex lent_mutex;
  std::array<LentTicket, lent_places> lent;
  OpCounts op_counts;  // summed under lent_mutex as workers end

  Phases phases() const {
    // acquire: pairs with the controller's release increments (see Phases).
    return {outer.load(std::memory_order_acquire), inner.load(std::memory_order_acquire)};
  }

  /// Whether every worker is idle or in a call that started in `epoch` or
  /// later, so that no call can still admit on an older budget. Seq_cst on
  /// both sides (Dekker): a worker that the controller sees idle after it
  /// counted the epoch reads that epoch, or a later one, when it next enters.
  bool quiescent(std::uint64_t epoch) const {
    for (unsigned w = 0; w < config.threads; ++w) {
      const std::uint64_t v = workers[w].admitting.load();
      if (v == WorkerShared::entering || (v != WorkerShared::idle && v - 1 < epoch)) return false;
    }
    return true;
  }

  /// A reservation just handed out for `declared` bytes: checked, then ours.
  void took(const SlotReservation& r, std::uint64_t declared, const char* how,
            int partition = Partitions::none) {
    parts.admitted_in(partition);
    if (!r) {
      violation("%s: admitted, but the reservation is empty", how);
      return;
    }
    if (r.slot() >= slot_count) {
      violation("%s: admitted on slot %u of a pool of %u", how, r.slot(), slot_count);
      return;
    }
    if (r.declared_size() != declared || r.bytes() != declared) {
      violation("%s: asked for %llu bytes, got a reservation of %llu bytes declared %llu", how,
                ull(declared), ull(r.bytes()), ull(r.declared_size()));
    }
    if (owners[r.slot()].exchange(1, std::memory_order_acq_rel) != 0) {
      violation("%s: slot %u handed out while another live reservation holds it", how, r.slot());
    }
    held_bytes.fetch_add(r.bytes());
    held_count.fetch_add(1);
    admitted.fetch_add(1, std::memory_order_relaxed);
  }

  /// Before `r` gives its holding back, whichever way: no longer ours.
  void giving_back(const SlotReservation& r) {
    if (!r) return;
    if (r.slot() < slot_count && owners[r.slot()].exchange(0, std::memory_order_acq_rel) != 1) {
      violation("slot %u given back, but no live reservation of ours was marked on it", r.slot());
    }
    held_bytes.fetch_sub(r.bytes());
    held_count.fetch_sub(1);
  }

  void give_back(SlotReservation& r) {
    giving_back(r);
    r.release();
    if (r || r.bytes() != 0) violation("a released reservation still holds");
  }

  void check_admitted(const Asked& asked, Phases after) {
    const char* how = name(asked.ask);
    if (asked.ask == Ask::blocking_expired || asked.ask == Ask::async_expired) {
      violation("%s admitted: an expired deadline must take nothing", how);
    }
    if (asked.after_close) violation("%s admitted, though asked after close() returned", how);
    if (pressure_on_throughout(asked.before, after)) {
      violation("%s admitted while pressure was on from its call to its answer", how);
    }
  }

  void refused(const admit::Rejection& e, const Asked& asked, Phases after) {
    rejected[static_cast<std::size_t>(e.reason)].fetch_add(1, std::memory_order_relaxed);
    const char* how = name(asked.ask);
    const auto why = std::string{admit::to_string(e.reason)};
    if (e.declared_size != asked.declared || e.needed_bytes != asked.declared) {
      violation("%s of %llu bytes refused (%s) naming %llu declared, %llu needed", how,
                ull(asked.declared), why.c_str(), ull(e.declared_size), ull(e.needed_bytes));
    }
    const bool by_partition = e.limit == admit::Limit::partition;
    if (by_partition) {
      parts.check_refusal(e, asked.partition, /*grow=*/false, how);
    } else if (e.slots != slot_count || e.slots_in_use > slot_count ||
               !is_budget(e.memory_budget) || e.available_bytes > e.memory_budget) {
      violation(
          "%s refused (%s) with impossible figures: %u/%u slots, %llu of a budget of %llu free",
          how, why.c_str(), e.slots_in_use, e.slots, ull(e.available_bytes), ull(e.memory_budget));
    }
    if (!may_be_refused_with(asked.ask, e.reason)) {
      violation("%s refused with %s, which it cannot be", how, why.c_str());
    }
    if (asked.after_close && e.reason != Reason::closed) {
      violation("%s asked after close() returned, refused with %s, not closed", how, why.c_str());
    }
    switch (e.reason) {
      case Reason::too_large:
        if (e.needed_bytes <= e.memory_budget) {
          violation("%s of %llu bytes refused too_large by a budget of %llu", how,
                    ull(e.needed_bytes), ull(e.memory_budget));
        }
        break;
      case Reason::no_slot:
        if (!by_partition && e.slots_in_use != e.slots) {
          violation("%s refused no_slot with %u of %u slots in use", how, e.slots_in_use, e.slots);
        }
        break;
      case Reason::no_memory:
        // FIFO refuses what would fit while others wait (what is free is
        // theirs), and so does lanes once the head's window is closed or when
        // the request would take more than the head's share. A partition's
        // refusal may leave the pool's bytes free (Partitions::check_refusal).
        if (!by_partition && config.mode.fairness == admit::Fairness::barging &&
            e.needed_bytes <= e.available_bytes) {
          violation("%s of %llu bytes refused no_memory with %llu free (barging)", how,
                    ull(e.needed_bytes), ull(e.available_bytes));
        }
        break;
      case Reason::timeout:
        if (Clock::now() < asked.deadline) violation("%s timed out before its deadline", how);
        break;
      case Reason::cancelled:
        if (!asked.cancel_tried) violation("%s cancelled, but cancel() was never called", how);
        break;
      case Reason::closed:
        if (!closing.load()) violation("%s refused closed before close() was called", how);
        break;
      case Reason::pressure:
        if (pressure_off_throughout(asked.before, after)) {
          violation("%s refused with pressure while pressure was off throughout", how);
        }
        break;
      case Reason::queue_full:
        break;  // how many wait is not knowable without a race
    }
  }

  /// Every async handler: `use` is the use of `req` it was made for.
  void answered(AsyncRequest& req, std::uint64_t use, admit::Admission&& a) {
    moved();
    // acquire: pairs with the owner's release store when it (re)used the request.
    if (const std::uint64_t now = req.use.load(std::memory_order_acquire); now != use) {
      violation("an async handler of use %llu called when its request was on use %llu", ull(use),
                ull(now));
      return;
    }
    if (req.calls.fetch_add(1, std::memory_order_acq_rel) != 0) {
      violation("an async handler called twice (%s)", name(req.asked.ask));
      return;
    }
    async_answered.fetch_add(1, std::memory_order_relaxed);
    Asked asked = req.asked;
    asked.cancel_tried = req.cancel_attempts.load(std::memory_order_acquire) > 0;
    const Phases after = phases();
    req.admitted = a.has_value();
    if (a) {
      check_admitted(asked, after);
      took(*a, asked.declared, name(asked.ask), asked.partition);
      admitted_async.fetch_add(1, std::memory_order_relaxed);
      // Half are kept for a worker to pick up, half given back on whatever
      // thread this is (a release here may run more handlers, nested).
      if (use % 2 != 0 || !delivered.put(*a)) give_back(*a);
    } else {
      req.reason = a.error().reason;
      refused(a.error(), asked, after);
    }
    // release: publishes admitted / reason to the owner and to cancellers.
    req.done.store(true, std::memory_order_release);
  }

  /// After a cancel() of `req` returned true: the handler ran, inside it.
  void check_cancel_won(AsyncRequest& req, const char* who) {
    // acquire: pairs with the handler's release store.
    if (!req.done.load(std::memory_order_acquire)) {
      violation("cancel() (%s) returned true before the handler was called", who);
    } else if (req.admitted || req.reason != Reason::cancelled) {
      violation("cancel() (%s) returned true, but the handler got %s", who,
                req.admitted ? "a reservation" : std::string{to_string(req.reason)}.c_str());
    }
  }
};

/// Marks a worker as in a call that may admit, with the budget epoch it
/// started in (see Run::quiescent).
class Admitting {
 public:
  Admitting(std::atomic<std::uint64_t>& state, const std::atomic<std::uint64_t>& epoch)
      : state_{state} {
    state_.store(WorkerShared::entering);
    state_.store(epoch.load() + 1);
  }
  Admitting(const Admitting&) = delete;
  Admitting& operator=(const Admitting&) = delete;
  ~Admitting() { state_.store(WorkerShared::idle); }

 private:
  std::atomic<std::uint64_t>& state_;
};

inline std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30U)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27U)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31U);
}

}  // namespace admit_chaos

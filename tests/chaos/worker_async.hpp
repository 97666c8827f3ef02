// tests/chaos/worker_async.hpp - what a chaos worker holds (its run, its
// shared part, its PRNG, its reservations and counts) and its operations on
// async requests: issuing one (each of its requests reused once answered),
// cancelling it at once or later on the asking thread, lending a copy of its
// ticket for another thread to cancel, and checking how its cancels went.
// Worker (worker.hpp) adds the loop and the operations on held reservations.
#pragma once

#include <admit/admit.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <utility>

#include "checks.hpp"
#include "load.hpp"
#include "run.hpp"

namespace admit_chaos {

/// A worker's state and its async operations; see Worker.
class WorkerBase {
 protected:
  WorkerBase(Run& run, unsigned index, std::uint64_t seed)
      : run_{run}, self_{run.workers[index]}, index_{index}, rng_{seed} {}

  std::uint64_t random_size() {
    const unsigned d = static_cast<unsigned>(rng_() % 64);
    if (d == 0) return 0;  // a slot and no bytes
    if (d < 5) return 8 * MiB + rng_() % (largest_request - 8 * MiB + 1);
    return 4096 + rng_() % (4 * MiB);
  }

  /// Makes `req` free for a new use if its last one is over: answered, and
  /// no copy of its ticket with another thread. Checks how its cancels went.
  bool recycle(AsyncRequest& req) {
    if (!req.in_use) return true;
    // acquire: pairs with the handler's release store.
    if (!req.done.load(std::memory_order_acquire)) return false;
    // acquire: pairs with the canceller's release store when it is done.
    if (req.lent.load(std::memory_order_acquire) && !take_back_lent(req)) return false;
    const int won = req.cancels_won.load(std::memory_order_relaxed);
    const bool cancelled = !req.admitted && req.reason == Reason::cancelled;
    if (won > 1) violation("%d cancels of one request returned true", won);
    if (cancelled != (won == 1)) {
      violation("a request answered %s, but %d cancel() calls returned true",
                req.admitted ? "with a reservation" : std::string{to_string(req.reason)}.c_str(),
                won);
    }
    req.ticket = admit::Ticket{};
    req.in_use = false;
    return true;
  }

  /// Takes a copy of `req`'s ticket back from the lent box if no canceller
  /// has taken it; false if one has (it clears `lent` when done).
  bool take_back_lent(AsyncRequest& req) {
    admit::Ticket copy;
    {
      const std::scoped_lock lock{run_.lent_mutex};
      for (LentTicket& l : run_.lent) {
        if (l.request == &req) {
          copy = std::move(l.ticket);
          l.request = nullptr;
          req.lent.store(false, std::memory_order_relaxed);
          return true;
        }
      }
    }
    return false;
  }

  void issue_async() {
    AsyncRequest& req = self_.requests[rng_() % requests_per_worker];
    if (!recycle(req)) return;  // still in flight: this operation is a no-op
    ++counts_.asyncs;
    const unsigned d = static_cast<unsigned>(rng_() % 8);
    const bool use_for = rng_() % 2 == 0;
    req.asked = Asked{d < 3    ? Ask::async
                      : d == 3 ? Ask::async_expired
                               : Ask::async_deadline,
                      random_size()};
    req.asked.partition = run_.parts.pick(rng_);
    const auto timeout =
        req.asked.ask == Ask::async_expired ? 0us : std::chrono::microseconds{1000 + rng_() % 4000};
    req.asked.after_close = run_.closed.load(std::memory_order_acquire);
    req.asked.before = run_.phases();
    req.in_use = true;
    req.calls.store(0, std::memory_order_relaxed);
    req.cancel_attempts.store(0, std::memory_order_relaxed);
    req.cancels_won.store(0, std::memory_order_relaxed);
    req.done.store(false, std::memory_order_relaxed);
    const std::uint64_t use = req.use.load(std::memory_order_relaxed) + 1;
    // release: the handler's acquire load of `use` sees the resets above.
    req.use.store(use, std::memory_order_release);
    run_.async_issued.fetch_add(1, std::memory_order_relaxed);
    Run* const run = &run_;
    auto handler = [run, &req, use](admit::Admission&& a) {
      run->answered(req, use, std::move(a));
    };
    {
      const Admitting in_call{self_.admitting, run_.budget_epoch};
      const std::uint64_t size = req.asked.declared;
      const int part = req.asked.partition;
      if (req.asked.ask == Ask::async) {
        req.ticket = run_.parts.async_acquire(size, part, handler);
      } else {
        const auto start = Clock::now();
        req.asked.deadline = start + timeout;
        req.ticket = use_for ? run_.parts.async_acquire_for(size, timeout, part, handler)
                             : run_.parts.async_acquire(size, req.asked.deadline, part, handler);
      }
    }
    if ((req.asked.ask == Ask::async_expired || req.asked.after_close) &&
        !req.done.load(std::memory_order_acquire)) {
      violation("%s%s not answered before async_acquire returned", name(req.asked.ask),
                req.asked.after_close ? " after close()" : "");
    }
    if (const unsigned fate = static_cast<unsigned>(rng_() % 8); fate < 2) {
      cancel(req, "at once, same thread");
    } else if (fate == 2) {
      lend(req);
    }
  }

  void cancel(AsyncRequest& req, const char* who) {
    req.cancel_attempts.fetch_add(1, std::memory_order_acq_rel);
    if (req.ticket.cancel()) {
      run_.check_cancel_won(req, who);
      req.cancels_won.fetch_add(1, std::memory_order_acq_rel);
      run_.own_cancels_won.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void cancel_own() {
    ++counts_.own_cancels;
    AsyncRequest& req = self_.requests[rng_() % requests_per_worker];
    if (req.in_use) cancel(req, "later, same thread");
  }

  /// Leaves a copy of the ticket for another thread (or this one) to cancel.
  void lend(AsyncRequest& req) {
    if (req.lent.load(std::memory_order_relaxed)) return;
    const std::scoped_lock lock{run_.lent_mutex};
    for (LentTicket& l : run_.lent) {
      if (l.request == nullptr) {
        l.ticket = req.ticket;
        l.request = &req;
        req.lent.store(true, std::memory_order_relaxed);
        return;
      }
    }
  }

  void cancel_lent() {
    ++counts_.lent_cancels;
    LentTicket taken;
    {
      const std::scoped_lock lock{run_.lent_mutex};
      LentTicket& l = run_.lent[rng_() % lent_places];
      if (l.request == nullptr) return;
      taken = std::move(l);
      l.request = nullptr;
    }
    AsyncRequest& req = *taken.request;
    req.cancel_attempts.fetch_add(1, std::memory_order_acq_rel);
    if (taken.ticket.cancel()) {
      run_.check_cancel_won(req, "lent to another thread");
      req.cancels_won.fetch_add(1, std::memory_order_acq_rel);
      run_.lent_cancels_won.fetch_add(1, std::memory_order_relaxed);
    }
    taken.ticket = admit::Ticket{};
    // release: the owner's acquire load sees our cancels_won before reusing.
    req.lent.store(false, std::memory_order_release);
  }

  Run& run_;
  WorkerShared& self_;
  const unsigned index_;
  std::mt19937_64 rng_;
  std::array<SlotReservation, held_per_worker> held_;
  OpCounts counts_;
};

}  // namespace admit_chaos

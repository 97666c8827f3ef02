// pool_check.hpp - Run::check, run after every pool_ops operation: everything
// the pool lets one observe, compared with the model; and Run::print_step,
// what ADMIT_FUZZ_TRACE prints of both. Included at the end of pool_run.hpp,
// which declares them; apart only to keep each file readable.
#pragma once

#include <admit/pool.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <optional>
#include <vector>

#include "fuzz_check.hpp"
#include "pool_run.hpp"

namespace pool_fuzz {

inline void Run::check() {
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
  ADMIT_FUZZ_CHECK(s.bypassed == model_.stats.bypassed, "stats().bypassed");
  ADMIT_FUZZ_CHECK(s == model_.stats, "stats() differs from the model in another field");
  ADMIT_FUZZ_CHECK(pool_.closed() == model_.closed, "closed()");
  ADMIT_FUZZ_CHECK(pool_.under_pressure() == model_.pressure, "under_pressure()");
  const std::optional<std::uint64_t> head = pool_.head_waiter_needs();
  ADMIT_FUZZ_CHECK(
      head.has_value() == !model_.queue.empty() && (!head || *head == model_.queue.front().needed),
      "head_waiter_needs()");

  // Members, cleared: a check runs after every operation, and under ASan
  // fresh vectors each time were most of a run's cost.
  std::vector<bool>& slot_taken = slot_taken_;
  slot_taken.assign(model_.stats.slots, false);
  std::vector<admit::ReservationRecord>& expected_records = expected_records_;
  expected_records.clear();
  const auto check_holding = [&](const SlotReservation& r, const ModelHolding& h) {
    ADMIT_FUZZ_CHECK(static_cast<bool>(r) == h.held, "a reservation held or not, unlike the model");
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
    const auto by_slot = [](const admit::ReservationRecord& a, const admit::ReservationRecord& b) {
      return a.slot < b.slot;
    };
    std::sort(records.begin(), records.end(), by_slot);
    std::sort(expected_records.begin(), expected_records.end(), by_slot);
    for (admit::ReservationRecord& r : records) r.admitted_at = {};
    ADMIT_FUZZ_CHECK(records == expected_records, "reservations() differs from the held ones");
  }
  check_partitions();
}

/// One line per operation: the pool's figures, the model's, and for lanes the
/// head's window as the model sees it (the pool does not show it).
inline void Run::print_step(int step, unsigned op) {
  const admit::Stats s = pool_.stats();
  std::fprintf(stderr,
               "step %d op %u: bytes %llu slots %u waiters %llu budget %llu closed %d "
               "pressure %d (model: bytes %llu slots %u waiters %llu",
               step, op, static_cast<unsigned long long>(s.bytes_in_use), s.slots_in_use,
               static_cast<unsigned long long>(s.waiters),
               static_cast<unsigned long long>(s.memory_budget), pool_.closed() ? 1 : 0,
               pool_.under_pressure() ? 1 : 0,
               static_cast<unsigned long long>(model_.stats.bytes_in_use),
               model_.stats.slots_in_use, static_cast<unsigned long long>(model_.stats.waiters));
  if (model_.lanes()) {
    std::fprintf(stderr, "; lanes: head for %lld us, passed %llu of %llu",
                 static_cast<long long>(model_.now_us - model_.head_since_us()),
                 static_cast<unsigned long long>(model_.passed()),
                 static_cast<unsigned long long>(model_.head_share()));
  }
  for (const ModelPartition& p : model_.partitions) {
    std::fprintf(stderr, "; %s %u-%u%%: bytes %llu/%llu slots %u/%llu waiters %llu", p.name.c_str(),
                 p.config.guarantee_percent, p.config.ceiling_percent,
                 static_cast<unsigned long long>(p.bytes),
                 static_cast<unsigned long long>(model_.ceiling_bytes(p)), p.slots,
                 static_cast<unsigned long long>(model_.ceiling_slots(p)),
                 static_cast<unsigned long long>(p.waiters));
  }
  if (model_.stats.bypassed != 0) {
    std::fprintf(stderr, "; bypassed %llu", static_cast<unsigned long long>(model_.stats.bypassed));
  }
  std::fprintf(stderr, ")\n");
}

}  // namespace pool_fuzz

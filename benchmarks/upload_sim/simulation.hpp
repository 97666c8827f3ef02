// benchmarks/upload_sim/simulation.hpp - the trace, the per-class results and the discrete-event
// simulation. Part of admit_upload_sim; see upload_sim.cpp for what the simulator does.
#pragma once

#include "common.hpp"
#include "lanes_audit.hpp"
#include "options.hpp"

namespace admit_sim {

// --- The trace -------------------------------------------------------------------

struct Upload {
  std::int64_t arrival_ns;
  std::uint64_t size;
  std::int64_t duration_ns;
};

/// A uniform double in (0, 1) from the top 53 bits.
inline double uniform(std::mt19937_64& random) {
  return (static_cast<double>(random() >> 11) + 0.5) * 0x1p-53;
}

inline std::vector<Upload> make_trace(const Options& o) {
  constexpr double pi = 3.14159265358979323846;
  constexpr double max_size = static_cast<double>(std::uint64_t{1} << 50);  // 1 PiB
  std::mt19937_64 random{o.seed};
  std::vector<Upload> trace;
  trace.reserve(o.uploads);
  double now_s = 0;
  for (std::uint64_t i = 0; i < o.uploads; ++i) {
    now_s += -std::log(uniform(random)) / o.rate;  // exponential inter-arrival
    // Box-Muller: one standard normal from two uniforms.
    const double normal =
        std::sqrt(-2 * std::log(uniform(random))) * std::cos(2 * pi * uniform(random));
    const double size =
        std::clamp(static_cast<double>(o.median_size) * std::exp(o.sigma * normal), 1.0, max_size);
    const double duration_s = size / static_cast<double>(o.bandwidth);
    trace.push_back({static_cast<std::int64_t>(std::llround(now_s * 1e9)),
                     static_cast<std::uint64_t>(size),
                     std::max<std::int64_t>(1, std::llround(std::min(duration_s, 1e9) * 1e9))});
  }
  return trace;
}

// --- Results ---------------------------------------------------------------------

inline constexpr std::size_t class_count = 3;
inline constexpr std::array<const char*, class_count> class_names{"< 100 MiB", "< 1 GiB",
                                                                  ">= 1 GiB"};
/// A subset of ">= 1 GiB" shown on its own row: under flat 10 % of a 200 MiB
/// budget every one of these is too_large (10 % of 2000 MiB is the budget).
inline constexpr std::uint64_t huge_size = 2 * GiB;
inline constexpr const char* huge_name = "(>= 2 GiB)";

inline std::size_t size_class(std::uint64_t size) {
  if (size < 100 * MiB) return 0;
  if (size < GiB) return 1;
  return 2;
}

/// What a client saw. `timed_out` merges Reason::cancelled (our ticket.cancel()
/// when its patience ran out) and Reason::timeout (which a pool deadline would give).
enum class Outcome : std::uint8_t {
  admitted,
  too_large,
  no_slot,
  no_memory,
  queue_full,
  timed_out,
  closed
};
inline constexpr std::size_t outcome_count = 7;
inline constexpr std::array<const char*, outcome_count> outcome_names{
    "admitted", "too_large", "no_slot", "no_memory", "queue_full", "timed_out", "closed"};

inline Outcome outcome_of(admit::Reason reason) {
  switch (reason) {
    case admit::Reason::too_large:
      return Outcome::too_large;
    case admit::Reason::no_slot:
      return Outcome::no_slot;
    case admit::Reason::no_memory:
      return Outcome::no_memory;
    case admit::Reason::queue_full:
      return Outcome::queue_full;
    case admit::Reason::timeout:
    case admit::Reason::cancelled:
      return Outcome::timed_out;
    case admit::Reason::closed:
      return Outcome::closed;
    case admit::Reason::pressure:  // the simulation never sets pressure
      return Outcome::no_memory;
  }
  return Outcome::closed;
}

struct Counts {
  std::uint64_t uploads = 0;
  std::array<std::uint64_t, outcome_count> outcomes{};
  // Arrival to admission of every admitted upload, 0 for those admitted at
  // once: what the row's users saw, for the fairness comparison.
  std::vector<std::int64_t> admitted_waits_ns;
};

struct Result {
  std::string policy;
  admit::Fairness fairness = admit::Fairness::fifo;
  std::array<Counts, class_count> by_class{};
  Counts huge;  // >= huge_size, also counted in by_class[2]
  Counts all;
  double mean_bytes = 0;
  std::uint64_t peak_bytes = 0;
  double mean_slots = 0;
  std::uint64_t waited = 0;            // clients that were queued
  std::vector<std::int64_t> waits_ns;  // of those, the admitted ones
  std::optional<LanesSummary> lanes;   // Fairness::lanes: the audit's figures
};

// --- The simulation ----------------------------------------------------------------

template <class Policy>
class Simulation {
 public:
  Simulation(const Options& options, const std::vector<Upload>& trace, Policy policy,
             admit::Fairness fairness)
      : options_{options},
        trace_{trace},
        pool_{{.memory_budget = options.budget,
               .slots = options.slots,
               .max_waiters = options.max_waiters,
               .fairness = fairness,
               .max_head_wait = options.max_head_wait,
               .max_pass_percent = options.max_pass_percent,
               .lanes_clock = &simulated_clock},
              std::move(policy)},
        clients_(trace.size()) {
    // Arrivals, ends and timeouts: at most three events per upload. Reserved,
    // like the vectors below, so that a handler never allocates while the
    // pool calls it.
    std::vector<Event> storage;
    storage.reserve(3 * trace.size());
    events_ = Queue{std::greater<>{}, std::move(storage)};
    result_.fairness = fairness;
    result_.waits_ns.reserve(trace.size());
    result_.all.admitted_waits_ns.reserve(trace.size());
    std::array<std::size_t, class_count> per_class{};
    std::size_t huge = 0;
    for (const Upload& u : trace) {
      ++per_class[size_class(u.size)];
      if (u.size >= huge_size) ++huge;
    }
    for (std::size_t c = 0; c < class_count; ++c) {
      result_.by_class[c].admitted_waits_ns.reserve(per_class[c]);
    }
    result_.huge.admitted_waits_ns.reserve(huge);
    if (fairness == admit::Fairness::lanes) {
      audit_.emplace(std::chrono::nanoseconds{options.max_head_wait}.count(),
                     options.max_pass_percent, trace.size());
    }
  }

  Result run(std::string name) {
    result_.policy = std::move(name);
    for (std::uint32_t id = 0; id < trace_.size(); ++id) {
      schedule(trace_[id].arrival_ns, Kind::arrival, id);
    }
    std::int64_t start = trace_.empty() ? 0 : trace_.front().arrival_ns;
    now_ = start;
    double byte_ns = 0;
    double slot_ns = 0;
    while (!events_.empty()) {
      const Event e = events_.top();
      events_.pop();
      // What was in use since the last event, for the time-weighted means.
      const admit::Stats before = pool_.stats();
      byte_ns += static_cast<double>(before.bytes_in_use) * static_cast<double>(e.time - now_);
      slot_ns += static_cast<double>(before.slots_in_use) * static_cast<double>(e.time - now_);
      now_ = e.time;
      simulated_now_ns = now_;  // before any call into the pool: its lanes clock
      switch (e.kind) {
        case Kind::arrival:
          arrive(e.id);
          break;
        case Kind::end:
          clients_[e.id].reservation.release();
          break;
        case Kind::patience:
          if (clients_[e.id].waiting) clients_[e.id].ticket.cancel();
          break;
      }
      if (audit_) audit_->compare_head(pool_.head_waiter_needs(), now_);
    }
    const double span = static_cast<double>(std::max<std::int64_t>(1, now_ - start));
    result_.mean_bytes = byte_ns / span;
    result_.mean_slots = slot_ns / span;
    check();
    return std::move(result_);
  }

 private:
  enum class Kind : std::uint8_t { arrival, end, patience };
  struct Event {
    std::int64_t time;
    std::uint64_t sequence;  // ties run in the order they were scheduled
    Kind kind;
    std::uint32_t id;
    friend bool operator>(const Event& a, const Event& b) noexcept {
      return a.time != b.time ? a.time > b.time : a.sequence > b.sequence;
    }
  };
  using Queue = std::priority_queue<Event, std::vector<Event>, std::greater<>>;

  struct Client {
    admit::SlotReservation reservation;
    admit::Ticket ticket;
    bool waiting = false;  // queued in the pool, not answered yet
    bool queued = false;   // was queued at some point
  };

  void schedule(std::int64_t time, Kind kind, std::uint32_t id) {
    events_.push({time, next_sequence_++, kind, id});
  }

  void arrive(std::uint32_t id) {
    const std::uint64_t size = trace_[id].size;
    ++result_.all.uploads;
    ++result_.by_class[size_class(size)].uploads;
    if (size >= huge_size) ++result_.huge.uploads;
    if (options_.wait_ns == 0) {
      answer(id, pool_.try_acquire(size));
      return;
    }
    Client& client = clients_[id];
    client.waiting = true;
    // An immediate answer (admitted, too_large, queue_full) runs the handler
    // before async_acquire returns; otherwise it runs inside a later release
    // or our cancel(), on this thread, at that event's simulated time.
    client.ticket = pool_.async_acquire(
        size, [this, id](admit::Admission admission) { answer(id, std::move(admission)); });
    if (client.waiting) {
      if (audit_) audit_->queued(id, pool_.bytes_for(size), now_);
      client.queued = true;
      ++result_.waited;
      schedule(now_ + options_.wait_ns, Kind::patience, id);
    }
  }

  void answer(std::uint32_t id, admit::Admission admission) {
    Client& client = clients_[id];
    client.waiting = false;
    const Upload& upload = trace_[id];
    const Outcome outcome = admission ? Outcome::admitted : outcome_of(admission.error().reason);
    ++result_.all.outcomes[static_cast<std::size_t>(outcome)];
    ++result_.by_class[size_class(upload.size)].outcomes[static_cast<std::size_t>(outcome)];
    if (upload.size >= huge_size) ++result_.huge.outcomes[static_cast<std::size_t>(outcome)];
    if (!admission) {
      if (audit_) audit_->refused(id, now_);
      return;
    }
    const std::int64_t wait = now_ - upload.arrival_ns;
    if (client.queued) result_.waits_ns.push_back(wait);
    result_.all.admitted_waits_ns.push_back(wait);
    result_.by_class[size_class(upload.size)].admitted_waits_ns.push_back(wait);
    if (upload.size >= huge_size) result_.huge.admitted_waits_ns.push_back(wait);
    client.reservation = std::move(admission).value();
    schedule(now_ + upload.duration_ns, Kind::end, id);
    if (audit_) {
      audit_->admitted(id, client.reservation.bytes(), now_, now_ + upload.duration_ns);
    }
  }

  /// Nothing over the limits, everything given back, and the pool's counters
  /// against ours.
  void check() {
    const admit::Stats s = pool_.stats();
    const auto count = [&](Outcome o) { return result_.all.outcomes[static_cast<std::size_t>(o)]; };
    std::string problem;
    if (s.bytes_in_use != 0 || s.slots_in_use != 0 || s.waiters != 0) {
      problem = "the pool is not empty at the end";
    } else if (s.peak_bytes_in_use > options_.budget || s.peak_slots_in_use > options_.slots) {
      problem = "the pool went past its budget or slots";
    } else if (s.admitted != count(Outcome::admitted) ||
               s.rejected.too_large != count(Outcome::too_large) ||
               s.rejected.no_slot != count(Outcome::no_slot) ||
               s.rejected.no_memory != count(Outcome::no_memory) ||
               s.rejected.queue_full != count(Outcome::queue_full) ||
               s.rejected.timeout + s.rejected.cancelled != count(Outcome::timed_out)) {
      problem = "the pool's counters disagree with the replay";
    } else if (audit_ && !audit_->summary().held()) {
      problem = "Fairness::lanes broke its rules or its guarantee:";
      const LanesSummary& lanes = audit_->summary();
      constexpr std::array<const char*, LanesSummary::kinds> what{
          "requests passed a head whose window had closed",
          "requests passed a head beyond its share", "heads admitted later than their bound",
          "audit model errors"};
      for (std::size_t k = 0; k < LanesSummary::kinds; ++k) {
        if (lanes.violations[k] == 0) continue;
        problem += "\n  " + std::to_string(lanes.violations[k]) + " " + what[k] +
                   "; the first: " + lanes.first[k];
      }
    }
    if (!problem.empty()) {
      std::fprintf(stderr, "admit_upload_sim: policy %s, fairness %s: %s\n", result_.policy.c_str(),
                   fairness_name(result_.fairness), problem.c_str());
      std::exit(1);
    }
    result_.peak_bytes = s.peak_bytes_in_use;
    if (audit_) result_.lanes = audit_->summary();
  }

  const Options& options_;
  const std::vector<Upload>& trace_;
  admit::SlotPool<Policy> pool_;
  std::vector<Client> clients_;
  std::optional<LanesAudit> audit_;  // Fairness::lanes only
  Queue events_;
  std::uint64_t next_sequence_ = 0;
  std::int64_t now_ = 0;
  Result result_;
};

}  // namespace admit_sim

// benchmarks/upload_sim/tenants.hpp - the tenants scenario's trace and simulation.
// Part of admit_upload_sim; see upload_sim.cpp for what the simulator does.
//
// Two tenants share one pool: batch floods it in bursts, interactive uploads
// steadily. The same trace is replayed twice per policy and fairness mode:
// once with every request in the plain pool, once with each tenant's requests
// in its own partition (--partition). With partitions the simulation checks,
// after every event, that no tenant holds more than its partition's ceiling,
// by its own count of the reservations it holds, not only by the pool's
// figures: a pool that overshot a ceiling might report it wrongly too.
#pragma once

#include "common.hpp"
#include "options.hpp"
#include "simulation.hpp"

namespace admit_sim {

// The tenants' traffic (documented in --help). A burst of 50 at once is what
// a batch job's fan-out looks like; every 10 s, with uploads of about 6 s at
// 10 MiB/s, it keeps a plain pool's slots taken most of the time.
inline constexpr std::uint64_t batch_burst = 50;
inline constexpr std::int64_t batch_every_ns = 10 * ns_per_s;
inline constexpr std::uint64_t batch_median = 64 * MiB;
inline constexpr double interactive_rate = 2.0;  // per second
inline constexpr std::uint64_t interactive_median = 2 * MiB;
inline constexpr double tenant_sigma = 0.5;

struct TenantUpload {
  std::int64_t arrival_ns;
  std::uint64_t size;
  std::int64_t duration_ns;
  std::uint8_t tenant;  // index into tenant_names
};

inline std::uint64_t lognormal_size(std::mt19937_64& random, std::uint64_t median) {
  constexpr double pi = 3.14159265358979323846;
  const double normal =
      std::sqrt(-2 * std::log(uniform(random))) * std::cos(2 * pi * uniform(random));
  return static_cast<std::uint64_t>(
      std::max(1.0, static_cast<double>(median) * std::exp(tenant_sigma * normal)));
}

/// --uploads uploads of both tenants, merged in order of arrival. Each tenant
/// draws from its own generator, so that one's stream does not shift the
/// other's when the mix changes.
inline std::vector<TenantUpload> make_tenant_trace(const Options& o) {
  std::mt19937_64 batch_random{o.seed};
  std::mt19937_64 interactive_random{o.seed ^ 0x9e3779b97f4a7c15ULL};
  const auto duration = [&](std::uint64_t size) {
    const double s = static_cast<double>(size) / static_cast<double>(o.bandwidth);
    return std::max<std::int64_t>(1, std::llround(std::min(s, 1e9) * 1e9));
  };
  std::vector<TenantUpload> trace;
  trace.reserve(o.uploads);
  // The first burst at 1 s, so that interactive has started before it.
  std::int64_t next_burst = ns_per_s;
  double interactive_s = -std::log(uniform(interactive_random)) / interactive_rate;
  while (trace.size() < o.uploads) {
    const auto interactive_ns = static_cast<std::int64_t>(std::llround(interactive_s * 1e9));
    if (next_burst <= interactive_ns) {
      for (std::uint64_t i = 0; i < batch_burst && trace.size() < o.uploads; ++i) {
        const std::uint64_t size = lognormal_size(batch_random, batch_median);
        trace.push_back({next_burst, size, duration(size), 0});
      }
      next_burst += batch_every_ns;
    } else {
      const std::uint64_t size = lognormal_size(interactive_random, interactive_median);
      trace.push_back({interactive_ns, size, duration(size), 1});
      interactive_s += -std::log(uniform(interactive_random)) / interactive_rate;
    }
  }
  return trace;
}

/// One tenant's figures in one run.
struct TenantCounts {
  std::uint64_t uploads = 0;
  std::array<std::uint64_t, outcome_count> outcomes{};
  std::vector<std::int64_t> waits_ns;  // arrival to admission of every admitted one
  std::uint64_t peak_bytes = 0;        // the most it held at once, by our count
  std::uint32_t peak_slots = 0;
};

struct TenantResult {
  std::string policy;
  admit::Fairness fairness = admit::Fairness::fifo;
  bool partitioned = false;
  std::array<TenantCounts, tenant_names.size()> tenants{};
  std::array<std::uint64_t, tenant_names.size()> ceiling_bytes{};  // partitioned only
  std::array<std::uint32_t, tenant_names.size()> ceiling_slots{};
};

template <class Policy>
class TenantSimulation {
 public:
  TenantSimulation(const Options& options, const std::vector<TenantUpload>& trace, Policy policy,
                   admit::Fairness fairness, bool partitioned)
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
    std::vector<Event> storage;
    storage.reserve(3 * trace.size());
    events_ = Queue{std::greater<>{}, std::move(storage)};
    result_.fairness = fairness;
    result_.partitioned = partitioned;
    if (partitioned) {
      for (std::size_t t = 0; t < tenant_names.size(); ++t) {
        for (const PartitionSpec& spec : options.partitions) {
          if (spec.name == tenant_names[t])
            partitions_[t] = pool_.add_partition(spec.name, spec.config);
        }
        const admit::PartitionStats s = pool_.stats(*partitions_[t]);
        result_.ceiling_bytes[t] = s.ceiling_bytes;
        result_.ceiling_slots[t] = s.ceiling_slots;
      }
    }
    for (const TenantUpload& u : trace) ++result_.tenants[u.tenant].uploads;
    for (TenantCounts& t : result_.tenants) t.waits_ns.reserve(t.uploads);
  }

  TenantResult run(std::string name) {
    result_.policy = std::move(name);
    for (std::uint32_t id = 0; id < trace_.size(); ++id) {
      schedule(trace_[id].arrival_ns, Kind::arrival, id);
    }
    while (!events_.empty()) {
      const Event e = events_.top();
      events_.pop();
      now_ = e.time;
      simulated_now_ns = now_;  // the pool's lanes clock
      switch (e.kind) {
        case Kind::arrival:
          arrive(e.id);
          break;
        case Kind::end: {
          Client& client = clients_[e.id];
          held_bytes_[trace_[e.id].tenant] -= client.reservation.bytes();
          --held_slots_[trace_[e.id].tenant];
          client.reservation.release();
          break;
        }
        case Kind::patience:
          if (clients_[e.id].waiting) clients_[e.id].ticket.cancel();
          break;
      }
      if (result_.partitioned) check_ceilings(e);
    }
    const admit::Stats s = pool_.stats();
    if (s.bytes_in_use != 0 || s.slots_in_use != 0 || s.waiters != 0) {
      die("the pool is not back to zero at the end (" + std::to_string(s.bytes_in_use) +
          " bytes, " + std::to_string(s.slots_in_use) + " slots, " + std::to_string(s.waiters) +
          " waiters)");
    }
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
    bool waiting = false;
  };

  void schedule(std::int64_t time, Kind kind, std::uint32_t id) {
    events_.push({time, next_sequence_++, kind, id});
  }

  void arrive(std::uint32_t id) {
    const TenantUpload& upload = trace_[id];
    const std::optional<admit::Partition>& partition = partitions_[upload.tenant];
    if (options_.wait_ns == 0) {
      answer(id, partition ? pool_.try_acquire(upload.size, *partition)
                           : pool_.try_acquire(upload.size));
      return;
    }
    Client& client = clients_[id];
    client.waiting = true;
    auto handler = [this, id](admit::Admission admission) { answer(id, std::move(admission)); };
    client.ticket = partition ? pool_.async_acquire(upload.size, *partition, handler)
                              : pool_.async_acquire(upload.size, handler);
    if (client.waiting) schedule(now_ + options_.wait_ns, Kind::patience, id);
  }

  void answer(std::uint32_t id, admit::Admission admission) {
    Client& client = clients_[id];
    client.waiting = false;
    const TenantUpload& upload = trace_[id];
    TenantCounts& counts = result_.tenants[upload.tenant];
    const Outcome outcome = admission ? Outcome::admitted : outcome_of(admission.error().reason);
    ++counts.outcomes[static_cast<std::size_t>(outcome)];
    if (!admission) return;
    counts.waits_ns.push_back(now_ - upload.arrival_ns);
    client.reservation = std::move(admission).value();
    held_bytes_[upload.tenant] += client.reservation.bytes();
    ++held_slots_[upload.tenant];
    counts.peak_bytes = std::max(counts.peak_bytes, held_bytes_[upload.tenant]);
    counts.peak_slots = std::max(counts.peak_slots, held_slots_[upload.tenant]);
    schedule(now_ + upload.duration_ns, Kind::end, id);
  }

  /// The self-check: no tenant over its partition's ceiling, by our count of
  /// what it holds and by the pool's, and the two counts agree.
  void check_ceilings(const Event& e) {
    for (std::size_t t = 0; t < tenant_names.size(); ++t) {
      const admit::PartitionStats s = pool_.stats(*partitions_[t]);
      std::string problem;
      if (held_bytes_[t] > result_.ceiling_bytes[t] || held_slots_[t] > result_.ceiling_slots[t]) {
        problem = "is over its ceiling: it holds " + std::to_string(held_bytes_[t]) +
                  " bytes (ceiling " + std::to_string(result_.ceiling_bytes[t]) + ") in " +
                  std::to_string(held_slots_[t]) + " slots (ceiling " +
                  std::to_string(result_.ceiling_slots[t]) + ")";
      } else if (s.bytes_in_use != held_bytes_[t] || s.slots_in_use != held_slots_[t]) {
        problem = "the pool counts " + std::to_string(s.bytes_in_use) + " bytes in " +
                  std::to_string(s.slots_in_use) + " slots, the simulation " +
                  std::to_string(held_bytes_[t]) + " bytes in " + std::to_string(held_slots_[t]);
      }
      if (!problem.empty()) {
        die(std::string{"partition "} + tenant_names[t] + " " + problem + " at " +
            format_duration(e.time) + " (upload " + std::to_string(e.id) + ")");
      }
    }
  }

  [[noreturn]] void die(const std::string& problem) const {
    std::fprintf(stderr, "admit_upload_sim: tenants, policy %s, fairness %s, %s: %s\n",
                 result_.policy.c_str(), fairness_name(result_.fairness),
                 result_.partitioned ? "with partitions" : "without partitions", problem.c_str());
    std::exit(1);
  }

  const Options& options_;
  const std::vector<TenantUpload>& trace_;
  admit::SlotPool<Policy> pool_;
  std::vector<Client> clients_;
  std::array<std::optional<admit::Partition>, tenant_names.size()> partitions_{};
  std::array<std::uint64_t, tenant_names.size()> held_bytes_{};
  std::array<std::uint32_t, tenant_names.size()> held_slots_{};
  Queue events_;
  std::uint64_t next_sequence_ = 0;
  std::int64_t now_ = 0;
  TenantResult result_;
};

/// Every policy and fairness mode, each without and then with partitions.
inline std::vector<TenantResult> run_tenants(const Options& options,
                                             const std::vector<TenantUpload>& trace) {
  std::vector<TenantResult> results;
  for (const admit::Fairness fairness : options.fairness) {
    for (const PolicySpec& spec : options.policies) {
      for (const bool partitioned : {false, true}) {
        results.push_back(std::visit(
            [&](const auto& policy) {
              return TenantSimulation{options, trace, policy, fairness, partitioned}.run(spec.name);
            },
            spec.policy));
      }
    }
  }
  return results;
}

}  // namespace admit_sim

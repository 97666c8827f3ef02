// benchmarks/upload_sim/tenants_report.hpp - the tenants scenario's tables and CSV.
// Part of admit_upload_sim; see upload_sim.cpp for what the simulator does.
#pragma once

#include "common.hpp"
#include "format.hpp"
#include "options.hpp"
#include "report.hpp"
#include "tenants.hpp"

namespace admit_sim {

inline std::string partitions_text(const Options& o) {
  std::string text;
  for (const PartitionSpec& p : o.partitions) {
    if (!text.empty()) text += ' ';
    text += "--partition " + p.name + ":" + std::to_string(p.config.guarantee_percent) +
            "%:" + std::to_string(p.config.ceiling_percent) + "%";
  }
  return text;
}

inline void print_tenants_header(const Options& o, const std::vector<TenantUpload>& trace) {
  std::printf(
      "admit_upload_sim --scenario tenants --seed %llu --uploads %llu --budget %s --slots %u\n",
      static_cast<unsigned long long>(o.seed), static_cast<unsigned long long>(o.uploads),
      format_bytes(static_cast<double>(o.budget)).c_str(), o.slots);
  std::string fairness;
  if (o.fairness.size() > 1) {
    fairness = " --fairness all";
  } else if (o.fairness.front() != admit::Fairness::fifo) {
    fairness = std::string{" --fairness "} + fairness_name(o.fairness.front());
  }
  std::printf(
      "  --bandwidth %s/s --wait %s%s%s\n", format_bytes(static_cast<double>(o.bandwidth)).c_str(),
      o.wait_ns == 0 ? "0 (refused clients give up at once)" : format_duration(o.wait_ns).c_str(),
      fairness.c_str(),
      o.max_waiters != 0 ? (" --max-waiters " + std::to_string(o.max_waiters)).c_str() : "");
  std::printf("  %s\n", partitions_text(o).c_str());
  std::array<std::uint64_t, tenant_names.size()> uploads{};
  for (const TenantUpload& u : trace) ++uploads[u.tenant];
  std::printf(
      "trace: %zu uploads over %s of simulated time: batch %llu (bursts of %llu every %s, median "
      "%s),\n  interactive %llu (%g per second, median %s)\n\n",
      trace.size(), format_duration(trace.back().arrival_ns).c_str(),
      static_cast<unsigned long long>(uploads[0]), static_cast<unsigned long long>(batch_burst),
      format_duration(batch_every_ns).c_str(),
      format_bytes(static_cast<double>(batch_median)).c_str(),
      static_cast<unsigned long long>(uploads[1]), interactive_rate,
      format_bytes(static_cast<double>(interactive_median)).c_str());
}

/// One block per policy and fairness mode: each tenant's figures, the plain
/// pool on the left, the partitioned one on the right. `results` holds pairs
/// (without, with), as run_tenants makes them.
inline void print_tenant_tables(const Options& o, const std::vector<TenantResult>& results) {
  std::vector<Outcome> rows{Outcome::admitted, Outcome::too_large, Outcome::no_slot,
                            Outcome::no_memory};
  if (o.max_waiters != 0) rows.push_back(Outcome::queue_full);
  if (o.wait_ns != 0) rows.push_back(Outcome::timed_out);
  for (std::size_t i = 0; i + 1 < results.size(); i += 2) {
    const TenantResult& plain = results[i];
    const TenantResult& parted = results[i + 1];
    std::printf("policy %s, fairness %s\n", plain.policy.c_str(), fairness_name(plain.fairness));
    std::printf("%-12s %-12s %20s | %s\n", "tenant", "", "without partitions", "with partitions");
    for (std::size_t t = 0; t < tenant_names.size(); ++t) {
      const TenantCounts& a = plain.tenants[t];
      const TenantCounts& b = parted.tenants[t];
      const auto line = [&](const char* tenant, const std::string& what, const std::string& left,
                            const std::string& right) {
        std::printf("%-12s %-12s %20s | %s\n", tenant, what.c_str(), left.c_str(), right.c_str());
      };
      line(tenant_names[t], "uploads", std::to_string(a.uploads), std::to_string(b.uploads));
      for (const Outcome r : rows) {
        const auto k = static_cast<std::size_t>(r);
        line("", outcome_names[k], percent(a.outcomes[k], a.uploads),
             percent(b.outcomes[k], b.uploads));
      }
      const auto wait = [](const TenantCounts& c, double p) {
        return c.waits_ns.empty() ? std::string{"-"} : format_wait(percentile(c.waits_ns, p));
      };
      line("", "p50 wait", wait(a, 50), wait(b, 50));
      line("", "p99 wait", wait(a, 99), wait(b, 99));
      line("", "peak held", format_bytes(static_cast<double>(a.peak_bytes)),
           format_bytes(static_cast<double>(b.peak_bytes)) + " of " +
               format_bytes(static_cast<double>(parted.ceiling_bytes[t])));
      line("", "peak slots", std::to_string(a.peak_slots),
           std::to_string(b.peak_slots) + " of " + std::to_string(parted.ceiling_slots[t]));
    }
    std::printf("\n");
  }
  std::printf(
      "Percentages are of the tenant's uploads; p50 / p99 wait: arrival to admission of the\n"
      "admitted ones (0: at once). peak held / slots: the most the tenant held at once; with\n"
      "partitions, of its ceiling, which was checked after every event.\n");
}

inline void print_tenant_csv(const std::vector<TenantResult>& results) {
  std::printf("policy,fairness,partitions,tenant,uploads");
  for (const char* name : outcome_names) std::printf(",%s_pct", name);
  std::printf(",p50_wait_ms,p99_wait_ms,peak_bytes,peak_slots,ceiling_bytes,ceiling_slots\n");
  const auto pct = [](std::uint64_t part, std::uint64_t whole) {
    return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
  };
  const auto ms = [](std::int64_t ns) { return static_cast<double>(ns) / 1e6; };
  for (const TenantResult& r : results) {
    for (std::size_t t = 0; t < tenant_names.size(); ++t) {
      const TenantCounts& c = r.tenants[t];
      std::printf("%s,%s,%s,%s,%llu", r.policy.c_str(), fairness_name(r.fairness),
                  r.partitioned ? "with" : "without", tenant_names[t],
                  static_cast<unsigned long long>(c.uploads));
      for (std::size_t k = 0; k < outcome_count; ++k) {
        std::printf(",%.3f", pct(c.outcomes[k], c.uploads));
      }
      std::printf(",%.3f,%.3f,%llu,%u,%llu,%u\n", ms(percentile(c.waits_ns, 50)),
                  ms(percentile(c.waits_ns, 99)), static_cast<unsigned long long>(c.peak_bytes),
                  c.peak_slots, static_cast<unsigned long long>(r.ceiling_bytes[t]),
                  r.ceiling_slots[t]);
    }
  }
}

}  // namespace admit_sim

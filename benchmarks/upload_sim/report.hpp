// benchmarks/upload_sim/report.hpp - the tables and the CSV.
// Part of admit_upload_sim; see upload_sim.cpp for what the simulator does.
#pragma once

#include "common.hpp"
#include "format.hpp"
#include "options.hpp"
#include "simulation.hpp"

namespace admit_sim {

// --- Output ------------------------------------------------------------------------

inline std::int64_t percentile(std::vector<std::int64_t> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  // Nearest rank.
  const auto rank =
      static_cast<std::size_t>(std::ceil(p / 100 * static_cast<double>(values.size())));
  return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

inline void print_header(const Options& o, const std::vector<Upload>& trace) {
  std::array<std::uint64_t, class_count> per_class{};
  std::uint64_t over_2gib = 0;
  std::vector<std::uint64_t> sizes;
  sizes.reserve(trace.size());
  for (const Upload& u : trace) {
    ++per_class[size_class(u.size)];
    if (u.size >= huge_size) ++over_2gib;
    sizes.push_back(u.size);
  }
  std::sort(sizes.begin(), sizes.end());
  const auto at = [&](double p) {
    return sizes[std::min(sizes.size() - 1,
                          static_cast<std::size_t>(p * static_cast<double>(sizes.size())))];
  };
  std::printf("admit_upload_sim --seed %llu --uploads %llu --rate %g --budget %s --slots %u\n",
              static_cast<unsigned long long>(o.seed), static_cast<unsigned long long>(o.uploads),
              o.rate, format_bytes(static_cast<double>(o.budget)).c_str(), o.slots);
  // Without lanes the line is what it always was: the README quotes it.
  std::string fairness;
  if (o.fairness.size() > 1) {
    fairness = " --fairness all";
  } else if (o.fairness.front() != admit::Fairness::fifo) {
    fairness = std::string{" --fairness "} + fairness_name(o.fairness.front());
  }
  std::printf(
      "  --bandwidth %s/s --median-size %s --sigma %g --wait %s%s%s\n",
      format_bytes(static_cast<double>(o.bandwidth)).c_str(),
      format_bytes(static_cast<double>(o.median_size)).c_str(), o.sigma,
      o.wait_ns == 0 ? "0 (refused clients give up at once)" : format_duration(o.wait_ns).c_str(),
      fairness.c_str(),
      o.max_waiters != 0 ? (" --max-waiters " + std::to_string(o.max_waiters)).c_str() : "");
  if (std::find(o.fairness.begin(), o.fairness.end(), admit::Fairness::lanes) != o.fairness.end()) {
    std::printf("  lanes: --max-head-wait %s --max-pass-percent %u\n",
                format_duration(std::chrono::nanoseconds{o.max_head_wait}.count()).c_str(),
                o.max_pass_percent);
  }
  std::printf("trace: %zu uploads over %s of simulated time; sizes p50 %s, p99 %s, max %s\n",
              trace.size(), format_duration(trace.back().arrival_ns).c_str(),
              format_bytes(static_cast<double>(at(0.5))).c_str(),
              format_bytes(static_cast<double>(at(0.99))).c_str(),
              format_bytes(static_cast<double>(sizes.back())).c_str());
  std::printf(
      "  %llu < 100 MiB, %llu < 1 GiB, %llu >= 1 GiB (of which %llu >= 2 GiB)\n\n",
      static_cast<unsigned long long>(per_class[0]), static_cast<unsigned long long>(per_class[1]),
      static_cast<unsigned long long>(per_class[2]), static_cast<unsigned long long>(over_2gib));
}

/// What the lanes audit (lanes_audit.hpp) checked; it failed the run if the
/// guarantee did not hold, so this says how much it covered.
inline void print_lanes_check(const std::string& policy, const LanesSummary& lanes) {
  std::printf("\nlanes check, %s: %llu heads, %llu requests passed one; %llu heads admitted\n",
              policy.c_str(), static_cast<unsigned long long>(lanes.heads),
              static_cast<unsigned long long>(lanes.passers),
              static_cast<unsigned long long>(lanes.after_window));
  std::printf("  after their window closed, each by the time the reservations held at its close\n");
  std::printf("  were given back");
  if (lanes.least_slack_ns >= 0) {
    std::printf(" (least margin %s)", format_wait(lanes.least_slack_ns).c_str());
  }
  std::printf("; longest a head waited: %s\n", format_duration(lanes.worst_head_wait_ns).c_str());
}

inline void print_tables(const Options& o, const std::vector<Result>& results) {
  // Refusal columns: too_large always, then every reason that occurred.
  std::vector<std::size_t> columns{static_cast<std::size_t>(Outcome::too_large)};
  for (std::size_t r = static_cast<std::size_t>(Outcome::no_slot); r < outcome_count; ++r) {
    for (const Result& result : results) {
      if (result.all.outcomes[r] != 0) {
        columns.push_back(r);
        break;
      }
    }
  }
  std::printf("%-14s %-10s %8s %9s", "policy", "class", "uploads", "admitted");
  for (const std::size_t c : columns) std::printf(" %10s", outcome_names[c]);
  std::printf("\n");
  const auto row = [&](const std::string& policy, const char* name, const Counts& counts) {
    std::printf("%-14s %-10s %8llu %9s", policy.c_str(), name,
                static_cast<unsigned long long>(counts.uploads),
                percent(counts.outcomes[0], counts.uploads).c_str());
    for (const std::size_t c : columns) {
      std::printf(" %10s", percent(counts.outcomes[c], counts.uploads).c_str());
    }
    std::printf("\n");
  };
  for (const Result& result : results) {
    row(result.policy, "all", result.all);
    for (std::size_t c = 0; c < class_count; ++c) row("", class_names[c], result.by_class[c]);
    row("", huge_name, result.huge);
  }

  std::printf("\n%-14s %14s %14s %11s", "policy", "mean reserved", "peak reserved", "mean slots");
  if (o.wait_ns != 0) std::printf(" %8s %9s %9s", "waited", "p50 wait", "p99 wait");
  std::printf("\n");
  for (const Result& result : results) {
    std::printf("%-14s %14s %14s %11s", result.policy.c_str(),
                format_bytes(result.mean_bytes).c_str(),
                format_bytes(static_cast<double>(result.peak_bytes)).c_str(),
                printf_string("%.2f", result.mean_slots).c_str());
    if (o.wait_ns != 0) {
      std::printf(" %8s", percent(result.waited, result.all.uploads).c_str());
      if (result.waits_ns.empty()) {
        std::printf(" %9s %9s", "-", "-");
      } else {
        std::printf(" %9s %9s", format_duration(percentile(result.waits_ns, 50)).c_str(),
                    format_duration(percentile(result.waits_ns, 99)).c_str());
      }
    }
    std::printf("\n");
  }
  for (const Result& result : results) {
    if (result.lanes) print_lanes_check(result.policy, *result.lanes);
  }
  std::printf("\nPercentages are of the row's uploads; %s is part of >= 1 GiB.\n", huge_name);
  if (o.wait_ns != 0) {
    std::printf(
        "waited: queued on arrival; p50 / p99 wait: of those, the ones admitted;"
        " timed_out: gave up after --wait.\n");
  }
}

inline void print_csv(const Options& o, const std::vector<Result>& results) {
  std::printf("policy,class,uploads");
  for (const char* name : outcome_names) std::printf(",%s_pct", name);
  // New columns go at the end, so that a reader by position keeps working.
  std::printf(
      ",mean_reserved_bytes,peak_reserved_bytes,mean_slots,waited_pct,p50_wait_ms,p99_wait_ms"
      ",fairness,class_p50_wait_ms,class_p99_wait_ms,class_max_wait_ms\n");
  const auto pct = [](std::uint64_t part, std::uint64_t whole) {
    return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
  };
  for (const Result& r : results) {
    const bool waits = o.wait_ns != 0 && !r.waits_ns.empty();
    const double p50 = waits ? static_cast<double>(percentile(r.waits_ns, 50)) / 1e6 : 0;
    const double p99 = waits ? static_cast<double>(percentile(r.waits_ns, 99)) / 1e6 : 0;
    for (std::size_t c = 0; c <= class_count + 1; ++c) {
      const Counts& counts = c == 0 ? r.all : c <= class_count ? r.by_class[c - 1] : r.huge;
      const char* name = c == 0 ? "all" : c <= class_count ? class_names[c - 1] : huge_name;
      std::printf("%s,%s,%llu", r.policy.c_str(), name,
                  static_cast<unsigned long long>(counts.uploads));
      for (std::size_t k = 0; k < outcome_count; ++k) {
        std::printf(",%.3f", pct(counts.outcomes[k], counts.uploads));
      }
      const std::vector<std::int64_t>& waits = counts.admitted_waits_ns;
      const auto ms = [](std::int64_t ns) { return static_cast<double>(ns) / 1e6; };
      std::printf(",%.0f,%llu,%.3f,%.3f,%.3f,%.3f,%s,%.3f,%.3f,%.3f\n", r.mean_bytes,
                  static_cast<unsigned long long>(r.peak_bytes), r.mean_slots,
                  pct(r.waited, r.all.uploads), p50, p99, fairness_name(r.fairness),
                  ms(percentile(waits, 50)), ms(percentile(waits, 99)),
                  ms(waits.empty() ? 0 : *std::max_element(waits.begin(), waits.end())));
    }
  }
}

}  // namespace admit_sim

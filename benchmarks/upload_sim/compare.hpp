// benchmarks/upload_sim/compare.hpp - --fairness all: FIFO, barging and lanes
// on the same trace, side by side, per policy and size class.
// Part of admit_upload_sim; see upload_sim.cpp for what the simulator does.
#pragma once

#include "common.hpp"
#include "format.hpp"
#include "options.hpp"
#include "report.hpp"
#include "simulation.hpp"

namespace admit_sim {

inline const char* fairness_title(admit::Fairness fairness) {
  return fairness == admit::Fairness::fifo ? "FIFO" : fairness_name(fairness);
}

inline std::int64_t worst(const std::vector<std::int64_t>& waits) {
  return waits.empty() ? 0 : *std::max_element(waits.begin(), waits.end());
}

/// One block per policy: a row per size class and figure, a column per mode.
/// `results` holds every policy under every mode of o.fairness, mode-major,
/// as main() ran them.
inline void print_comparison(const Options& o, const std::vector<Result>& results) {
  const std::size_t modes = o.fairness.size();
  const std::size_t policies = results.size() / modes;
  constexpr int label_width = 26;
  constexpr int column_width = 12;
  for (std::size_t p = 0; p < policies; ++p) {
    const auto at = [&](std::size_t m) -> const Result& { return results[m * policies + p]; };
    std::printf("%-*s", label_width, ("policy " + at(0).policy).c_str());
    for (std::size_t m = 0; m < modes; ++m) {
      std::printf(" %*s", column_width, fairness_title(at(m).fairness));
    }
    std::printf("\n");
    for (std::size_t c = 0; c < class_count; ++c) {
      bool first = true;
      const auto row = [&](const char* figure, auto cell) {
        std::printf("  %-10s %-13s", first ? class_names[c] : "", figure);
        first = false;
        for (std::size_t m = 0; m < modes; ++m) {
          std::printf(" %*s", column_width, cell(at(m).by_class[c]).c_str());
        }
        std::printf("\n");
      };
      row("admitted", [](const Counts& k) { return percent(k.outcomes[0], k.uploads); });
      if (o.wait_ns != 0) {
        row("timed out", [](const Counts& k) {
          return percent(k.outcomes[static_cast<std::size_t>(Outcome::timed_out)], k.uploads);
        });
      }
      const auto wait_at = [](double pct) {
        return [pct](const Counts& k) {
          return k.admitted_waits_ns.empty() ? std::string{"-"}
                                             : format_wait(percentile(k.admitted_waits_ns, pct));
        };
      };
      row("p50 wait", wait_at(50));
      row("p99 wait", wait_at(99));
      // The large class is the one FIFO protects and barging starves.
      if (c + 1 == class_count) {
        row("worst wait", [](const Counts& k) {
          return k.admitted_waits_ns.empty() ? std::string{"-"}
                                             : format_wait(worst(k.admitted_waits_ns));
        });
      }
    }
    for (std::size_t m = 0; m < modes; ++m) {
      if (at(m).lanes) print_lanes_check(at(m).policy, *at(m).lanes);
    }
    std::printf("\n");
  }
  std::printf(
      "admitted, timed out: of the class's uploads. Waits: arrival to admission, of the class's\n"
      "admitted uploads, 0 for those admitted at once; worst wait: the longest of them.\n");
  if (o.wait_ns == 0) {
    std::printf("Without --wait nobody queues, so the three modes admit alike: try --wait 5min.\n");
  }
}

}  // namespace admit_sim

#include "metrics.hpp"

#include <fmt/format.h>
#include <admit/rejection.hpp>

#include <iterator>

namespace upload_server {

namespace {

void metric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            std::uint64_t value) {
  fmt::format_to(std::back_inserter(out), "# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help,
                 type, value);
}

}  // namespace

std::string prometheus_text(const admit::Stats& stats) {
  std::string out;
  metric(out, "admit_bytes_in_use", "gauge", "Bytes reserved by running uploads.",
         stats.bytes_in_use);
  metric(out, "admit_bytes_budget", "gauge", "The memory budget.", stats.memory_budget);
  metric(out, "admit_peak_bytes_in_use", "gauge", "Highest bytes_in_use since start.",
         stats.peak_bytes_in_use);
  metric(out, "admit_slots_in_use", "gauge", "Slots held by running uploads.", stats.slots_in_use);
  metric(out, "admit_slots", "gauge", "The slot count.", stats.slots);
  metric(out, "admit_waiters", "gauge", "Uploads waiting for room.", stats.waiters);
  metric(out, "admit_admitted_total", "counter", "Uploads admitted since start.", stats.admitted);
  metric(out, "admit_double_releases_total", "counter",
         "Reservations given back twice (refused; a bug to alert on).", stats.double_releases);

  out += "# HELP admit_rejected_total Uploads refused since start, by reason.\n";
  out += "# TYPE admit_rejected_total counter\n";
  for (std::size_t i = 0; i < admit::reason_count; ++i) {
    const auto reason = static_cast<admit::Reason>(i);
    fmt::format_to(std::back_inserter(out), "admit_rejected_total{{reason=\"{}\"}} {}\n",
                   admit::to_string(reason), stats.rejected[reason]);
  }
  return out;
}

}  // namespace upload_server

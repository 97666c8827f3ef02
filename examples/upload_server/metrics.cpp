#include "metrics.hpp"

#include <fmt/format.h>
#include <admit/rejection.hpp>

#include <iterator>
#include <utility>

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
  metric(out, "admit_bypassed_total", "counter",
         "Requests that skipped admission (X-Admit-Bypass) since start.", stats.bypassed);

  out += "# HELP admit_rejected_total Uploads refused since start, by reason.\n";
  out += "# TYPE admit_rejected_total counter\n";
  for (std::size_t i = 0; i < admit::reason_count; ++i) {
    const auto reason = static_cast<admit::Reason>(i);
    fmt::format_to(std::back_inserter(out), "admit_rejected_total{{reason=\"{}\"}} {}\n",
                   admit::to_string(reason), stats.rejected[reason]);
  }
  return out;
}

std::string prometheus_text(const std::vector<admit::PartitionStats>& partitions) {
  std::string out;
  if (partitions.empty()) return out;
  // One HELP and TYPE per metric, then a line per partition: Prometheus
  // wants a metric's samples together.
  const auto each = [&](std::string_view name, std::string_view type, std::string_view help,
                        auto value_of) {
    fmt::format_to(std::back_inserter(out), "# HELP {0} {1}\n# TYPE {0} {2}\n", name, help, type);
    for (const admit::PartitionStats& partition : partitions) {
      fmt::format_to(std::back_inserter(out), "{}{{partition=\"{}\"}} {}\n", name, partition.name,
                     value_of(partition));
    }
  };
  using P = admit::PartitionStats;
  each("admit_partition_bytes_in_use", "gauge", "Bytes reserved by the partition's uploads.",
       [](const P& p) { return p.bytes_in_use; });
  each("admit_partition_slots_in_use", "gauge", "Slots held by the partition's uploads.",
       [](const P& p) { return std::uint64_t{p.slots_in_use}; });
  each("admit_partition_bytes_guarantee", "gauge",
       "Bytes the partition is owed first (its guarantee of the budget in force).",
       [](const P& p) { return p.guarantee_bytes; });
  each("admit_partition_bytes_ceiling", "gauge",
       "The most bytes the partition may hold (its ceiling of the budget in force).",
       [](const P& p) { return p.ceiling_bytes; });
  each("admit_partition_slots_guarantee", "gauge", "Slots the partition is owed first.",
       [](const P& p) { return std::uint64_t{p.guarantee_slots}; });
  each("admit_partition_slots_ceiling", "gauge", "The most slots the partition may hold.",
       [](const P& p) { return std::uint64_t{p.ceiling_slots}; });
  each("admit_partition_waiters", "gauge", "The partition's uploads waiting for room.",
       [](const P& p) { return p.waiters; });
  each("admit_partition_admitted_total", "counter", "The partition's uploads admitted since start.",
       [](const P& p) { return p.admitted; });

  out += "# HELP admit_partition_rejected_total The partition's uploads refused since start, by "
         "reason.\n";
  out += "# TYPE admit_partition_rejected_total counter\n";
  for (const admit::PartitionStats& partition : partitions) {
    for (std::size_t i = 0; i < admit::reason_count; ++i) {
      const auto reason = static_cast<admit::Reason>(i);
      fmt::format_to(std::back_inserter(out),
                     "admit_partition_rejected_total{{partition=\"{}\",reason=\"{}\"}} {}\n",
                     partition.name, admit::to_string(reason), partition.rejected[reason]);
    }
  }
  return out;
}

std::string prometheus_text(const ConnectionStats& stats) {
  std::string out;
  metric(out, "admit_connections_open", "gauge",
         "Open client connections (descriptors they hold, closing ones included).", stats.open);
  metric(out, "admit_connections_limit", "gauge", "The --max-connections in force.",
         stats.max_connections);

  out +=
      "# HELP admit_connections_in_phase Open connections by phase (waiting: no complete "
      "request yet, or idle between requests; these are shed first).\n";
  out += "# TYPE admit_connections_in_phase gauge\n";
  for (const auto& [phase, count] : {std::pair{ConnectionPhase::waiting, stats.waiting},
                                     std::pair{ConnectionPhase::in_request, stats.in_request},
                                     std::pair{ConnectionPhase::uploading, stats.uploading},
                                     std::pair{ConnectionPhase::closing, stats.closing}}) {
    fmt::format_to(std::back_inserter(out), "admit_connections_in_phase{{phase=\"{}\"}} {}\n",
                   to_string(phase), count);
  }

  metric(out, "admit_connections_accepted_total", "counter",
         "Connections accepted and served since start.", stats.accepted_total);
  out += "# HELP admit_connections_refused_total Connections answered 503 at accept, by limit.\n";
  out += "# TYPE admit_connections_refused_total counter\n";
  fmt::format_to(std::back_inserter(out), "admit_connections_refused_total{{reason=\"{}\"}} {}\n",
                 to_string(ConnectionRefusal::max_connections),
                 stats.refused_max_connections_total);
  fmt::format_to(std::back_inserter(out), "admit_connections_refused_total{{reason=\"{}\"}} {}\n",
                 to_string(ConnectionRefusal::per_ip), stats.refused_per_ip_total);
  fmt::format_to(std::back_inserter(out), "admit_connections_refused_total{{reason=\"{}\"}} {}\n",
                 to_string(ConnectionRefusal::descriptors), stats.refused_descriptors_total);
  metric(out, "admit_connections_shed_total", "counter",
         "Waiting connections closed to make room, oldest first.", stats.shed_total);
  metric(out, "admit_accept_failures_total", "counter",
         "accept() failures (EMFILE and others); each backs off instead of spinning.",
         stats.accept_failures_total);
  return out;
}

std::string prometheus_text(const MemoryFigures& memory, bool under_pressure) {
  std::string out;
  metric(out, "admit_memory_pressure", "gauge",
         "1 while memory usage is over the --pressure watermarks: new uploads are refused.",
         under_pressure ? 1 : 0);
  if (memory.limit_bytes) {
    metric(out, "admit_memory_limit_bytes", "gauge",
           "The memory limit the budget is derived from (the cgroup's, else MemTotal).",
           *memory.limit_bytes);
  }
  if (memory.usage_bytes) {
    metric(out, "admit_memory_usage_bytes", "gauge",
           "Memory in use against that limit, at the last --follow-memory poll.",
           *memory.usage_bytes);
  }
  return out;
}

}  // namespace upload_server

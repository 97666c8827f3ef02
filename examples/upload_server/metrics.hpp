// upload_server/metrics.hpp - the pool's figures in Prometheus text format.
#pragma once

#include <admit/partition.hpp>
#include <admit/stats.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "connection_limits.hpp"  // ConnectionStats (a plain struct: no link dependency)

namespace upload_server {

/// The body of GET /metrics (text/plain; version=0.0.4): admit_bytes_in_use,
/// admit_bytes_budget, admit_slots_in_use, admit_slots, admit_waiters,
/// admit_peak_bytes_in_use, admit_admitted_total, admit_double_releases_total
/// (refused double releases: nonzero is a bug worth an alert) and
/// admit_rejected_total{reason="..."}, one line per reason, and
/// admit_bypassed_total (requests that skipped admission, --bypass-token).
[[nodiscard]] std::string prometheus_text(const admit::Stats& stats);

/// Each partition's figures (--partition), appended to the pool's, labelled
/// partition="NAME": admit_partition_bytes_in_use, admit_partition_slots_in_use,
/// admit_partition_bytes_guarantee, admit_partition_bytes_ceiling,
/// admit_partition_slots_guarantee, admit_partition_slots_ceiling,
/// admit_partition_waiters, admit_partition_admitted_total and
/// admit_partition_rejected_total{partition="NAME",reason="..."}. Empty
/// without partitions.
[[nodiscard]] std::string prometheus_text(const std::vector<admit::PartitionStats>& partitions);

/// The connections' figures, appended to the pool's in GET /metrics:
/// admit_connections_open (descriptors held by connections, closing ones
/// included), admit_connections_limit (--max-connections in force),
/// admit_connections_in_phase{phase="waiting|in_request|uploading|closing"},
/// admit_connections_accepted_total,
/// admit_connections_refused_total{reason="max_connections|max_connections_per_ip|descriptors"}
/// (answered 503 at accept), admit_connections_shed_total (waiting connections
/// closed to make room) and admit_accept_failures_total (accept() errors, such
/// as EMFILE).
[[nodiscard]] std::string prometheus_text(const ConnectionStats& stats);

/// What the server knows of the memory it runs in (--budget auto,
/// --follow-memory): a figure it does not know is absent, not 0.
struct MemoryFigures {
  /// The limit the budget in force was derived from: read at start, then at
  /// each --follow-memory poll. Absent with a --budget given as a size.
  std::optional<std::uint64_t> limit_bytes;
  /// The usage at the last --follow-memory poll. Absent without
  /// --follow-memory (a figure read once at start is stale by the first
  /// scrape) and while the last poll read nothing.
  std::optional<std::uint64_t> usage_bytes;
};

/// The memory figures, appended to the others in GET /metrics:
/// admit_memory_pressure (1 while the pool is under pressure: new uploads are
/// refused with reason "pressure"; always there), admit_memory_limit_bytes and
/// admit_memory_usage_bytes (each only when known, see MemoryFigures). The
/// budget derived from the limit is admit_bytes_budget.
[[nodiscard]] std::string prometheus_text(const MemoryFigures& memory, bool under_pressure);

}  // namespace upload_server

// upload_server/metrics.hpp - the pool's figures in Prometheus text format.
#pragma once

#include <admit/stats.hpp>
#include <string>

#include "connection_limits.hpp"  // ConnectionStats (a plain struct: no link dependency)

namespace upload_server {

/// The body of GET /metrics (text/plain; version=0.0.4): admit_bytes_in_use,
/// admit_bytes_budget, admit_slots_in_use, admit_slots, admit_waiters,
/// admit_peak_bytes_in_use, admit_admitted_total, admit_double_releases_total
/// (refused double releases: nonzero is a bug worth an alert) and
/// admit_rejected_total{reason="..."}, one line per reason.
[[nodiscard]] std::string prometheus_text(const admit::Stats& stats);

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

}  // namespace upload_server

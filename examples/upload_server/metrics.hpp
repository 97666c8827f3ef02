// upload_server/metrics.hpp - the pool's figures in Prometheus text format.
#pragma once

#include <admit/stats.hpp>
#include <string>

namespace upload_server {

/// The body of GET /metrics (text/plain; version=0.0.4): admit_bytes_in_use,
/// admit_bytes_budget, admit_slots_in_use, admit_slots, admit_waiters,
/// admit_peak_bytes_in_use, admit_admitted_total, admit_double_releases_total
/// (refused double releases: nonzero is a bug worth an alert) and
/// admit_rejected_total{reason="..."}, one line per reason.
[[nodiscard]] std::string prometheus_text(const admit::Stats& stats);

}  // namespace upload_server

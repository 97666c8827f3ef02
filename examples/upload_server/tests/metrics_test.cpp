// Tests for metrics.hpp: the Prometheus text names every figure once, with
// its value, and one admit_rejected_total line per reason.
#include "metrics.hpp"

#include <admit/rejection.hpp>

#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "catch.hpp"

namespace {

// "name value" lines, comments skipped: what a scraper reads.
std::map<std::string, std::string> samples(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream lines{text};
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line.front() == '#') continue;
    const auto space = line.rfind(' ');
    REQUIRE(space != std::string::npos);
    const bool fresh = out.emplace(line.substr(0, space), line.substr(space + 1)).second;
    CHECK(fresh);  // no sample twice
  }
  return out;
}

}  // namespace

TEST_CASE("every figure of the pool is exported with its value", "[metrics]") {
  admit::Stats stats;
  stats.memory_budget = 209'715'200;
  stats.slots = 16;
  stats.bytes_in_use = 104'857'600;
  stats.slots_in_use = 3;
  stats.peak_bytes_in_use = 150'000'000;
  stats.waiters = 2;
  stats.admitted = 1234;
  stats.rejected.no_slot = 7;
  stats.rejected.too_large = 1;
  stats.rejected.pressure = 4;
  stats.double_releases = 3;
  stats.bypassed = 5;

  const auto text = upload_server::prometheus_text(stats);
  const auto values = samples(text);
  CHECK(values.at("admit_bytes_in_use") == "104857600");
  CHECK(values.at("admit_bytes_budget") == "209715200");
  CHECK(values.at("admit_peak_bytes_in_use") == "150000000");
  CHECK(values.at("admit_slots_in_use") == "3");
  CHECK(values.at("admit_slots") == "16");
  CHECK(values.at("admit_waiters") == "2");
  CHECK(values.at("admit_admitted_total") == "1234");
  CHECK(values.at("admit_double_releases_total") == "3");
  CHECK(values.at("admit_bypassed_total") == "5");
  CHECK(values.at("admit_rejected_total{reason=\"no_slot\"}") == "7");
  CHECK(values.at("admit_rejected_total{reason=\"too_large\"}") == "1");
  CHECK(values.at("admit_rejected_total{reason=\"closed\"}") == "0");
  CHECK(values.at("admit_rejected_total{reason=\"pressure\"}") == "4");

  std::size_t reason_lines = 0;
  for (const auto& [name, value] : values) {
    if (name.starts_with("admit_rejected_total{")) ++reason_lines;
  }
  CHECK(reason_lines == admit::reason_count);
  CHECK(text.find("# TYPE admit_admitted_total counter") != std::string::npos);
  CHECK(text.find("# TYPE admit_double_releases_total counter") != std::string::npos);
  CHECK(text.find("# TYPE admit_bytes_in_use gauge") != std::string::npos);
}

TEST_CASE("each partition's figures are exported, labelled with its name", "[metrics]") {
  CHECK(upload_server::prometheus_text(std::vector<admit::PartitionStats>{}).empty());

  admit::PartitionStats batch;
  batch.name = "batch";
  batch.config = {10, 40};
  batch.guarantee_bytes = 1'048'576;
  batch.guarantee_slots = 1;
  batch.ceiling_bytes = 4'194'304;
  batch.ceiling_slots = 3;
  batch.bytes_in_use = 4'000'000;
  batch.slots_in_use = 2;
  batch.waiters = 1;
  batch.admitted = 12;
  batch.rejected.no_memory = 3;
  admit::PartitionStats fallback;
  fallback.name = "default";
  fallback.ceiling_bytes = 10'485'760;

  const auto text = upload_server::prometheus_text({batch, fallback});
  const auto values = samples(text);
  CHECK(values.at("admit_partition_bytes_in_use{partition=\"batch\"}") == "4000000");
  CHECK(values.at("admit_partition_slots_in_use{partition=\"batch\"}") == "2");
  CHECK(values.at("admit_partition_bytes_guarantee{partition=\"batch\"}") == "1048576");
  CHECK(values.at("admit_partition_bytes_ceiling{partition=\"batch\"}") == "4194304");
  CHECK(values.at("admit_partition_slots_guarantee{partition=\"batch\"}") == "1");
  CHECK(values.at("admit_partition_slots_ceiling{partition=\"batch\"}") == "3");
  CHECK(values.at("admit_partition_waiters{partition=\"batch\"}") == "1");
  CHECK(values.at("admit_partition_admitted_total{partition=\"batch\"}") == "12");
  CHECK(values.at("admit_partition_rejected_total{partition=\"batch\",reason=\"no_memory\"}") ==
        "3");
  CHECK(values.at("admit_partition_rejected_total{partition=\"batch\",reason=\"no_slot\"}") ==
        "0");
  CHECK(values.at("admit_partition_bytes_ceiling{partition=\"default\"}") == "10485760");
  std::size_t reason_lines = 0;
  for (const auto& [name, value] : values) {
    if (name.starts_with("admit_partition_rejected_total{")) ++reason_lines;
  }
  CHECK(reason_lines == 2 * admit::reason_count);
  // One HELP and TYPE per metric, not per partition.
  const std::string type = "# TYPE admit_partition_bytes_in_use gauge\n";
  CHECK(text.find(type) != std::string::npos);
  CHECK(text.find(type, text.find(type) + 1) == std::string::npos);
  CHECK(text.find("# TYPE admit_partition_admitted_total counter") != std::string::npos);
}

TEST_CASE("the connections' figures are exported with their values", "[metrics]") {
  upload_server::ConnectionStats stats;
  stats.max_connections = 176;
  stats.open = 9;
  stats.waiting = 4;
  stats.in_request = 2;
  stats.uploading = 1;
  stats.closing = 2;
  stats.accepted_total = 500;
  stats.refused_max_connections_total = 3;
  stats.refused_per_ip_total = 5;
  stats.refused_descriptors_total = 6;
  stats.shed_total = 320;
  stats.accept_failures_total = 7;

  const auto text = upload_server::prometheus_text(stats);
  const auto values = samples(text);
  CHECK(values.at("admit_connections_open") == "9");
  CHECK(values.at("admit_connections_limit") == "176");
  CHECK(values.at("admit_connections_in_phase{phase=\"waiting\"}") == "4");
  CHECK(values.at("admit_connections_in_phase{phase=\"in_request\"}") == "2");
  CHECK(values.at("admit_connections_in_phase{phase=\"uploading\"}") == "1");
  CHECK(values.at("admit_connections_in_phase{phase=\"closing\"}") == "2");
  CHECK(values.at("admit_connections_accepted_total") == "500");
  CHECK(values.at("admit_connections_refused_total{reason=\"max_connections\"}") == "3");
  CHECK(values.at("admit_connections_refused_total{reason=\"max_connections_per_ip\"}") == "5");
  CHECK(values.at("admit_connections_refused_total{reason=\"descriptors\"}") == "6");
  CHECK(values.at("admit_connections_shed_total") == "320");
  CHECK(values.at("admit_accept_failures_total") == "7");
  CHECK(text.find("# TYPE admit_connections_shed_total counter") != std::string::npos);
  CHECK(text.find("# TYPE admit_connections_open gauge") != std::string::npos);
}

TEST_CASE("the memory figures are exported when known, and pressure always", "[metrics][memory]") {
  SECTION("--budget auto --follow-memory: the limit, the usage and the pressure") {
    const upload_server::MemoryFigures memory{.limit_bytes = 2'147'483'648,
                                              .usage_bytes = 1'932'735'283};
    const auto text = upload_server::prometheus_text(memory, true);
    const auto values = samples(text);
    CHECK(values.size() == 3);
    CHECK(values.at("admit_memory_limit_bytes") == "2147483648");
    CHECK(values.at("admit_memory_usage_bytes") == "1932735283");
    CHECK(values.at("admit_memory_pressure") == "1");
    for (const char* type :
         {"# TYPE admit_memory_limit_bytes gauge", "# TYPE admit_memory_usage_bytes gauge",
          "# TYPE admit_memory_pressure gauge"}) {
      INFO(type);
      CHECK(text.find(type) != std::string::npos);
    }
  }
  SECTION("--budget auto alone: the limit read at start, no usage") {
    const upload_server::MemoryFigures memory{.limit_bytes = 8'589'934'592,
                                              .usage_bytes = std::nullopt};
    const auto values = samples(upload_server::prometheus_text(memory, false));
    CHECK(values.size() == 2);
    CHECK(values.at("admit_memory_limit_bytes") == "8589934592");
    CHECK(values.at("admit_memory_pressure") == "0");
  }
  SECTION("a budget given as a size: only the pressure, 0, and no HELP for absent figures") {
    const auto text = upload_server::prometheus_text(upload_server::MemoryFigures{}, false);
    const auto values = samples(text);
    CHECK(values.size() == 1);
    CHECK(values.at("admit_memory_pressure") == "0");
    CHECK(text.find("admit_memory_limit_bytes") == std::string::npos);
    CHECK(text.find("admit_memory_usage_bytes") == std::string::npos);
  }
}

// Tests for metrics.hpp: the Prometheus text names every figure once, with
// its value, and one admit_rejected_total line per reason.
#include "metrics.hpp"

#include <admit/rejection.hpp>

#include <map>
#include <sstream>
#include <string>

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
  stats.double_releases = 3;

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
  CHECK(values.at("admit_rejected_total{reason=\"no_slot\"}") == "7");
  CHECK(values.at("admit_rejected_total{reason=\"too_large\"}") == "1");
  CHECK(values.at("admit_rejected_total{reason=\"closed\"}") == "0");

  std::size_t reason_lines = 0;
  for (const auto& [name, value] : values) {
    if (name.starts_with("admit_rejected_total{")) ++reason_lines;
  }
  CHECK(reason_lines == admit::reason_count);
  CHECK(text.find("# TYPE admit_admitted_total counter") != std::string::npos);
  CHECK(text.find("# TYPE admit_double_releases_total counter") != std::string::npos);
  CHECK(text.find("# TYPE admit_bytes_in_use gauge") != std::string::npos);
}

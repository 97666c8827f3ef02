#include "rate_limit.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace upload_server {

RateLimitFields rate_limit_fields(const admit::Stats& stats, bool admitting) {
  // Structured-field Integers are at most 15 digits (RFC 9651 3.3.1): a
  // budget beyond 999 TB is said as that.
  constexpr std::uint64_t max_integer = 999'999'999'999'999;
  const std::uint64_t budget = std::min(stats.memory_budget, max_integer);
  const std::uint64_t free_bytes =
      stats.bytes_in_use < budget ? std::min(budget - stats.bytes_in_use, max_integer) : 0;
  const std::uint32_t free_slots =
      stats.slots_in_use < stats.slots ? stats.slots - stats.slots_in_use : 0;
  return {fmt::format(R"("slots";q={};qu="concurrent-requests", "memory";q={};qu="content-bytes")",
                      stats.slots, budget),
          fmt::format(R"("slots";r={}, "memory";r={})", admitting ? free_slots : 0U,
                      admitting ? free_bytes : 0U)};
}

}  // namespace upload_server

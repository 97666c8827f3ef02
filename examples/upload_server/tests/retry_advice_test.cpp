// Tests for retry_advice.hpp and rate_limit.hpp: a refusal's delay is the
// estimator's, jittered within +-20 % and seeded per server; too_large gets
// none; the RateLimit fields are the draft's syntax with the pool's figures.
#include "retry_advice.hpp"

#include <admit/pool.hpp>
#include <admit/units.hpp>

#include <chrono>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "rate_limit.hpp"

using admit::FlatPolicy;
using admit::MiB;
using admit::PoolConfig;
using admit::Reason;
using admit::Rejection;
using admit::SlotPool;
using std::chrono::milliseconds;
using upload_server::RetryAdvice;

namespace {

using Pool = SlotPool<FlatPolicy>;

Rejection refused(Reason reason) { return Rejection{reason, 10 * MiB, MiB, 0, 2 * MiB, 2, 2}; }

bool within(milliseconds delay, milliseconds nominal) {
  // jittered()'s +-20 %, rounded to whole milliseconds.
  return delay.count() >= nominal.count() * 8 / 10 && delay.count() <= nominal.count() * 12 / 10;
}

}  // namespace

TEST_CASE("a full pool before any upload ended: the no-rate hint, jittered", "[retry_advice]") {
  Pool pool{PoolConfig{.memory_budget = 2 * MiB, .slots = 2}, FlatPolicy{10}};
  auto a = pool.try_acquire(MiB);
  auto b = pool.try_acquire(MiB);
  RetryAdvice advice{pool, {}, 42};
  std::set<long long> seen;
  for (int i = 0; i < 20; ++i) {
    const auto delay = advice.after(refused(Reason::no_slot));
    REQUIRE(delay);
    CHECK(within(*delay, std::chrono::seconds{3}));  // RetryConfig::no_rate_hint
    seen.insert(delay->count());
  }
  CHECK(seen.size() > 10);  // spread, not one value for every client
}

TEST_CASE("too_large is never worth retrying", "[retry_advice]") {
  Pool pool{PoolConfig{.memory_budget = 2 * MiB, .slots = 2}, FlatPolicy{10}};
  RetryAdvice advice{pool};
  CHECK_FALSE(advice.after(refused(Reason::too_large)));
}

TEST_CASE("pressure, the shutdown and a failed allocation have their own delays",
          "[retry_advice]") {
  Pool pool{PoolConfig{.memory_budget = 2 * MiB, .slots = 2}, FlatPolicy{10}};
  RetryAdvice advice{pool, {}, 7};
  CHECK(within(advice.after_pressure(), std::chrono::seconds{5}));
  CHECK(within(advice.after_shutdown(), std::chrono::seconds{10}));
  // As long as one upload takes to end: before any has, the no-rate hint.
  CHECK(within(advice.after_out_of_memory(MiB), std::chrono::seconds{3}));
}

TEST_CASE("the same seed gives the same advice", "[retry_advice]") {
  Pool pool{PoolConfig{.memory_budget = 2 * MiB, .slots = 2}, FlatPolicy{10}};
  RetryAdvice first{pool, {}, 1234};
  RetryAdvice second{pool, {}, 1234};
  for (int i = 0; i < 5; ++i) CHECK(first.after_pressure() == second.after_pressure());
}

TEST_CASE("uploads ending fast: the shortest advice, and the rate on /metrics", "[retry_advice]") {
  Pool pool{PoolConfig{.memory_budget = 2 * MiB, .slots = 1}, FlatPolicy{10}};
  RetryAdvice advice{pool, {}, 99};
  advice.observe();
  for (int i = 0; i < 10; ++i) {  // one upload every ~10 ms: 100 per second
    auto held = pool.try_acquire(MiB);
    REQUIRE(held);
    held->release();
    std::this_thread::sleep_for(milliseconds{10});
    advice.observe();
  }
  auto blocking = pool.try_acquire(MiB);
  REQUIRE(blocking);
  CHECK(advice.release_rate() > 10);
  const auto delay = advice.after(refused(Reason::no_slot));
  REQUIRE(delay);
  CHECK(within(*delay, std::chrono::seconds{1}));  // clamped to RetryConfig::min
}

TEST_CASE("RateLimit-Policy and RateLimit: the draft's lists, the pool's figures", "[rate_limit]") {
  admit::Stats stats;
  stats.slots = 16;
  stats.slots_in_use = 2;
  stats.memory_budget = 200 * MiB;
  stats.bytes_in_use = 163 * MiB;
  const auto fields = upload_server::rate_limit_fields(stats, true);
  CHECK(fields.policy ==
        R"("slots";q=16;qu="concurrent-requests", "memory";q=209715200;qu="content-bytes")");
  CHECK(fields.remaining == R"("slots";r=14, "memory";r=38797312)");

  // Admitting nobody (closed, under pressure): nothing remains.
  CHECK(upload_server::rate_limit_fields(stats, false).remaining == R"("slots";r=0, "memory";r=0)");

  // Over budget (the budget followed a shrinking limit): 0, not a wrapped count.
  stats.bytes_in_use = 300 * MiB;
  stats.slots_in_use = 16;
  CHECK(upload_server::rate_limit_fields(stats, true).remaining == R"("slots";r=0, "memory";r=0)");

  // A structured-field Integer has at most 15 digits.
  stats.memory_budget = UINT64_MAX;
  stats.bytes_in_use = 0;
  CHECK(upload_server::rate_limit_fields(stats, true).policy ==
        R"("slots";q=16;qu="concurrent-requests", "memory";q=999999999999999;qu="content-bytes")");
}

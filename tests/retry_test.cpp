// Tests for admit/retry.hpp: RetryEstimator, driven by a fake clock over a
// real pool, estimates from the release rate it observes (faster releases,
// shorter advice, within a factor of 2 of the truth), counts what is owed to
// the waiters ahead, keeps every answer in [min, max], and answers the fixed
// cases (too_large never, closed and pressure their hints, no rate yet its
// defaults). jittered() spreads a delay within its bounds.
#include <admit/pool.hpp>
#include <admit/retry.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "support.hpp"

using admit::FlatPolicy;
using admit::MiB;
using admit::PoolConfig;
using admit::Reason;
using admit::Rejection;
using admit::RetryConfig;
using admit::SlotPool;
using admit::SlotReservation;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

namespace {

/// A clock that moves only when told: the estimator's time is the test's.
/// It has only what RetryEstimator needs: no is_steady.
struct FakeClock {
  using rep = std::int64_t;
  using period = std::milli;
  using duration = std::chrono::milliseconds;
  using time_point = std::chrono::time_point<FakeClock>;
  static inline time_point current{std::chrono::hours{1}};
  static time_point now() noexcept { return current; }
  static void advance(duration d) noexcept { current += d; }
};

using Pool = SlotPool<FlatPolicy>;
using Estimator = admit::RetryEstimator<FakeClock>;

const RetryConfig test_config{.min = 10ms, .max = 60s};

/// A pool whose memory is held by `uploads` uploads of 10 MiB, in `slots` slots:
/// all of them by default; with more slots than uploads, memory is what runs out.
struct FullPool {
  explicit FullPool(std::uint32_t slots) : FullPool(slots, slots) {}
  FullPool(std::uint32_t slots, std::uint32_t uploads)
      : pool{PoolConfig{.memory_budget = uploads * 10 * MiB, .slots = slots}, FlatPolicy{100}} {
    for (std::uint32_t i = 0; i < uploads; ++i) held.push_back(take());
  }
  SlotReservation take() { return std::move(pool.try_acquire(10 * MiB)).value(); }

  /// One upload ends and another takes its place, `times` times, `every` apart,
  /// with the estimator observing after each.
  void turn_over(Estimator& estimator, milliseconds every, int times) {
    for (int i = 0; i < times; ++i) {
      FakeClock::advance(every);
      held.pop_front();
      held.push_back(take());
      estimator.observe();
    }
  }

  Rejection refusal(std::uint64_t size = 10 * MiB) { return pool.try_acquire(size).error(); }

  Pool pool;
  std::deque<SlotReservation> held;
};

milliseconds advice(Estimator& estimator, const Rejection& r) {
  const std::optional<milliseconds> d = estimator.retry_after(r);
  REQUIRE(d.has_value());
  return *d;
}

}  // namespace

TEST_CASE("faster releases give shorter advice, within a factor of 2 of the truth", "[retry]") {
  milliseconds estimates[2]{};
  const milliseconds periods[2]{100ms, 500ms};
  for (int i = 0; i < 2; ++i) {
    FullPool f{4};
    Estimator estimator{f.pool, test_config};
    estimator.observe();
    f.turn_over(estimator, periods[i], 40);
    const Rejection r = f.refusal();
    REQUIRE(r.reason == Reason::no_slot);
    estimates[i] = advice(estimator, r);
    // The truth: with nobody waiting, the next slot comes back one period later.
    CHECK(estimates[i] >= periods[i] / 2);
    CHECK(estimates[i] <= periods[i] * 2);
  }
  CHECK(estimates[0] < estimates[1]);
}

TEST_CASE("the rate follows a change in the release pace", "[retry]") {
  FullPool f{4};
  Estimator estimator{f.pool, test_config};
  estimator.observe();
  f.turn_over(estimator, 500ms, 20);
  const milliseconds slow = advice(estimator, f.refusal());
  f.turn_over(estimator, 100ms, 100);  // 10 s: two time constants of 5 s
  const milliseconds fast = advice(estimator, f.refusal());
  CHECK(fast < slow);
  CHECK(fast <= 200ms);
}

TEST_CASE("the first releases are averaged over time, not over one short interval", "[retry]") {
  FullPool f{2};
  Estimator estimator{f.pool, test_config};
  estimator.observe();
  // A timer samples every 100 ms and an upload ends every 1.5 s: the one
  // interval that holds a release must not set the rate (10/s, not 0.67/s).
  for (int release = 0; release < 6; ++release) {
    for (int tick = 0; tick < 15; ++tick) {
      FakeClock::advance(100ms);
      if (tick == 14) {
        f.held.pop_front();
        f.held.push_back(f.take());
      }
      estimator.observe();
    }
    const milliseconds d = advice(estimator, f.refusal());
    CHECK(d >= 750ms);  // the truth: the next slot in 1.5 s, a factor of 2 either way
    CHECK(d <= 3000ms);
  }
}

TEST_CASE("more waiters ahead give longer advice", "[retry]") {
  FullPool f{2};
  Estimator estimator{f.pool, test_config};
  estimator.observe();
  f.turn_over(estimator, 100ms, 30);
  std::vector<admit::Ticket> waiting;
  std::vector<milliseconds> advised;
  for (int waiters = 0; waiters < 4; ++waiters) {
    FakeClock::advance(10ms);  // a fresh sample, so that stats() shows the waiters
    advised.push_back(advice(estimator, f.refusal()));
    waiting.push_back(f.pool.async_acquire(10 * MiB, [](admit::Admission&&) {}));
  }
  for (std::size_t i = 1; i < advised.size(); ++i) CHECK(advised[i] > advised[i - 1]);
  for (admit::Ticket& t : waiting) t.cancel();
}

TEST_CASE("needing more bytes never gives shorter advice", "[retry]") {
  // 8 slots, 40 MiB: four 10 MiB uploads hold it all, and slots stay free.
  FullPool f{8, 4};
  Pool& pool = f.pool;
  Estimator estimator{pool, test_config};
  estimator.observe();
  f.turn_over(estimator, 200ms, 30);
  milliseconds previous{0};
  for (std::uint64_t size : {1 * MiB, 10 * MiB, 20 * MiB, 30 * MiB, 40 * MiB}) {
    const Rejection r = pool.try_acquire(size).error();
    REQUIRE(r.reason == Reason::no_memory);
    const milliseconds d = advice(estimator, r);
    CHECK(d >= previous);
    previous = d;
  }
  // 40 MiB: all four reservations must end, one every 200 ms.
  CHECK(previous >= 400ms);
  CHECK(previous <= 1600ms);
}

TEST_CASE("the bytes the waiters are owed come first", "[retry]") {
  FullPool f{8, 4};
  Pool& pool = f.pool;
  Estimator estimator{pool, test_config};
  estimator.observe();
  f.turn_over(estimator, 200ms, 30);
  const milliseconds alone = advice(estimator, pool.try_acquire(10 * MiB).error());
  admit::Ticket waiter = pool.async_acquire(20 * MiB, [](admit::Admission&&) {});
  CHECK(pool.stats().waiting_bytes == 20 * MiB);
  FakeClock::advance(10ms);
  const milliseconds behind = advice(estimator, pool.try_acquire(10 * MiB).error());
  CHECK(behind > alone);
  waiter.cancel();
  CHECK(pool.stats().waiting_bytes == 0);
}

TEST_CASE("every answer is within [min, max]", "[retry]") {
  FullPool f{4};
  SECTION("very fast releases are held at min") {
    Estimator estimator{f.pool, RetryConfig{.min = 250ms, .max = 2s}};
    estimator.observe();
    f.turn_over(estimator, 1ms, 200);
    CHECK(advice(estimator, f.refusal()) == 250ms);
  }
  SECTION("very slow releases are held at max") {
    Estimator estimator{f.pool, RetryConfig{.min = 250ms, .max = 2s}};
    estimator.observe();
    f.turn_over(estimator, 60s, 3);
    CHECK(advice(estimator, f.refusal()) == 2s);
  }
  SECTION("the hints too") {
    Estimator estimator{f.pool, RetryConfig{.min = 250ms, .max = 2s, .closed_hint = 1h}};
    f.pool.close();
    CHECK(advice(estimator, f.refusal()) == 2s);
  }
}

TEST_CASE("fixed answers: never for too_large, hints for closed and pressure", "[retry]") {
  FullPool f{2};
  Estimator estimator{f.pool, RetryConfig{.pressure_hint = 7s, .closed_hint = 12s}};
  CHECK_FALSE(estimator.retry_after(f.refusal(1024 * MiB)).has_value());
  f.pool.set_pressure(true);
  CHECK(estimator.retry_after(f.refusal()) == 7s);
  f.pool.set_pressure(false);
  f.pool.close();
  CHECK(estimator.retry_after(f.refusal()) == 12s);
}

TEST_CASE("with no release seen yet the defaults hold, never 0", "[retry]") {
  FullPool f{2};
  Estimator estimator{f.pool, RetryConfig{.min = 1s, .max = 30s, .no_rate_hint = 4s}};
  CHECK(advice(estimator, f.refusal()) == 4s);  // no_slot
  Pool roomy{PoolConfig{.memory_budget = 10 * MiB, .slots = 4}, FlatPolicy{100}};
  SlotReservation big = std::move(roomy.try_acquire(10 * MiB)).value();
  Estimator for_bytes{roomy, RetryConfig{.min = 1s, .max = 30s}};
  const Rejection r = roomy.try_acquire(1 * MiB).error();
  REQUIRE(r.reason == Reason::no_memory);
  CHECK(advice(for_bytes, r) == 30s);
}

TEST_CASE("the same samples give the same answer", "[retry]") {
  FullPool f{4};
  Estimator estimator{f.pool, test_config};
  estimator.observe();
  f.turn_over(estimator, 100ms, 20);
  const Rejection r = f.refusal();
  const milliseconds first = advice(estimator, r);
  CHECK(advice(estimator, r) == first);  // no time passed: no new sample
}

TEST_CASE("a RetryConfig is validated, naming the field", "[retry]") {
  using admit_test::contains;
  FullPool f{1};
  CHECK(contains(*admit::validation_error(RetryConfig{.min = 0ms}), "admit::RetryConfig::min"));
  CHECK(contains(*admit::validation_error(RetryConfig{.min = 2s, .max = 1s}),
                 "admit::RetryConfig::max must be at least min, got 1000ms"));
  CHECK(contains(*admit::validation_error(RetryConfig{.smoothing = 0ms}),
                 "admit::RetryConfig::smoothing"));
  CHECK_FALSE(admit::validation_error(RetryConfig{}).has_value());
  CHECK(contains(admit_test::invalid_argument_message([&] {
                   Estimator e{f.pool, RetryConfig{.min = -1ms}};
                 }),
                 "admit::RetryConfig::min must be positive"));
}

TEST_CASE("jittered spreads a delay within +-20 %, at least 1 ms", "[retry]") {
  std::mt19937 rng{42};
  std::set<std::int64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const milliseconds d = admit::jittered(1000ms, rng);
    CHECK(d >= 800ms);
    CHECK(d <= 1200ms);
    seen.insert(d.count());
  }
  CHECK(seen.size() > 100);  // spread, not a constant
  CHECK(admit::jittered(0ms, rng) == 1ms);
  CHECK(admit::jittered(1000ms, rng, 0.0) == 1000ms);
  const milliseconds wide = admit::jittered(1000ms, rng, 5.0);  // clamped to +-100 %
  CHECK(wide >= 1ms);
  CHECK(wide <= 2000ms);
}

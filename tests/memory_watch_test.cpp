// Tests for MemoryWatch and read_memory_pressure (admit/environment.hpp): a
// pool that follows a fake root the test rewrites between polls. The budget
// follows the limit, pressure turns on at the high watermark and off only at
// the low one (or from PSI), and the pool's waiters see each change; a watch
// validates its configuration naming the field, and start() polls on its own.
#include <admit/environment.hpp>
#include <admit/units.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <future>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>

#include "catch.hpp"
#include "fake_root.hpp"
#include "support.hpp"
#include "wait_support.hpp"

using admit::Admission;
using admit::MemorySource;
using admit::MemoryWatch;
using admit::MiB;
using admit::Reason;
using admit::WatchConfig;
using admit_test::eventually;
using admit_test::FakeRoot;
using namespace std::chrono_literals;

namespace {

using Pool = admit::SlotPool<admit::FlatPolicy>;

Pool make_pool() {
  return Pool{admit::PoolConfig{.memory_budget = 64 * MiB, .slots = 8}, admit::FlatPolicy{100}};
}

std::string mib(std::uint64_t n) { return std::to_string(n * MiB) + "\n"; }

// A cgroup v2 container at /pod/app whose pod (the parent) has the limit.
void write_v2(const FakeRoot& root, std::uint64_t limit_mib, std::uint64_t usage_mib) {
  root.write("proc/self/cgroup", "0::/pod/app\n");
  root.write("sys/fs/cgroup/pod/memory.max", mib(limit_mib));
  root.write("sys/fs/cgroup/pod/memory.current", mib(usage_mib));
  root.write("sys/fs/cgroup/pod/app/memory.max", "max\n");
  root.write("sys/fs/cgroup/pod/app/memory.current", mib(usage_mib / 2));
}

WatchConfig watch_config(const FakeRoot& root) {
  return WatchConfig{
      .rule = {.percent = 50}, .high_percent = 90, .low_percent = 80, .root = root.path()};
}

std::string construction_error(const WatchConfig& config) {
  Pool pool = make_pool();
  try {
    MemoryWatch watch{pool, config};
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("a WatchConfig out of range is refused, naming the field", "[environment][watch]") {
  CHECK_FALSE(admit::validation_error(WatchConfig{}).has_value());
  const auto error = [](WatchConfig c) { return admit::validation_error(c).value_or("valid"); };
  CHECK(error({.rule = {.percent = 0}}) ==
        "admit::WatchConfig::rule.percent must be in 1..100, got 0");
  CHECK(error({.rule = {.percent = 101}}) ==
        "admit::WatchConfig::rule.percent must be in 1..100, got 101");
  CHECK(error({.high_percent = 0, .low_percent = 0}) ==
        "admit::WatchConfig::high_percent must be in 1..100, got 0");
  CHECK(error({.high_percent = 101}) ==
        "admit::WatchConfig::high_percent must be in 1..100, got 101");
  CHECK(error({.high_percent = 80, .low_percent = 80}) ==
        "admit::WatchConfig::low_percent must be below high_percent (80), got 80");
  CHECK(admit_test::contains(error({.psi_some_avg10 = -1}),
                             "admit::WatchConfig::psi_some_avg10 must be in 0..100, got -1"));
  CHECK(admit_test::contains(error({.psi_some_avg10 = std::nan("")}),
                             "admit::WatchConfig::psi_some_avg10 must be in 0..100"));
  CHECK(error({.high_percent = 100, .low_percent = 99, .psi_some_avg10 = 100}) == "valid");
  CHECK(construction_error({.rule = {.percent = 0}}) ==
        "admit::WatchConfig::rule.percent must be in 1..100, got 0");
  CHECK(construction_error({.high_percent = 50, .low_percent = 60}) ==
        "admit::WatchConfig::low_percent must be below high_percent (50), got 60");
}

TEST_CASE("with nothing readable a poll changes nothing and says so", "[environment][watch]") {
  FakeRoot root;
  Pool pool = make_pool();
  MemoryWatch watch{pool, watch_config(root)};
  const admit::WatchResult seen = watch.poll();
  CHECK_FALSE(seen.facts.has_value());
  CHECK_FALSE(seen.budget_changed);
  CHECK_FALSE(seen.pressure_changed);
  CHECK(seen.budget == 64 * MiB);
  CHECK_FALSE(seen.pressure);
  CHECK(pool.memory_budget() == 64 * MiB);
}

TEST_CASE("the budget follows the limit; pressure has high and low watermarks",
          "[environment][watch]") {
  FakeRoot root;
  write_v2(root, 1000, 500);
  Pool pool = make_pool();
  MemoryWatch watch{pool, watch_config(root)};

  admit::WatchResult seen = watch.poll();
  REQUIRE(seen.facts.has_value());
  CHECK(seen.facts->source == MemorySource::cgroup_v2);
  CHECK(seen.facts->limit_bytes == 1000 * MiB);
  CHECK(seen.facts->usage_bytes == 500 * MiB);
  CHECK(seen.budget_changed);
  CHECK(seen.budget == 500 * MiB);  // 50 % of the pod's limit
  CHECK(pool.memory_budget() == 500 * MiB);
  CHECK_FALSE(seen.pressure);
  CHECK_FALSE(watch.poll().budget_changed);  // the same facts change nothing

  write_v2(root, 1000, 900);  // 90 %: the high watermark
  seen = watch.poll();
  CHECK(seen.pressure_changed);
  CHECK(seen.pressure);
  CHECK(pool.under_pressure());
  const Admission refused = pool.try_acquire(MiB);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().reason == Reason::pressure);
  auto waiter = std::async(std::launch::async, [&] { return pool.acquire_for(MiB, 10s); });
  REQUIRE(eventually([&] { return pool.stats().waiters == 1; }));

  write_v2(root, 1000, 810);  // between the watermarks: still on
  seen = watch.poll();
  CHECK_FALSE(seen.pressure_changed);
  CHECK(seen.pressure);
  CHECK(waiter.wait_for(20ms) == std::future_status::timeout);

  write_v2(root, 1000, 800);  // 80 %: the low watermark, off
  seen = watch.poll();
  CHECK(seen.pressure_changed);
  CHECK_FALSE(seen.pressure);
  CHECK(waiter.get());  // the waiter queued meanwhile is admitted
  CHECK(pool.try_acquire(MiB));

  write_v2(root, 1000, 899);  // just below high, coming from below: stays off
  CHECK_FALSE(watch.poll().pressure);
}

TEST_CASE("a shrinking limit answers waiters that can never fit; a growing one admits them",
          "[environment][watch]") {
  FakeRoot root;
  write_v2(root, 400, 100);
  Pool pool = make_pool();
  MemoryWatch watch{pool, watch_config(root)};
  CHECK(watch.poll().budget == 200 * MiB);
  std::optional<admit::SlotReservation> held{std::move(pool.try_acquire(150 * MiB)).value()};
  auto large = std::async(std::launch::async, [&] { return pool.acquire_for(120 * MiB, 10s); });
  REQUIRE(eventually([&] { return pool.stats().waiters == 1; }));

  write_v2(root, 200, 100);  // the pod was resized in place: budget 100 MiB
  CHECK(watch.poll().budget == 100 * MiB);
  const Admission never = large.get();
  REQUIRE_FALSE(never);
  CHECK(never.error().reason == Reason::too_large);

  auto medium = std::async(std::launch::async, [&] { return pool.acquire_for(60 * MiB, 10s); });
  REQUIRE(eventually([&] { return pool.stats().waiters == 1; }));
  held.reset();  // 0 of 100 MiB in use: the 60 MiB waiter is admitted
  const Admission medium_admitted = medium.get();
  REQUIRE(medium_admitted);
  auto big = std::async(std::launch::async, [&] { return pool.acquire_for(90 * MiB, 10s); });
  REQUIRE(eventually([&] { return pool.stats().waiters == 1; }));
  write_v2(root, 400, 100);  // grows back: 200 MiB, and the 90 MiB fits beside the 60
  CHECK(watch.poll().budget == 200 * MiB);
  CHECK(big.get());
}

TEST_CASE("a budget of 0 is set as the pool's smallest, 1 byte", "[environment][watch]") {
  FakeRoot root;
  write_v2(root, 100, 10);
  Pool pool = make_pool();
  MemoryWatch watch{
      pool, WatchConfig{.rule = {.percent = 90, .reserve_bytes = 200 * MiB}, .root = root.path()}};
  CHECK(watch.poll().budget == 1);
  CHECK(pool.try_acquire(1));
  CHECK(pool.try_acquire(2).error().reason == Reason::too_large);
}

TEST_CASE("read_memory_pressure takes the cgroup's memory.pressure, else the machine's",
          "[environment][watch]") {
  FakeRoot root;
  CHECK_FALSE(admit::read_memory_pressure(root.path()).has_value());
  root.write("proc/pressure/memory",
             "some avg10=1.53 avg60=0.20 avg300=0.04 total=123456\n"
             "full avg10=0.50 avg60=0.10 avg300=0.01 total=6789\n");
  CHECK(admit::read_memory_pressure(root.path()) == Approx(1.53));
  write_v2(root, 1000, 100);
  CHECK(admit::read_memory_pressure(root.path()) == Approx(1.53));  // no memory.pressure there
  root.write("sys/fs/cgroup/pod/app/memory.pressure",
             "some avg10=42.00 avg60=3.00 avg300=1.00 total=9\nfull avg10=0.00 avg60=0 avg300=0 "
             "total=0\n");
  CHECK(admit::read_memory_pressure(root.path()) == Approx(42.0));
  for (const char* bad : {"", "garbage\n", "some avg10=\n", "some avg10=x1\n", "some avg10=1.5x\n",
                          "some avg10=101.00 avg60=0\n", "some avg10=-1.0\n", "full avg10=1.0\n"}) {
    INFO(bad);
    root.write("sys/fs/cgroup/pod/app/memory.pressure", bad);
    CHECK_FALSE(admit::read_memory_pressure(root.path()).has_value());
  }
}

TEST_CASE("PSI above its threshold turns pressure on, below it off", "[environment][watch]") {
  FakeRoot root;
  write_v2(root, 1000, 100);  // usage 10 %: far from any watermark
  root.write("proc/pressure/memory", "some avg10=12.50 avg60=1.00 avg300=0.10 total=1\n");
  Pool pool = make_pool();
  MemoryWatch watch{pool, WatchConfig{.psi_some_avg10 = 10, .root = root.path()}};
  admit::WatchResult seen = watch.poll();
  CHECK(seen.psi_some_avg10 == Approx(12.5));
  CHECK(seen.pressure);
  root.write("proc/pressure/memory", "some avg10=9.99 avg60=1.00 avg300=0.10 total=1\n");
  seen = watch.poll();
  CHECK_FALSE(seen.pressure);
  CHECK(seen.pressure_changed);

  // Without a threshold PSI is not even read.
  MemoryWatch without{pool, WatchConfig{.root = root.path()}};
  CHECK_FALSE(without.poll().psi_some_avg10.has_value());
}

TEST_CASE("start() polls on a thread of its own until stop()", "[environment][watch]") {
  FakeRoot root;
  write_v2(root, 1000, 100);
  Pool pool = make_pool();
  {
    MemoryWatch watch{pool, watch_config(root)};
    CHECK_THROWS_AS(watch.start(0ms), std::invalid_argument);
    watch.start(5ms);
    REQUIRE(eventually([&] { return pool.memory_budget() == 500 * MiB; }));
    write_v2(root, 1000, 950);
    REQUIRE(eventually([&] { return pool.under_pressure(); }));
    watch.stop();
    write_v2(root, 1000, 100);
    std::this_thread::sleep_for(30ms);  // several intervals: nobody polls any more
    CHECK(pool.under_pressure());
    watch.start(5ms);  // again, after a stop
    REQUIRE(eventually([&] { return !pool.under_pressure(); }));
  }  // the destructor stops the thread
  write_v2(root, 2000, 1990);
  std::this_thread::sleep_for(30ms);
  CHECK(pool.memory_budget() == 500 * MiB);
  CHECK_FALSE(pool.under_pressure());
}

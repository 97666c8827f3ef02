// Tests for admit/config.hpp: PoolConfig's defaults, designated initializers
// and validation (through the pool that validates it).
#include <admit/config.hpp>
#include <admit/pool.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "catch.hpp"
#include "support.hpp"

using admit::FlatPolicy;
using admit::MiB;
using admit::PoolConfig;
using admit::SlotPool;
using admit_test::contains;
using admit_test::invalid_argument_message;

namespace {
constexpr PoolConfig server_config{.memory_budget = 200 * MiB, .slots = 8};
}  // namespace

TEST_CASE("PoolConfig defaults: unlimited waiters, FIFO", "[config]") {
  constexpr PoolConfig config{.memory_budget = MiB, .slots = 1};
  STATIC_REQUIRE(config.max_waiters == 0);
  STATIC_REQUIRE(config.fairness == admit::Fairness::fifo);
  STATIC_REQUIRE(config.max_head_wait == std::chrono::milliseconds{1000});
  STATIC_REQUIRE(config.max_pass_percent == 100);
  STATIC_REQUIRE(config.lanes_clock == nullptr);
  STATIC_REQUIRE(PoolConfig::max_memory_budget == (std::uint64_t{1} << 43) - 1);
  STATIC_REQUIRE(PoolConfig::max_slots == (1u << 20) - 1);
}

TEST_CASE("invalid configuration throws std::invalid_argument naming the field and limit",
          "[pool][validation]") {
  const auto message = [](PoolConfig config) {
    return invalid_argument_message([&] { SlotPool pool{config}; });
  };
  CHECK(contains(message({.memory_budget = 0, .slots = 1}),
                 "admit::PoolConfig::memory_budget must be in 1..8796093022207 bytes, got 0"));
  CHECK(contains(message({.memory_budget = PoolConfig::max_memory_budget + 1, .slots = 1}),
                 "memory_budget must be in 1..8796093022207 bytes, got 8796093022208"));
  CHECK(contains(message({.memory_budget = MiB, .slots = 0}),
                 "admit::PoolConfig::slots must be in 1..1048575, got 0"));
  CHECK(contains(message({.memory_budget = MiB, .slots = PoolConfig::max_slots + 1}),
                 "slots must be in 1..1048575, got 1048576"));
  CHECK(contains(message({.memory_budget = MiB, .slots = 4'000'000'000u}), "got 4000000000"));
  // The policy is validated before the pool ever sees it.
  CHECK(contains(invalid_argument_message([] {
                   SlotPool pool{server_config, FlatPolicy{200}};
                 }),
                 "FlatPolicy: percent must be in 0..100, got 200"));
}

TEST_CASE("an out-of-range fairness value is refused, naming the field", "[config][validation]") {
  const PoolConfig config{
      .memory_budget = MiB, .slots = 1, .fairness = static_cast<admit::Fairness>(7)};
  CHECK(contains(invalid_argument_message([&] { SlotPool pool{config}; }),
                 "admit::PoolConfig::fairness must be Fairness::fifo, Fairness::barging or "
                 "Fairness::lanes, got 7"));
}

TEST_CASE("lanes settings out of range are refused, naming the field", "[config][validation]") {
  const auto message = [](PoolConfig config) {
    return invalid_argument_message([&] { SlotPool pool{config}; });
  };
  PoolConfig config{.memory_budget = MiB, .slots = 1, .fairness = admit::Fairness::lanes};
  config.max_pass_percent = 101;
  CHECK(message(config) == "admit::PoolConfig::max_pass_percent must be in 0..100, got 101");
  config.max_pass_percent = 0;
  config.max_head_wait = std::chrono::milliseconds{-1};
  CHECK(message(config) == "admit::PoolConfig::max_head_wait must be at least 0 ms, got -1 ms");
  // The bounds themselves are valid; so are the other modes with lanes settings left alone.
  config.max_head_wait = std::chrono::milliseconds{0};
  CHECK_FALSE(admit::validation_error(config).has_value());
  config.max_pass_percent = 100;
  CHECK_FALSE(admit::validation_error(config).has_value());
}

TEST_CASE("PoolConfig validation_error is the constructor's message, without throwing",
          "[config][validation]") {
  const PoolConfig bad[] = {
      {.memory_budget = 0, .slots = 1},
      {.memory_budget = PoolConfig::max_memory_budget + 1, .slots = 1},
      {.memory_budget = MiB, .slots = 0},
      {.memory_budget = MiB, .slots = PoolConfig::max_slots + 1},
      {.memory_budget = MiB, .slots = 1, .fairness = static_cast<admit::Fairness>(7)},
      {.memory_budget = MiB, .slots = 1, .max_pass_percent = 1000},
      {.memory_budget = 0, .slots = 0},  // the first field out of range is named
  };
  for (const PoolConfig& config : bad) {
    const std::optional<std::string> error = admit::validation_error(config);
    REQUIRE(error.has_value());
    CHECK(*error == invalid_argument_message([&] { SlotPool pool{config}; }));
  }
  CHECK(contains(*admit::validation_error({.memory_budget = 0, .slots = 0}), "memory_budget"));
  CHECK_FALSE(admit::validation_error(server_config).has_value());
  CHECK_FALSE(admit::validation_error({.memory_budget = PoolConfig::max_memory_budget,
                                       .slots = PoolConfig::max_slots,
                                       .fairness = admit::Fairness::barging})
                  .has_value());
}

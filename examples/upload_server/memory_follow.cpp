#include "memory_follow.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <string_view>

namespace upload_server {

namespace {

void log_line(std::string_view line) {
  // One write per line, flushed, as server.cpp logs: read by people and tests as it grows.
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

// " (read under /tmp/fake)" for a --memory-root other than /, else nothing.
std::string under(const Options& options) {
  return options.memory_root == "/" ? std::string{}
                                    : fmt::format(" (read under {})", options.memory_root.string());
}

std::string facts_text(const admit::MemoryFacts& facts) {
  return fmt::format("limit {} bytes ({}), usage {} bytes", facts.limit_bytes,
                     admit::to_string(facts.source), facts.usage_bytes);
}

}  // namespace

std::string describe(const admit::BudgetRule& rule) {
  return rule.reserve_bytes == 0
             ? fmt::format("{}% of the limit", rule.percent)
             : fmt::format("{}% of (limit - {} bytes)", rule.percent, rule.reserve_bytes);
}

StartingBudget starting_budget(const Options& options) {
  if (!options.budget_rule) return {.budget = options.budget, .facts = std::nullopt, .line = {}};
  const admit::BudgetRule& rule = *options.budget_rule;
  const std::string root = options.memory_root.string();
  StartingBudget start{
      .budget = 0, .facts = admit::read_memory_facts(options.memory_root), .line = {}};
  if (!start.facts) {
    start.line = fmt::format(
        "--budget auto: no memory limit readable under {} (proc/self/cgroup with "
        "sys/fs/cgroup, or proc/meminfo); give --budget a size instead",
        root);
    return start;
  }
  start.budget = admit::budget_for(*start.facts, rule);
  if (start.budget == 0) {
    start.line = fmt::format(
        "--budget auto: nothing left for uploads: the memory limit is {} bytes ({}, read under "
        "{}), and {} is 0; lower the reserve or give --budget a size",
        start.facts->limit_bytes, admit::to_string(start.facts->source), root, describe(rule));
    return start;
  }
  start.line = fmt::format("memory: {}{}; budget {} bytes = {}", facts_text(*start.facts),
                           under(options), start.budget, describe(rule));
  return start;
}

MemoryFollower::MemoryFollower(Server& server, const boost::asio::any_io_executor& executor)
    : server_{server},
      watch_{server.pool,
             admit::WatchConfig{.rule = server.options.budget_rule.value_or(admit::BudgetRule{}),
                                .high_percent = server.options.pressure_high,
                                .low_percent = server.options.pressure_low,
                                .psi_some_avg10 = 0,
                                .root = server.options.memory_root}},
      timer_{executor} {}

void MemoryFollower::start() {
  poll();
  arm();
}

void MemoryFollower::arm() {
  timer_.expires_after(server_.options.follow_memory);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: `this` may be gone
    poll();
    arm();
  });
}

void MemoryFollower::poll() {
  const Options& options = server_.options;
  const std::uint64_t before = server_.pool.memory_budget();
  const admit::WatchResult result = watch_.poll();
  if (!result.facts) {
    // Nothing changes: the budget and the pressure stay as the last poll left them.
    server_.memory.usage_bytes.reset();
    if (!unreadable_) {
      log_line(fmt::format(
          "memory: nothing readable under {}; budget {} bytes and pressure {} stay until it is\n",
          options.memory_root.string(), result.budget, result.pressure ? "on" : "off"));
    }
    unreadable_ = true;
    return;
  }
  const admit::MemoryFacts& facts = *result.facts;
  if (unreadable_) {
    log_line(fmt::format("memory: readable again: {}\n", facts_text(facts)));
    unreadable_ = false;
  }
  server_.memory.limit_bytes = facts.limit_bytes;
  server_.memory.usage_bytes = facts.usage_bytes;
  if (result.budget_changed) {
    const admit::BudgetRule& rule = watch_.config().rule;
    log_line(fmt::format("memory: budget moved from {} to {} bytes = {}, {}{}\n", before,
                         result.budget, describe(rule), facts_text(facts),
                         admit::budget_for(facts, rule) == 0
                             ? " (nothing left after the reserve: no upload fits)"
                             : ""));
  }
  if (result.pressure_changed) {
    if (result.pressure) {
      log_line(fmt::format(
          "memory: pressure on at usage {} of {} bytes (>= {}%): new uploads are refused, "
          "/healthz answers 503\n",
          facts.usage_bytes, facts.limit_bytes, options.pressure_high));
    } else {
      log_line(fmt::format("memory: pressure off at usage {} of {} bytes (<= {}%)\n",
                           facts.usage_bytes, facts.limit_bytes, options.pressure_low));
    }
  }
}

}  // namespace upload_server

// upload_server/memory_follow.hpp - the memory the server runs in: the budget
// derived from it at start (--budget auto) and followed while the server runs
// (--follow-memory).
//
// At start, admit::read_memory_facts(--memory-root) gives the limit (the
// cgroup's, else MemTotal) and the usage, and admit::budget_for the budget.
// With nothing readable, or a budget of 0 (a reserve at or above the limit),
// the server does not start: it cannot know what it may spend.
//
// With --follow-memory, an admit::MemoryWatch on the pool is polled from a
// steady_timer of the server's io_context, not from MemoryWatch::start()'s
// thread: the server has one thread and timers of its own, and a poll is a
// few small reads of /proc and /sys. Each poll moves the budget with the
// limit (running uploads keep what they hold; below what is in use, nobody
// new fits until enough finish) and turns the pool's pressure on once usage
// reaches --pressure's HIGH % of the limit, off again at LOW %. While it is
// on, new uploads are refused with `pressure` (503 + Retry-After, WebSocket
// close 1013; a waiting one waits, up to --wait) and /healthz answers 503;
// running uploads go on. Every change is one log line.
#pragma once

#include <admit/environment.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "options.hpp"
#include "server.hpp"

namespace upload_server {

/// The budget the server starts with. With --budget SIZE: that size, no facts,
/// nothing to log. With --budget auto: derived from the facts read under
/// --memory-root, and `line` says so ("memory: limit ..."); `budget` 0 means
/// the server must not start, and `line` is the message that says why.
struct StartingBudget {
  std::uint64_t budget = 0;
  std::optional<admit::MemoryFacts> facts;
  std::string line;
};

[[nodiscard]] StartingBudget starting_budget(const Options& options);

/// "90% of the limit", "85% of (limit - 67108864 bytes)": a BudgetRule for logs.
[[nodiscard]] std::string describe(const admit::BudgetRule& rule);

/// Polls a MemoryWatch on `server.pool` every --follow-memory on the
/// io_context's thread, keeps server.memory (what /metrics exports) up to
/// date and logs each change. Declare it after the io_context, so that it is
/// destroyed first: its timer is the io_context's.
class MemoryFollower {
 public:
  /// Throws std::invalid_argument, as admit::MemoryWatch does, on watermarks
  /// parse_options would not have let through.
  MemoryFollower(Server& server, const boost::asio::any_io_executor& executor);
  MemoryFollower(const MemoryFollower&) = delete;
  MemoryFollower& operator=(const MemoryFollower&) = delete;
  ~MemoryFollower() = default;

  /// Polls at once (so that a server started short of memory is under
  /// pressure from its first request), then every --follow-memory.
  void start();

 private:
  void poll();
  void arm();

  Server& server_;
  admit::MemoryWatch watch_;
  boost::asio::steady_timer timer_;
  bool unreadable_ = false;  // the last poll read nothing: logged once per episode
};

}  // namespace upload_server

// tests/chaos/checks.hpp - how the chaos stress test judges what it sees:
// violations (counted, the first ones printed), the progress counts and the
// watchdog that aborts on a hang, and how a request was made (Ask, Asked, the
// pressure Phases around it) with the answers each kind of request may get.
#pragma once

#include <admit/admit.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "load.hpp"

namespace admit_chaos {

// --- Violations, progress, the watchdog ----------------------------------------------------------

inline std::atomic<std::uint64_t> violations{0};
// Worker operations, and answers and steps of the final stages: the watchdog
// fires when their sum stands still. Not the observer's or the controller's
// loops, which go on during a hang.
inline std::atomic<std::uint64_t> worker_ops{0};
inline std::atomic<std::uint64_t> progress{0};
inline std::atomic<const char*> stage{"starting"};
// "fifo, tracked, seed 1": points into names made before any thread starts.
inline std::atomic<const char*> run_name{""};
inline constexpr std::uint64_t max_printed = 25;

[[gnu::format(printf, 1, 2)]] inline void violation(const char* format, ...) {
  const std::uint64_t n = violations.fetch_add(1) + 1;
  if (n > max_printed) return;
  char message[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(message, sizeof message, format, args);
  va_end(args);
  std::fprintf(stderr, "chaos violation %llu [%s]: %s\n", ull(n), run_name.load(), message);
  if (n == max_printed) std::fprintf(stderr, "chaos: further violations counted, not printed\n");
}

inline void moved() { progress.fetch_add(1, std::memory_order_relaxed); }

/// Aborts with the stage it was in when `progress` stands still for the
/// limit: every wait in this test has a deadline, so that means a hang.
class Watchdog {
 public:
  Watchdog()
      : thread_{[this] {
          std::unique_lock lock{mutex_};
          std::uint64_t seen = progress.load() + worker_ops.load();
          auto since = Clock::now();
          while (!done_) {
            done_cv_.wait_for(lock, 1s);
            if (const std::uint64_t now = progress.load() + worker_ops.load(); now != seen) {
              seen = now;
              since = Clock::now();
            } else if (Clock::now() - since > watchdog_limit) {
              std::fprintf(stderr,
                           "chaos: watchdog: no progress for %llds while %s [%s]: a hang or a lost "
                           "wake-up\n",
                           static_cast<long long>(watchdog_limit.count()), stage.load(),
                           run_name.load());
              std::abort();
            }
          }
        }} {}
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  ~Watchdog() {
    {
      const std::scoped_lock lock{mutex_};
      done_ = true;
    }
    done_cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::thread thread_;  // last: starts once the rest exists
};

// --- How a request was made, for judging its answer ----------------------------------------------

enum class Ask : std::uint8_t {
  try_acquire,
  blocking,          // acquire / acquire_for with a deadline in the future
  blocking_expired,  // an expired deadline: refused at once, takes nothing
  async,             // no deadline
  async_deadline,
  async_expired,
};

inline const char* name(Ask ask) {
  switch (ask) {
    case Ask::try_acquire:
      return "try_acquire";
    case Ask::blocking:
      return "acquire";
    case Ask::blocking_expired:
      return "acquire (expired deadline)";
    case Ask::async:
      return "async_acquire";
    case Ask::async_deadline:
      return "async_acquire (deadline)";
    case Ask::async_expired:
      return "async_acquire (expired deadline)";
  }
  return "?";
}

inline bool may_be_refused_with(Ask ask, Reason reason) {
  switch (reason) {
    case Reason::too_large:
    case Reason::closed:
      return true;
    case Reason::no_slot:
    case Reason::no_memory:
    case Reason::pressure:  // waiters wait out pressure
      return ask == Ask::try_acquire;
    case Reason::queue_full:
      return ask == Ask::blocking || ask == Ask::async || ask == Ask::async_deadline;
    case Reason::timeout:
      return ask != Ask::try_acquire && ask != Ask::async;
    case Reason::cancelled:
      return ask == Ask::async || ask == Ask::async_deadline;
  }
  return false;
}

/// Where pressure stood. The controller turns it on as outer++ (odd),
/// set_pressure(true), inner++ (odd), and off as inner++, set_pressure(false),
/// outer++: an odd inner phase lies within pressure, pressure within an odd
/// outer phase. So a call that reads the same odd inner phase before and
/// after ran entirely under pressure, and one that reads the same even outer
/// phase before and after ran entirely without it.
struct Phases {
  std::uint64_t outer = 0;
  std::uint64_t inner = 0;
};

inline bool pressure_on_throughout(Phases before, Phases after) {
  return before.inner == after.inner && before.inner % 2 == 1;
}

inline bool pressure_off_throughout(Phases before, Phases after) {
  return before.outer == after.outer && before.outer % 2 == 0;
}

struct Asked {
  Ask ask = Ask::try_acquire;
  std::uint64_t declared = 0;
  // A timeout before this is a violation; for acquire_for it is the call's
  // start plus the timeout, which the pool's own deadline is not earlier than.
  Clock::time_point deadline = Clock::time_point::max();
  bool after_close = false;  // made after close() returned
  bool cancel_tried = false;
  int partition = -1;  // asked in this one of partition_specs; -1: in none
  Phases before{};
};

}  // namespace admit_chaos

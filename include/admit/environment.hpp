// admit/environment.hpp - how much memory this process may really use, and a
// memory budget derived from it.
//
// A SlotPool's memory_budget is only honest if it fits the limit the process
// runs under. Inside a container that limit is the cgroup's, not the
// machine's: a server that sizes itself from /proc/meminfo in a 2 GiB pod on a
// 64 GiB node is killed by the OOM killer long before it refuses an upload.
// read_memory_facts() finds the tightest limit that applies and what is in use
// against it; budget_for() turns that into a budget for PoolConfig; and
// MemoryWatch follows both while the server runs (a pod resized in place, a
// neighbour filling the machine), moving the pool's budget and turning its
// pressure on (SlotPool::set_pressure: nobody new is admitted) when usage, or
// the kernel's pressure-stall information (read_memory_pressure), crosses a
// high watermark, and off again below a low one.
//
// Where the figures come from (Linux; elsewhere read_memory_facts() finds
// nothing):
//   1. /proc/self/cgroup names the process's cgroup: "0::/path" for cgroup v2,
//      "N:...memory...:/path" for the v1 memory controller. A hybrid system
//      lists both; the hierarchy that has the memory files is used, v2 first.
//   2. v2 (/sys/fs/cgroup/<path>, or /sys/fs/cgroup/unified/<path> on hybrid
//      systems): memory.max and memory.current on every level from the mount
//      root down to the process's cgroup; an ancestor's limit binds too (a
//      pod's limit sits on the parent of the container's cgroup).
//      v1 (/sys/fs/cgroup/memory/<path>): memory.stat's
//      hierarchical_memory_limit, which the kernel computes over all
//      ancestors, else memory.limit_in_bytes on every level; and
//      memory.usage_in_bytes.
//      A listed path that does not exist under the mount is a container that
//      sees its own cgroup as the mount root: the mount root is used.
//   3. /proc/meminfo: MemTotal, and MemTotal - MemAvailable as the usage
//      (MemTotal - MemFree - Buffers - Cached on kernels before 3.14, which
//      have no MemAvailable).
//
// The rules:
//   - The tightest limit on the path counts; on a tie the ancestor's, whose
//     usage includes its descendants'. usage_bytes is that cgroup's usage,
//     else (unreadable, or a v1 limit set above a container's mount root, on
//     no level it can see) the process's own cgroup's, else MemTotal -
//     MemAvailable.
//   - "No limit" is v2's "max", v1's LONG_MAX rounded down to the page size
//     (9223372036854771712 with 4 KiB pages) and any limit above MemTotal:
//     then the limit is MemTotal, source is meminfo, and usage_bytes is the
//     process's own cgroup's usage when one is readable (the deepest level
//     that has a usage file), else MemTotal - MemAvailable.
//   - A file is usable only when it holds exactly one decimal integer (or v2's
//     "max"), optionally followed by a newline. An unusable limit file is "no
//     limit on that level"; an unusable usage file is "that cgroup's usage is
//     unknown", and the next usage in the order above is taken.
//   - A limit with no usage anywhere, or no limit and no MemTotal, is nothing
//     usable: nullopt. Reads are bounded and open regular files only
//     (detail/kernel_files.hpp), and nothing throws.
//
// The figures are a snapshot: usage moves all the time, and a limit can be
// changed while the process runs.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "config.hpp"          // PoolConfig::max_memory_budget, which budget_for saturates to
#include "detail/failure.hpp"  // ADMIT_HAS_EXCEPTIONS: no try block without exceptions
#include "detail/kernel_files.hpp"
#include "pool.hpp"  // SlotPool, which a MemoryWatch follows

namespace admit {

/// Where MemoryFacts::limit_bytes came from.
enum class MemorySource {
  cgroup_v2,  ///< a cgroup v2 memory.max on the process's cgroup or an ancestor
  cgroup_v1,  ///< the cgroup v1 memory controller's limit
  meminfo,    ///< no cgroup limit binds: the machine's MemTotal
};

/// The enumerator's name ("cgroup_v2", ...), stable for logs.
[[nodiscard]] constexpr std::string_view to_string(MemorySource source) noexcept {
  switch (source) {
    case MemorySource::cgroup_v2:
      return "cgroup_v2";
    case MemorySource::cgroup_v1:
      return "cgroup_v1";
    case MemorySource::meminfo:
      return "meminfo";
  }
  return "unknown";
}

/// A snapshot of the memory this process may use.
struct MemoryFacts {
  std::uint64_t limit_bytes;  ///< the tightest memory limit on this process
  std::uint64_t usage_bytes;  ///< what it (its cgroup) uses now; may exceed the limit briefly
  MemorySource source;

  friend bool operator==(const MemoryFacts&, const MemoryFacts&) = default;
};

/// The memory limit this process runs under and its usage, read from the
/// files under `root` (tests pass a directory laid out like /): see the top
/// of this file for the files and rules. nullopt when nothing usable is
/// there, on a system other than Linux, and when memory runs out while
/// reading.
[[nodiscard]] inline std::optional<MemoryFacts> read_memory_facts(
    const std::filesystem::path& root = "/") noexcept;

/// How much of the limit a pool may budget: `percent` of what is left after
/// `reserve_bytes` (for the heap, the stack, buffers outside the pool).
struct BudgetRule {
  unsigned percent = 90;            ///< clamped to 100
  std::uint64_t reserve_bytes = 0;  ///< taken off the limit first
};

/// (limit - reserve) * percent / 100, rounded down and exact for every input,
/// saturated to [0, PoolConfig::max_memory_budget]. 0 (reserve at or above the
/// limit, or percent 0) is not a valid PoolConfig::memory_budget: the caller
/// decides what a process with no room should do.
[[nodiscard]] constexpr std::uint64_t budget_for(const MemoryFacts& facts,
                                                 const BudgetRule& rule) noexcept {
  if (rule.reserve_bytes >= facts.limit_bytes) return 0;
  const std::uint64_t usable = facts.limit_bytes - rule.reserve_bytes;
  const std::uint64_t percent = rule.percent < 100 ? rule.percent : 100;
  // Exact, and never wraps (policy.hpp).
  const std::uint64_t budget = detail::percent_of(usable, static_cast<std::uint32_t>(percent));
  return budget < PoolConfig::max_memory_budget ? budget : PoolConfig::max_memory_budget;
}

/// PSI's memory "some avg10" under `root`: the percentage (0..100) of the last
/// 10 s in which at least one task of this process's cgroup (cgroup v2's
/// memory.pressure) or, without one, of the machine (/proc/pressure/memory)
/// waited for memory. A rising figure means reclaim is already slowing the
/// server down, before usage reaches any limit. nullopt where the kernel has
/// no PSI (before 4.20, or booted without it), on other systems, and on
/// anything unreadable.
[[nodiscard]] inline std::optional<double> read_memory_pressure(
    const std::filesystem::path& root = "/") noexcept;

// --- Following live: MemoryWatch ---------------------------------------------

/// How a MemoryWatch turns what it reads into a budget and a pressure state.
struct WatchConfig {
  BudgetRule rule{};           ///< the budget from the facts; rule.percent in 1..100
  unsigned high_percent = 90;  ///< pressure on at usage >= this % of the limit; 1..100
  unsigned low_percent = 80;   ///< and off again only at usage <= this %; < high_percent
  /// Pressure on as well while PSI's memory "some avg10" (the share of the
  /// last 10 s in which a task stalled waiting for memory, in percent) is at
  /// least this; 0 = PSI is not read. Off again once it is below.
  double psi_some_avg10 = 0;
  std::filesystem::path root = "/";  ///< where /proc and /sys are (tests: a fake tree)
};

/// What one MemoryWatch::poll() saw and did.
struct WatchResult {
  std::optional<MemoryFacts> facts;      ///< nullopt: nothing readable, nothing changed
  std::optional<double> psi_some_avg10;  ///< when PSI is read and was readable
  std::uint64_t budget = 0;              ///< the pool's budget after the poll
  bool pressure = false;                 ///< the pool's pressure after the poll
  bool budget_changed = false;           ///< this poll set a new budget
  bool pressure_changed = false;         ///< this poll turned pressure on or off
};

/// Why a MemoryWatch would refuse `config`, naming the field
/// ("admit::WatchConfig::low_percent must be below high_percent (90), got 95");
/// nullopt when it is valid.
[[nodiscard]] inline std::optional<std::string> validation_error(const WatchConfig& config) {
  const auto error = [](const char* field, const std::string& limit, auto got) {
    return std::string{"admit::WatchConfig::"} + field + " must be " + limit + ", got " +
           std::to_string(got);
  };
  if (config.rule.percent < 1 || config.rule.percent > 100) {
    return error("rule.percent", "in 1..100", config.rule.percent);
  }
  if (config.high_percent < 1 || config.high_percent > 100) {
    return error("high_percent", "in 1..100", config.high_percent);
  }
  if (config.low_percent >= config.high_percent) {
    return error("low_percent", "below high_percent (" + std::to_string(config.high_percent) + ")",
                 config.low_percent);
  }
  if (!(config.psi_some_avg10 >= 0 && config.psi_some_avg10 <= 100)) {  // NaN fails too
    return std::string{"admit::WatchConfig::psi_some_avg10 must be in 0..100, got "} +
           std::to_string(config.psi_some_avg10);
  }
  return std::nullopt;
}

/// Ties a pool to the memory the machine reports: each poll() reads the facts
/// (read_memory_facts), sets the pool's budget to budget_for(facts, rule) when
/// it changed, and turns the pool's pressure on when usage reaches
/// high_percent of the limit (or PSI reaches psi_some_avg10) and off again
/// only once usage is back at low_percent or below (and PSI below its
/// threshold): watermarks with hysteresis, so a usage that hovers at one
/// line does not flap. With nothing readable a poll changes nothing and says
/// so (WatchResult::facts is nullopt).
///
/// Call poll() from a timer of your own, or let start(interval) call it on a
/// thread of the watch's. poll() is thread-safe (polls are serialized) and
/// never throws; it is not on the admission path. The pool must outlive the
/// watch. A budget of 0 (a reserve at least the limit) is set as 1 byte, the
/// pool's smallest: nothing that needs a byte fits.
class MemoryWatch {
 public:
  /// Throws std::invalid_argument naming the field (without exceptions:
  /// aborts) unless validation_error(config) is nullopt.
  template <MemoryPolicy Policy>
  MemoryWatch(SlotPool<Policy>& pool, WatchConfig config)
      : pool_{&pool, &set_budget_of<Policy>, &set_pressure_of<Policy>, &budget_of<Policy>,
              &under_pressure_of<Policy>},
        config_{validated(std::move(config))} {}

  MemoryWatch(const MemoryWatch&) = delete;
  MemoryWatch& operator=(const MemoryWatch&) = delete;
  /// Stops start()'s thread, if any.
  ~MemoryWatch() { stop(); }

  /// Reads the facts once and applies them (see the class comment).
  WatchResult poll() noexcept {
    const std::scoped_lock lock{poll_mutex_};
    WatchResult result;
    result.facts = read_memory_facts(config_.root);
    if (config_.psi_some_avg10 > 0) result.psi_some_avg10 = read_memory_pressure(config_.root);
    if (result.facts) {
      const MemoryFacts& facts = *result.facts;
      const std::uint64_t budget = std::max<std::uint64_t>(budget_for(facts, config_.rule), 1);
      if (budget != pool_.budget(pool_.pool)) {
        pool_.set_budget(pool_.pool, budget);
        result.budget_changed = true;
      }
      const bool stalling =
          result.psi_some_avg10 && *result.psi_some_avg10 >= config_.psi_some_avg10;
      const bool high = stalling || facts.usage_bytes >=
                                        detail::percent_of(facts.limit_bytes, config_.high_percent);
      const bool low = !stalling && facts.usage_bytes <=
                                        detail::percent_of(facts.limit_bytes, config_.low_percent);
      if (const bool on = pressure_ ? !low : high; on != pressure_) {
        pressure_ = on;
        pool_.set_pressure(pool_.pool, on);
        result.pressure_changed = true;
      }
    }
    result.budget = pool_.budget(pool_.pool);
    result.pressure = pool_.under_pressure(pool_.pool);
    return result;
  }

  /// Calls poll() every `interval` on a thread of the watch's until stop() or
  /// the destructor; a second call only changes the interval. Throws
  /// std::invalid_argument if `interval` is not positive, std::system_error
  /// if the thread cannot start.
  void start(std::chrono::milliseconds interval) {
    if (interval <= std::chrono::milliseconds::zero()) {
      detail::fail_invalid_argument("admit::MemoryWatch::start: interval must be positive, got " +
                                    std::to_string(interval.count()) + "ms");
    }
    const std::scoped_lock lock{thread_mutex_};
    interval_ = interval;
    stopping_ = false;
    if (!thread_.joinable()) thread_ = std::thread{[this] { run(); }};
    wakeup_.notify_one();
  }

  /// Stops start()'s thread and waits for it; does nothing if none runs.
  void stop() noexcept {
    {
      const std::scoped_lock lock{thread_mutex_};
      stopping_ = true;
    }
    wakeup_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  [[nodiscard]] const WatchConfig& config() const noexcept { return config_; }

 private:
  // The pool, whatever its policy: a watch is one type for every pool.
  struct PoolAccess {
    void* pool;
    void (*set_budget)(void*, std::uint64_t);
    void (*set_pressure)(void*, bool) noexcept;
    std::uint64_t (*budget)(void*) noexcept;
    bool (*under_pressure)(void*) noexcept;
  };
  template <class Policy>
  static void set_budget_of(void* pool, std::uint64_t bytes) {
    static_cast<SlotPool<Policy>*>(pool)->set_memory_budget(bytes);
  }
  template <class Policy>
  static void set_pressure_of(void* pool, bool on) noexcept {
    static_cast<SlotPool<Policy>*>(pool)->set_pressure(on);
  }
  template <class Policy>
  static std::uint64_t budget_of(void* pool) noexcept {
    return static_cast<SlotPool<Policy>*>(pool)->memory_budget();
  }
  template <class Policy>
  static bool under_pressure_of(void* pool) noexcept {
    return static_cast<SlotPool<Policy>*>(pool)->under_pressure();
  }

  static WatchConfig validated(WatchConfig config) {
    if (auto error = validation_error(config)) detail::fail_invalid_argument(*error);
    return config;
  }

  void run() noexcept {
    std::unique_lock lock{thread_mutex_};
    while (!stopping_) {
      lock.unlock();
      static_cast<void>(poll());
      lock.lock();
      wakeup_.wait_for(lock, interval_, [this] { return stopping_; });
    }
  }

  PoolAccess pool_;
  const WatchConfig config_;
  std::mutex poll_mutex_;
  bool pressure_ = false;  // what this watch last set; guarded by poll_mutex_
  std::mutex thread_mutex_;
  std::condition_variable wakeup_;
  std::chrono::milliseconds interval_{0};  // guarded by thread_mutex_
  bool stopping_ = false;                  // guarded by thread_mutex_
  std::thread thread_;
};

}  // namespace admit

// How the facts are read (the cgroup hierarchies, /proc/meminfo, PSI), and
// the definitions of read_memory_facts and read_memory_pressure.
#include "detail/memory_facts.hpp"  // IWYU pragma: export

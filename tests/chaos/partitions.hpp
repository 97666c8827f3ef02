// tests/chaos/partitions.hpp - the partitions of a chaos run with partitions
// on: which there are (a few from the start, more added by the controller
// while the pool runs), how a worker asks in one of them or in none, our
// books of what each admitted and of bypasses, and the checks of a
// partition's refusals, its snapshots and its figures at the end.
#pragma once

#include <admit/admit.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "checks.hpp"
#include "load.hpp"

namespace admit_chaos {

struct PartitionSpec {
  const char* name;
  admit::PartitionConfig config;
};

// Different ceilings (some a few slots and a small part of the smallest
// budgets, one the whole pool), guarantees adding up to 65 % when all are
// there. The first initial_partitions exist from the start; the controller
// adds the others one by one while the pool runs.
inline constexpr std::array<PartitionSpec, 6> partition_specs{{
    {"batch", {.guarantee_percent = 10, .ceiling_percent = 30}},
    {"interactive", {.guarantee_percent = 30, .ceiling_percent = 60}},
    {"scavenger", {.guarantee_percent = 0, .ceiling_percent = 100}},
    {"late.small", {.guarantee_percent = 5, .ceiling_percent = 20}},
    {"late_half", {.guarantee_percent = 0, .ceiling_percent = 50}},
    {"late-mid", {.guarantee_percent = 20, .ceiling_percent = 40}},
}};
inline constexpr std::size_t initial_partitions = 3;

/// What the pool computes (partition_table.hpp): percent of `whole`, rounded
/// down, at least 1. Recomputed here so a wrong ceiling is a violation.
inline std::uint64_t share(std::uint64_t whole, std::uint32_t percent) {
  const std::uint64_t s = whole * percent / 100;
  return s == 0 && percent > 0 && whole > 0 ? 1 : s;
}

/// The partitions of a run and our books of them. Only the constructor and
/// the controller add (one writer); workers read the handles published by
/// `count`.
class Partitions {
 public:
  static constexpr int none = -1;

  Partitions(Pool& pool, bool on) : pool_{pool}, on_{on} {
    if (!on_) return;
    for (std::size_t i = 0; i < initial_partitions; ++i) static_cast<void>(add());
  }

  [[nodiscard]] bool on() const { return on_; }
  [[nodiscard]] std::size_t count() const { return count_.load(std::memory_order_acquire); }

  /// Adds the next partition; false when all are there. The controller's.
  bool add() {
    const std::size_t i = count_.load(std::memory_order_relaxed);
    if (!on_ || i == partition_specs.size()) return false;
    try {
      const admit::Partition p =
          pool_.add_partition(partition_specs[i].name, partition_specs[i].config);
      if (p.index() != i) violation("partition %zu added with index %u", i, p.index());
      handles_[i] = p;
    } catch (const std::exception& e) {
      violation("add_partition(%s) threw: %s", partition_specs[i].name, e.what());
      return false;
    }
    // release: a worker that reads the count sees the handle written above.
    count_.store(i + 1, std::memory_order_release);
    return true;
  }

  /// A random partition present now, or none (as likely as each of them).
  template <class Rng>
  int pick(Rng& rng) const {
    if (!on_) return none;
    const std::size_t n = count();
    const std::size_t r = static_cast<std::size_t>(rng() % (n + 1));
    return r == n ? none : static_cast<int>(r);
  }

  [[nodiscard]] admit::Partition handle(int i) const {
    return *handles_[static_cast<std::size_t>(i)];
  }

  admit::Admission try_acquire(std::uint64_t size, int part) {
    return part == none ? pool_.try_acquire(size) : pool_.try_acquire(size, handle(part));
  }
  admit::Admission acquire(std::uint64_t size, Clock::time_point deadline, int part) {
    return part == none ? pool_.acquire(size, deadline)
                        : pool_.acquire(size, deadline, handle(part));
  }
  admit::Admission acquire_for(std::uint64_t size, std::chrono::microseconds timeout, int part) {
    return part == none ? pool_.acquire_for(size, timeout)
                        : pool_.acquire_for(size, timeout, handle(part));
  }
  template <class Handler>
  admit::Ticket async_acquire(std::uint64_t size, int part, Handler&& h) {
    return part == none ? pool_.async_acquire(size, std::forward<Handler>(h))
                        : pool_.async_acquire(size, handle(part), std::forward<Handler>(h));
  }
  template <class Handler>
  admit::Ticket async_acquire(std::uint64_t size, Clock::time_point deadline, int part,
                              Handler&& h) {
    return part == none
               ? pool_.async_acquire(size, deadline, std::forward<Handler>(h))
               : pool_.async_acquire(size, deadline, handle(part), std::forward<Handler>(h));
  }
  template <class Handler>
  admit::Ticket async_acquire_for(std::uint64_t size, std::chrono::microseconds timeout, int part,
                                  Handler&& h) {
    return part == none
               ? pool_.async_acquire_for(size, timeout, std::forward<Handler>(h))
               : pool_.async_acquire_for(size, timeout, handle(part), std::forward<Handler>(h));
  }

  void admitted_in(int part) {
    if (part != none)
      admitted_[static_cast<std::size_t>(part)].fetch_add(1, std::memory_order_relaxed);
  }

  /// A refusal of a request (or grow, `part` unknown: none) that names
  /// Limit::partition: its figures must be a partition's, and the reason
  /// must follow from them. Every figure comes from one moment under the
  /// pool's lock, so these hold exactly, whatever races.
  void check_refusal(const admit::Rejection& e, int part, bool grow, const char* how) {
    refused_by_partition.fetch_add(1, std::memory_order_relaxed);
    if (!on_) {
      violation("%s refused by a partition's limit in a pool without partitions", how);
      return;
    }
    if (!grow && part == none) violation("%s in no partition refused by a partition's limit", how);
    // Which ceilings could it be: the asked partition's, or any (a grow's).
    bool known = false;
    const std::size_t n = count();
    for (std::size_t i = 0; i < n; ++i) {
      if (!grow && static_cast<int>(i) != part) continue;
      const std::uint32_t pc = partition_specs[i].config.ceiling_percent;
      bool budget_ok = false;
      for (const std::uint64_t b : budgets)
        budget_ok = budget_ok || share(b, pc) == e.memory_budget;
      known = known || (budget_ok && e.slots == share(slot_count, pc));
    }
    if (!known || e.available_bytes > e.memory_budget || e.slots_in_use > e.slots) {
      violation(
          "%s refused (%s) by a partition with impossible figures: %u/%u slots, %llu of a "
          "ceiling of %llu free",
          how, std::string{to_string(e.reason)}.c_str(), e.slots_in_use, e.slots,
          ull(e.available_bytes), ull(e.memory_budget));
    }
    switch (e.reason) {
      case Reason::too_large:
        // A grow's needed_bytes is the extra only: Worker::grow checks its whole.
        if (!grow && e.needed_bytes <= e.memory_budget) {
          violation("%s of %llu bytes refused too_large by a partition ceiling of %llu", how,
                    ull(e.needed_bytes), ull(e.memory_budget));
        }
        break;
      case Reason::no_slot:
        if (e.slots_in_use < e.slots) {
          violation("%s refused no_slot by a partition with %u of %u slots in use", how,
                    e.slots_in_use, e.slots);
        }
        break;
      case Reason::no_memory:
        // available_bytes is 0, not negative, when a cut left the partition
        // above its ceiling: then even 0 bytes do not fit.
        if (e.needed_bytes <= e.available_bytes && e.available_bytes != 0) {
          violation("%s of %llu bytes refused no_memory by a partition with %llu free", how,
                    ull(e.needed_bytes), ull(e.available_bytes));
        }
        break;
      default:
        break;  // a partition's waiter that times out etc. is not ours to judge further
    }
  }

  /// Every partition in one snapshot (exact: under the pool's lock), then
  /// the largest budget, which only grows and is raised before a budget is
  /// set: read after the snapshot, it bounds what the snapshot saw.
  void observe(const std::atomic<std::uint64_t>& largest) const {
    if (!on_) return;
    const std::vector<admit::PartitionStats> all = pool_.partition_stats();
    const std::uint64_t largest_budget = largest.load();
    if (all.size() > partition_specs.size()) violation("%zu partitions", all.size());
    std::uint64_t bytes = 0;
    for (std::size_t i = 0; i < all.size() && i < partition_specs.size(); ++i) {
      const admit::PartitionStats& s = all[i];
      const std::uint32_t pc = partition_specs[i].config.ceiling_percent;
      bytes += s.bytes_in_use;
      if (s.name != partition_specs[i].name || s.ceiling_slots != share(slot_count, pc) ||
          s.slots_in_use > s.ceiling_slots) {
        violation("partition %zu (%s): %u slots in use of a ceiling of %u (expected %llu)", i,
                  s.name.c_str(), s.slots_in_use, s.ceiling_slots, ull(share(slot_count, pc)));
      }
      // A cut may leave a partition above its new ceiling; never above the
      // ceiling at the largest budget ever set.
      if (s.bytes_in_use > share(largest_budget, pc) || s.waiters > max_waiters) {
        violation(
            "partition %s: %llu bytes in use (ceiling at the largest budget %llu), %llu waiters",
            s.name.c_str(), ull(s.bytes_in_use), ull(share(largest_budget, pc)), ull(s.waiters));
      }
    }
    // Not checked: their sum against the budget. A give-back returns the
    // pool's bytes before the partition's books (seen: 87 MB summed under an
    // 80 MiB largest budget, barging, seed 1), so the sum may lag behind.
    static_cast<void>(bytes);
  }

  /// At the end: every partition empty, and its admissions ours.
  void check_end(std::uint64_t bypassed_by_pool) const {
    if (bypassed_by_pool != bypassed.load()) {
      violation("stats().bypassed is %llu; we bypassed %llu", ull(bypassed_by_pool),
                ull(bypassed.load()));
    }
    if (!on_) return;
    const std::vector<admit::PartitionStats> all = pool_.partition_stats();
    if (all.size() != count()) violation("%zu partitions; we added %zu", all.size(), count());
    for (std::size_t i = 0; i < all.size() && i < partition_specs.size(); ++i) {
      const admit::PartitionStats& s = all[i];
      if (s.bytes_in_use != 0 || s.slots_in_use != 0 || s.waiters != 0) {
        violation("at the end partition %s holds %llu bytes, %u slots, %llu waiters",
                  s.name.c_str(), ull(s.bytes_in_use), s.slots_in_use, ull(s.waiters));
      }
      if (s.admitted != admitted_[i].load()) {
        violation("partition %s: stats admitted %llu; we were handed %llu", s.name.c_str(),
                  ull(s.admitted), ull(admitted_[i].load()));
      }
      const admit::PartitionStats one = pool_.stats(handle(static_cast<int>(i)));
      if (one.name != s.name || one.admitted != s.admitted) {
        violation("stats(p) and partition_stats() disagree about partition %s", s.name.c_str());
      }
    }
  }

  std::atomic<std::uint64_t> bypassed{0}, refused_by_partition{0};

 private:
  Pool& pool_;
  const bool on_;
  std::atomic<std::size_t> count_{0};
  std::array<std::optional<admit::Partition>, partition_specs.size()> handles_{};
  std::array<std::atomic<std::uint64_t>, partition_specs.size()> admitted_{};
};

}  // namespace admit_chaos

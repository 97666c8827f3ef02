// admit/partition.hpp - named shares of one pool, for tenants.
//
// A pool can be divided into named partitions (SlotPool::add_partition), one
// per tenant, API key or kind of traffic. Each has a guarantee and a ceiling,
// both in percent of the pool's budget and of its slots (so they follow
// set_memory_budget):
//   - ceiling: the most the partition may hold at once. A partition's request
//     is admitted only if it fits both the partition's ceiling and the pool,
//     checked and taken together under the pool's lock, so neither is ever
//     overshot and no race loses capacity. Below the ceiling a partition
//     borrows what the others leave idle.
//   - guarantee: what the partition is owed first. A waiting request that its
//     partition's guarantee still covers (its partition's bytes and slots in
//     use plus this request stay within the guarantee) goes before every
//     waiter that is not covered, and a new one passes those waiters; a
//     waiter held back only by its own partition's ceiling holds up nobody.
// The guarantees together may not exceed 100 %. A refusal says which limit
// refused it (Rejection::limit) with that limit's figures; a request larger
// than its partition's whole ceiling is too_large, the one permanent reason.
//
// Requests without a partition (the plain try_acquire etc.) are limited by
// the pool alone and covered by no guarantee. A pool without partitions keeps
// its lock-free fast path (the partition rides in the reservation's slot
// word: 3 instructions a pair). In a pool with partitions
// every admission and release takes the pool's lock, which is what makes the
// two limits one step (pair/admit_partition in benchmarks/bench_fast_path.cpp
// measures it).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rejection.hpp"
#include "stats.hpp"

namespace admit {

namespace detail {
struct PartitionAccess;
}  // namespace detail

struct PartitionConfig {
  std::uint32_t guarantee_percent = 0;  ///< owed first; 0..ceiling_percent
  std::uint32_t ceiling_percent = 100;  ///< the most it may hold; 1..100
};

/// A partition of a pool, as SlotPool::add_partition or partition(name)
/// returns it: a small value to keep and pass with each request. Only valid
/// with the pool that made it.
class Partition {
 public:
  /// Where it is in SlotPool::partition_stats(), counted from 0.
  [[nodiscard]] constexpr std::uint32_t index() const noexcept { return id_ - 1U; }

  friend constexpr bool operator==(Partition, Partition) = default;

 private:
  friend struct detail::PartitionAccess;
  constexpr explicit Partition(std::uint16_t id) noexcept : id_{id} {}
  std::uint16_t id_;  // 1-based: 0 means "no partition" inside the pool
};

/// A partition's figures, from SlotPool::partition_stats(): exact (taken
/// under the pool's lock), unlike Stats. One instant is not covered: a
/// release gives its bytes and slot back to the pool first (lock-free), then
/// to its partition under the lock, so for that moment the partition still
/// counts them and the partitions' sum may exceed Stats::bytes_in_use. The
/// partition's figure errs on the safe side: a request of that partition is
/// judged as if the release had not happened yet, and the release then
/// hands the room to whoever waits.
struct PartitionStats {
  std::string name;
  PartitionConfig config;
  std::uint64_t guarantee_bytes = 0;  ///< config.guarantee_percent of the budget in force
  std::uint32_t guarantee_slots = 0;
  std::uint64_t ceiling_bytes = 0;  ///< config.ceiling_percent of the budget in force
  std::uint32_t ceiling_slots = 0;
  std::uint64_t bytes_in_use = 0;
  std::uint32_t slots_in_use = 0;
  std::uint64_t waiters = 0;
  std::uint64_t admitted = 0;
  RejectionCounts rejected{};
};

/// How many partitions a pool can have.
inline constexpr std::uint32_t max_partitions = 64;

/// Why add_partition(name, config) would be refused on its own (the sum of
/// guarantees is checked against the pool's other partitions when adding):
/// names are 1..64 characters of [A-Za-z0-9_.-], so that they are safe as
/// metric labels and log words. nullopt when valid.
[[nodiscard]] inline std::optional<std::string> validation_error(std::string_view name,
                                                                 const PartitionConfig& config) {
  if (name.empty() || name.size() > 64) {
    return "admit: a partition name must be 1..64 characters, got '" + std::string{name} + "'";
  }
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) {
      return "admit: a partition name may hold only A-Z a-z 0-9 _ . -, got '" +
             std::string{name} + "'";
    }
  }
  if (config.ceiling_percent == 0 || config.ceiling_percent > 100) {
    return "admit::PartitionConfig::ceiling_percent must be in 1..100, got " +
           std::to_string(config.ceiling_percent) + " (partition '" + std::string{name} + "')";
  }
  if (config.guarantee_percent > config.ceiling_percent) {
    return "admit::PartitionConfig::guarantee_percent must be in 0..ceiling_percent (" +
           std::to_string(config.ceiling_percent) + "), got " +
           std::to_string(config.guarantee_percent) + " (partition '" + std::string{name} + "')";
  }
  return std::nullopt;
}

namespace detail {
/// For the pool only: makes and reads Partition values.
struct PartitionAccess {
  static constexpr Partition make(std::uint16_t id) noexcept { return Partition{id}; }
  static constexpr std::uint16_t id(Partition p) noexcept { return p.id_; }
};
}  // namespace detail

}  // namespace admit

// admit/detail/partition_table.hpp - a pool's partitions and who holds what.
//
// Created by the first SlotPool::add_partition and never freed before the
// pool. Everything here is guarded by PoolCore's mutex, except the refusal
// counters, which refusals outside the lock also count (relaxed: statistics).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "../partition.hpp"
#include "../rejection.hpp"
#include "../stats.hpp"

namespace admit::detail {

struct PartitionState {
  std::string name;
  PartitionConfig config;
  std::uint64_t bytes = 0;  // held by its reservations
  std::uint32_t slots = 0;
  std::uint64_t waiters = 0;
  std::uint64_t admitted = 0;
  std::array<std::atomic<std::uint64_t>, reason_count> rejected{};

  /// percent of `whole`, rounded down, but at least 1 when percent > 0, so
  /// that a small share of a few slots is still a slot.
  template <class T>
  static T share_of(T whole, std::uint32_t percent) noexcept {
    // whole <= 2^43 and percent <= 100: no overflow.
    const T share = static_cast<T>(static_cast<std::uint64_t>(whole) * percent / 100);
    return share == 0 && percent > 0 && whole > 0 ? T{1} : share;
  }

  std::uint64_t ceiling_bytes(std::uint64_t budget) const noexcept {
    return share_of(budget, config.ceiling_percent);
  }
  std::uint32_t ceiling_slots(std::uint32_t slots_total) const noexcept {
    return share_of(slots_total, config.ceiling_percent);
  }
  std::uint64_t guarantee_bytes(std::uint64_t budget) const noexcept {
    return share_of(budget, config.guarantee_percent);
  }
  std::uint32_t guarantee_slots(std::uint32_t slots_total) const noexcept {
    return share_of(slots_total, config.guarantee_percent);
  }

  /// Whether taking one slot and `needed` more bytes stays within the ceiling.
  bool fits_ceiling(std::uint64_t needed, std::uint64_t budget,
                    std::uint32_t slots_total) const noexcept {
    const std::uint64_t ceiling = ceiling_bytes(budget);
    return slots < ceiling_slots(slots_total) && bytes <= ceiling && needed <= ceiling - bytes;
  }

  /// Whether the guarantee still covers one slot and `needed` more bytes.
  bool covered(std::uint64_t needed, std::uint64_t budget,
               std::uint32_t slots_total) const noexcept {
    const std::uint64_t guarantee = guarantee_bytes(budget);
    return slots < guarantee_slots(slots_total) && bytes <= guarantee &&
           needed <= guarantee - bytes;
  }

  void count_refusal(Reason reason) noexcept {
    // relaxed: a statistic.
    rejected[static_cast<std::size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
  }

  RejectionCounts refusals() const noexcept {
    const auto get = [this](Reason r) {
      return rejected[static_cast<std::size_t>(r)].load(std::memory_order_relaxed);
    };
    return RejectionCounts{get(Reason::too_large), get(Reason::no_slot),  get(Reason::no_memory),
                           get(Reason::queue_full), get(Reason::timeout), get(Reason::cancelled),
                           get(Reason::closed),    get(Reason::pressure)};
  }
};

class PartitionTable {
 public:
  [[nodiscard]] std::uint32_t size() const noexcept { return count_; }

  /// The partition of id `id` (1-based).
  PartitionState& at(std::uint16_t id) noexcept { return *entries_[id - 1U]; }
  const PartitionState& at(std::uint16_t id) const noexcept { return *entries_[id - 1U]; }

  /// The id of the partition named `name`, or 0.
  std::uint16_t find(std::string_view name) const noexcept {
    for (std::uint32_t i = 0; i < count_; ++i) {
      if (entries_[i]->name == name) return static_cast<std::uint16_t>(i + 1);
    }
    return 0;
  }

  std::uint32_t guarantee_total() const noexcept {
    std::uint32_t total = 0;
    for (std::uint32_t i = 0; i < count_; ++i) total += entries_[i]->config.guarantee_percent;
    return total;
  }

  /// Appends a partition (the caller checked the name, the config and room).
  std::uint16_t add(std::string_view name, const PartitionConfig& config) {
    auto entry = std::make_unique<PartitionState>();
    entry->name = name;
    entry->config = config;
    entries_[count_] = std::move(entry);
    return static_cast<std::uint16_t>(++count_);
  }

 private:
  std::array<std::unique_ptr<PartitionState>, max_partitions> entries_{};
  std::uint32_t count_ = 0;
};

}  // namespace admit::detail

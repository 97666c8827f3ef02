// admit/detail/pool_core_partitions.hpp - PoolCore's partitions (partition.hpp).
// Included at the end of pool_core.hpp.
//
// Once a pool has a partition it keeps the attention bit set, so every
// admission, grow and release reaches the slow path, and a partition's
// request is decided whole under mutex_: its ceiling is checked against its
// figures (which only change under mutex_) and the pool's word is taken by the
// same CAS as always, so neither limit is ever overshot, and nothing has to
// be rolled back. A release gives back to the pool's word first (lock-free)
// and then to its partition under mutex_, before release() returns.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pool_core.hpp"

namespace admit::detail {

inline std::uint16_t PoolCore::add_partition(std::string_view name, const PartitionConfig& config) {
  if (auto error = validation_error(name, config)) fail_invalid_argument(*error);
  const std::scoped_lock lock{mutex_};
  if (partitions_ == nullptr) partitions_ = std::make_unique<PartitionTable>();
  const std::string quoted = "'" + std::string{name} + "'";
  if (partitions_->find(name) != 0) {
    fail_invalid_argument("admit: a partition named " + quoted + " exists already");
  }
  if (partitions_->size() >= max_partitions) {
    fail_invalid_argument("admit: a pool has at most " + std::to_string(max_partitions) +
                          " partitions; cannot add " + quoted);
  }
  if (const std::uint32_t total = partitions_->guarantee_total() + config.guarantee_percent;
      total > 100) {
    fail_invalid_argument("admit: the partitions' guarantee_percent would add up to " +
                          std::to_string(total) + ", more than 100 (adding " + quoted + ")");
  }
  const std::uint16_t id = partitions_->add(name, config);
  // relaxed: published by the release RMW in update_attention_locked.
  partitioned_.store(true, std::memory_order_relaxed);
  set_blocked_locked();
  update_attention_locked();
  return id;
}

inline std::uint16_t PoolCore::find_partition(std::string_view name) const noexcept {
  const std::scoped_lock lock{mutex_};
  return partitions_ != nullptr ? partitions_->find(name) : std::uint16_t{0};
}

inline PartitionStats PoolCore::partition_stats(std::uint16_t id) const {
  const std::scoped_lock lock{mutex_};
  const PartitionState& p = partitions_->at(id);
  const std::uint64_t budget = budget_.load(std::memory_order_relaxed);
  PartitionStats s;
  s.name = p.name;
  s.config = p.config;
  s.guarantee_bytes = p.guarantee_bytes(budget);
  s.guarantee_slots = p.guarantee_slots(slots_);
  s.ceiling_bytes = p.ceiling_bytes(budget);
  s.ceiling_slots = p.ceiling_slots(slots_);
  s.bytes_in_use = p.bytes;
  s.slots_in_use = p.slots;
  s.waiters = p.waiters;
  s.admitted = p.admitted;
  s.rejected = p.refusals();
  return s;
}

inline std::vector<PartitionStats> PoolCore::partition_stats() const {
  std::uint32_t count = 0;
  {
    const std::scoped_lock lock{mutex_};
    count = partitions_ != nullptr ? partitions_->size() : 0;
  }
  std::vector<PartitionStats> all;
  all.reserve(count);
  for (std::uint32_t i = 1; i <= count; ++i) {
    all.push_back(partition_stats(static_cast<std::uint16_t>(i)));
  }
  return all;
}

ADMIT_COLD inline PoolCore::Attempt PoolCore::blocked_attempt(Blocked blocked,
                                                             std::uint64_t needed,
                                                             std::uint64_t word,
                                                             std::uint64_t budget) noexcept {
  if (blocked == Blocked::partitioned) {
    const std::scoped_lock lock{mutex_};
    return decide_partitioned_locked(0, needed, 0).attempt;  // no partition: the pool's figures
  }
  const Reason why = blocked == Blocked::closed ? Reason::closed
                     : needed > budget          ? Reason::too_large
                                                : Reason::pressure;
  return {false, why, {}, word, budget};
}

ADMIT_COLD inline CoreAdmission PoolCore::try_acquire_partitioned(std::uint64_t declared_size,
                                                                  std::uint64_t needed,
                                                                  std::uint16_t partition) noexcept {
  CoreAdmission a;
  {
    const std::scoped_lock lock{mutex_};
    a = admission_of(decide_partitioned_locked(declared_size, needed, partition), declared_size,
                     needed);
  }
  return a.admitted ? a : counted(a, partition);
}

inline PoolCore::Decision PoolCore::decide_partitioned_locked(std::uint64_t declared_size,
                                                              std::uint64_t needed,
                                                              std::uint16_t partition) noexcept {
  // relaxed: the budget is a setting, changed only under mutex_ (held).
  const std::uint64_t budget = budget_.load(std::memory_order_relaxed);
  // relaxed: the figures of a refusal; the CAS in attempt() decides.
  std::uint64_t word = state_.load(std::memory_order_relaxed);
  const auto by_pool = [&](Reason why) { return Decision{{false, why, {}, word, budget}, {}}; };
  const auto by_partition = [&](Reason why, const PartitionState& p) {
    return Decision{{false, why, {}, word, budget},
                    partition_rejection(why, declared_size, needed, p, budget)};
  };
  const Blocked blocked = blocked_.load(std::memory_order_relaxed);  // exact under mutex_
  if (blocked == Blocked::closed) return by_pool(Reason::closed);
  if (needed > budget) return by_pool(Reason::too_large);
  PartitionState* const p = partition != 0 ? &partitions_->at(partition) : nullptr;
  if (p != nullptr && needed > p->ceiling_bytes(budget)) return by_partition(Reason::too_large, *p);
  if (blocked == Blocked::pressure) return by_pool(Reason::pressure);
  if (p != nullptr && !p->fits_ceiling(needed, budget, slots_)) {
    return by_partition(p->slots >= p->ceiling_slots(slots_) ? Reason::no_slot : Reason::no_memory,
                        *p);
  }
  const Turn turn = turn_locked(needed, p != nullptr && p->covered(needed, budget, slots_));
  if (turn == Turn::wait) {
    // What is free is owed to the waiters ahead.
    word = state_.load(std::memory_order_relaxed);
    return by_pool(packed::slots(word) >= slots_ ? Reason::no_slot : Reason::no_memory);
  }
  Attempt a = attempt</*ForQueue=*/true>(needed);
  if (!a.admitted) return {a, {}};
  if (turn == Turn::pass) passed_locked(needed);
  charge_locked(partition, needed);
  refresh_head_locked();
  a.claim.partition = partition;
  return {a, {}};
}

ADMIT_COLD inline std::optional<Rejection> PoolCore::grow_partitioned(std::uint64_t held,
                                                           std::uint64_t declared_size,
                                                           std::uint64_t extra,
                                                           std::uint16_t partition) noexcept {
  const std::scoped_lock lock{mutex_};
  const std::uint64_t budget = budget_.load(std::memory_order_relaxed);
  std::uint64_t word = state_.load(std::memory_order_relaxed);
  if (pressure_.load(std::memory_order_relaxed)) {
    return rejection(Reason::pressure, declared_size, extra, word, budget);
  }
  PartitionState* const p = partition != 0 ? &partitions_->at(partition) : nullptr;
  bool covered = false;
  if (p != nullptr) {
    const std::uint64_t ceiling = p->ceiling_bytes(budget);
    if (held > ceiling || extra > ceiling - held) {
      return partition_rejection(Reason::too_large, declared_size, extra, *p, budget);
    }
    if (p->bytes > ceiling || extra > ceiling - p->bytes) {
      return partition_rejection(Reason::no_memory, declared_size, extra, *p, budget);
    }
    const std::uint64_t guarantee = p->guarantee_bytes(budget);
    covered = p->bytes <= guarantee && extra <= guarantee - p->bytes;
  }
  const Turn turn = turn_locked(extra, covered);
  if (turn == Turn::wait) return rejection(Reason::no_memory, declared_size, extra, word, budget);
  do {
    if (extra > available(word, budget)) {
      return rejection(Reason::no_memory, declared_size, extra, word, budget);
    }
    // acquire/relaxed: as in attempt().
  } while (!state_.compare_exchange_weak(word, word + extra, std::memory_order_acquire,
                                         std::memory_order_relaxed));
  note_peaks(word + extra);
  if (turn == Turn::pass) passed_locked(extra);
  if (p != nullptr) p->bytes += extra;
  refresh_head_locked();
  return std::nullopt;
}

inline PoolCore::Turn PoolCore::turn_locked(std::uint64_t needed, bool covered) noexcept {
  if (queue_.empty() || !fifo_) return Turn::go;
  bool in_line = false;  // someone waits whom only the pool holds back
  for (const Waiter* w = queue_.front(); w != nullptr; w = w->next) {
    if (covered_locked(*w)) return Turn::wait;  // owed first, to everyone new
    in_line = in_line || !held_by_ceiling_locked(*w);
  }
  if (covered || !in_line) return Turn::go;
  if (lanes_ && may_pass_locked(needed) == Pass::open) return Turn::pass;
  return Turn::wait;
}

inline bool PoolCore::held_by_ceiling_locked(const Waiter& w) const noexcept {
  return w.partition != 0 &&
         !partitions_->at(w.partition)
              .fits_ceiling(w.needed, budget_.load(std::memory_order_relaxed), slots_);
}

inline bool PoolCore::covered_locked(const Waiter& w) const noexcept {
  return w.partition != 0 &&
         partitions_->at(w.partition)
             .covered(w.needed, budget_.load(std::memory_order_relaxed), slots_);
}

inline void PoolCore::charge_locked(std::uint16_t partition, std::uint64_t needed) noexcept {
  if (partition == 0) return;
  PartitionState& p = partitions_->at(partition);
  p.bytes += needed;
  ++p.slots;
  ++p.admitted;
}

inline bool PoolCore::dispatch_covered_locked(ReadyList& ready) noexcept {
  for (Waiter* w = queue_.front(); w != nullptr;) {
    Waiter* const next = w->next;
    if (covered_locked(*w)) {
      if (const Attempt a = attempt</*ForQueue=*/true>(w->needed); a.admitted) {
        grant_locked(*w, a.claim, ready);
      } else if (fifo_) {
        return false;  // what frees is owed to it first
      }
    }
    w = next;
  }
  return true;
}

inline Rejection PoolCore::partition_rejection(Reason reason, std::uint64_t declared_size,
                                               std::uint64_t needed, const PartitionState& p,
                                               std::uint64_t budget) const noexcept {
  const std::uint64_t ceiling = p.ceiling_bytes(budget);
  return Rejection{reason,
                   declared_size,
                   needed,
                   p.bytes < ceiling ? ceiling - p.bytes : 0,
                   ceiling,
                   p.slots,
                   p.ceiling_slots(slots_),
                   Limit::partition};
}

inline const Waiter* PoolCore::lanes_head_locked() const noexcept {
  if (partitions_ == nullptr) return queue_.front();
  for (const Waiter* w = queue_.front(); w != nullptr; w = w->next) {
    if (!held_by_ceiling_locked(*w)) return w;
  }
  return nullptr;
}

inline void PoolCore::refresh_head_locked() noexcept {
  if (!lanes_) return;
  const Waiter* const head = lanes_head_locked();
  if (head == head_) return;
  head_ = head;
  head_since_ = lanes_now();
  passed_bytes_ = 0;
}

}  // namespace admit::detail

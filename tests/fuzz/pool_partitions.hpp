// pool_partitions.hpp - the partitions of a pool_ops run (partition.hpp):
// adding them (valid or not), choosing one for a request, bypass(), and
// checking every partition's figures against the model's. Included at the
// end of pool_run.hpp, which declares these members of Run.
#pragma once

#include <admit/partition.hpp>
#include <admit/pool.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "fuzz_check.hpp"
#include "pool_model.hpp"
#include "pool_run.hpp"

namespace pool_fuzz {

/// The partition a request names: 0 (none) or one of those added so far.
/// One byte in a partition run, none in the others.
inline std::uint16_t Run::which_partition() {
  if (!partitions_on_) return 0;
  return static_cast<std::uint16_t>(in_.byte() % (model_.partitions.size() + 1));
}

/// A valid config whose guarantee fits what the others left of 100 %:
/// a ceiling (often 100 %, else 1..100), then a guarantee (often 0, else up
/// to the ceiling and the room left).
inline admit::PartitionConfig Run::partition_config() {
  admit::PartitionConfig c;
  c.ceiling_percent = in_.byte() % 4 == 0 ? 100 : static_cast<std::uint32_t>(in_.in_range(1, 100));
  std::uint32_t room = 100;
  for (const ModelPartition& p : model_.partitions) room -= p.config.guarantee_percent;
  c.guarantee_percent =
      in_.byte() % 3 == 0
          ? 0
          : static_cast<std::uint32_t>(in_.in_range(0, std::min(room, c.ceiling_percent)));
  return c;
}

/// Adds a partition the model expects the pool to accept; past
/// max_partitions the pool must refuse it.
inline void Run::add_partition(const admit::PartitionConfig& config) {
  const std::string name = "t" + std::to_string(model_.partitions.size());
  if (model_.partitions.size() >= admit::max_partitions) {
    bool refused = false;
    try {
      static_cast<void>(pool_.add_partition(name, config));
    } catch (const std::invalid_argument&) {
      refused = true;
    }
    ADMIT_FUZZ_CHECK(refused, "add_partition accepted one more than max_partitions");
    return;
  }
  const admit::Partition p = pool_.add_partition(name, config);
  ADMIT_FUZZ_CHECK(p.index() == model_.partitions.size(), "add_partition's index()");
  handles_.push_back(p);
  model_.partitions.push_back({name, config});
}

/// A partition added mid-run, while reservations are held and requests
/// wait; or one the pool must refuse (a taken name, a ceiling of 0, a
/// guarantee over the ceiling or past 100 % in all), changing nothing.
inline void Run::add_partition_op() {
  const unsigned kind = in_.byte() % 8;
  if (kind >= 4) return add_partition(partition_config());
  std::string name = "t" + std::to_string(model_.partitions.size());
  admit::PartitionConfig c{0, 100};
  switch (kind) {
    case 0:
      if (!model_.partitions.empty()) {
        name = model_.partitions[in_.byte() % model_.partitions.size()].name;
      } else {
        name = "no/slash";
      }
      break;
    case 1:
      c.ceiling_percent = in_.flag() ? 0 : static_cast<std::uint32_t>(in_.in_range(101, 300));
      break;
    case 2:
      c.ceiling_percent = static_cast<std::uint32_t>(in_.in_range(1, 99));
      c.guarantee_percent = c.ceiling_percent + static_cast<std::uint32_t>(in_.in_range(1, 20));
      break;
    default: {
      std::uint32_t room = 100;
      for (const ModelPartition& p : model_.partitions) room -= p.config.guarantee_percent;
      if (room == 100) return;  // no guarantee can exceed it: nothing to refuse
      c.guarantee_percent = room + 1;
      break;
    }
  }
  ADMIT_FUZZ_CHECK(
      admit::validation_error(name, c).has_value() == (kind == 0 ? name == "no/slash" : kind != 3),
      "validation_error() disagrees about a partition the fuzzer made invalid");
  bool refused = false;
  try {
    static_cast<void>(pool_.add_partition(name, c));
  } catch (const std::invalid_argument&) {
    refused = true;
  }
  ADMIT_FUZZ_CHECK(refused, "add_partition accepted an invalid partition");
}

/// bypass(): admitted, with an empty reservation, counted; it takes
/// nothing (check() then sees the pool's figures unchanged).
inline void Run::bypass() {
  const std::size_t i = holder();
  admit::Admission a = pool_.bypass();
  ++model_.stats.bypassed;
  ADMIT_FUZZ_CHECK(a.has_value(), "bypass() refused");
  ADMIT_FUZZ_CHECK(!*a && a->bytes() == 0 && a->declared_size() == 0,
                   "bypass() returned a reservation that holds something");
  hold(i, std::move(*a), {});
}

/// async_acquire in partition p (0: none), with a deadline or without.
template <class Handler>
admit::Ticket Run::async_in(std::uint16_t p, std::uint64_t declared,
                            std::optional<Clock::time_point> deadline, Handler& handler) {
  if (p == 0) {
    return deadline ? pool_.async_acquire(declared, *deadline, handler)
                    : pool_.async_acquire(declared, handler);
  }
  const admit::Partition partition = handles_[p - 1U];
  return deadline ? pool_.async_acquire(declared, *deadline, partition, handler)
                  : pool_.async_acquire(declared, partition, handler);
}

/// Every partition's figures, by stats(p) and partition_stats(), field by
/// field against the model; found by name; and the sums: the partitions
/// hold no more than the pool, none more than its ceiling, the pool no more
/// than its budget (unless a lowered budget left them over it).
inline void Run::check_partitions() {
  const std::vector<admit::PartitionStats> all = pool_.partition_stats();
  ADMIT_FUZZ_CHECK(all.size() == model_.partitions.size(), "partition_stats().size()");
  std::uint64_t bytes = 0;
  std::uint64_t slots = 0;
  std::uint64_t waiters = 0;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const ModelPartition& m = model_.partitions[i];
    const admit::PartitionStats one = pool_.stats(handles_[i]);
    for (const admit::PartitionStats* s : {&one, &all[i]}) {
      ADMIT_FUZZ_CHECK(s->name == m.name, "a partition's name");
      ADMIT_FUZZ_CHECK(s->config.guarantee_percent == m.config.guarantee_percent &&
                           s->config.ceiling_percent == m.config.ceiling_percent,
                       "a partition's config");
      ADMIT_FUZZ_CHECK(s->guarantee_bytes == model_.guarantee_bytes(m),
                       "a partition's guarantee_bytes");
      ADMIT_FUZZ_CHECK(s->guarantee_slots == model_.guarantee_slots(m),
                       "a partition's guarantee_slots");
      ADMIT_FUZZ_CHECK(s->ceiling_bytes == model_.ceiling_bytes(m), "a partition's ceiling_bytes");
      ADMIT_FUZZ_CHECK(s->ceiling_slots == model_.ceiling_slots(m), "a partition's ceiling_slots");
      ADMIT_FUZZ_CHECK(s->bytes_in_use == m.bytes, "a partition's bytes_in_use");
      ADMIT_FUZZ_CHECK(s->slots_in_use == m.slots, "a partition's slots_in_use");
      ADMIT_FUZZ_CHECK(s->waiters == m.waiters, "a partition's waiters");
      ADMIT_FUZZ_CHECK(s->admitted == m.admitted, "a partition's admitted");
      ADMIT_FUZZ_CHECK(s->rejected == m.rejected, "a partition's rejected (some reason's count)");
    }
    const std::optional<admit::Partition> found = pool_.find_partition(m.name);
    ADMIT_FUZZ_CHECK(found && *found == handles_[i], "find_partition(name)");
    if (!budget_lowered_) {
      ADMIT_FUZZ_CHECK(
          one.bytes_in_use <= one.ceiling_bytes && one.slots_in_use <= one.ceiling_slots,
          "a partition holds more than its ceiling");
    }
    bytes += one.bytes_in_use;
    slots += one.slots_in_use;
    waiters += one.waiters;
  }
  const admit::Stats s = pool_.stats();
  ADMIT_FUZZ_CHECK(bytes <= s.bytes_in_use && slots <= s.slots_in_use && waiters <= s.waiters,
                   "the partitions hold (or wait for) more than the pool");
  ADMIT_FUZZ_CHECK(s.slots_in_use <= s.slots, "the pool holds more slots than it has");
  if (!budget_lowered_) {
    ADMIT_FUZZ_CHECK(s.bytes_in_use <= s.memory_budget, "the pool holds more than its budget");
  }
  if (partitions_on_) {
    ADMIT_FUZZ_CHECK(!pool_.find_partition("none"), "find_partition found a partition never added");
  }
}

}  // namespace pool_fuzz

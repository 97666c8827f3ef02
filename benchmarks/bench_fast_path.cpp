// benchmarks/bench_fast_path.cpp - the non-blocking calls of admit's admission
// path, one thread or several, never waiting: try_acquire + release pairs
// (pair/<impl>/<size>, and pair/<impl>/10MiB/threads:N on 2, 4 and 8 threads
// sharing one pool), try_acquire refused for each reason (refuse/<reason>),
// the policies' bytes_for over varied sizes (policy/<policy>, with the bare
// loop as policy/none) and try_grow + shrink on a held reservation
// (grow_shrink/admit/1MiB); pair/admit_partition is the same pair in a
// partition of a partitioned pool (decided under the pool's lock). The pairs run admit's SlotPool<TieredPolicy> next
// to the three baselines of baselines.hpp on the same loop: AtomicBudget (the
// bare atomic floor, "atomic_floor"), MutexSemaphore ("mutex_cv") and
// SlotSemaphore ("counting_semaphore"); benchmarks/report.py divides every
// case here by the atomic floor of the same size and thread count (the
// 1-thread 10 MiB floor for the cases that are not pairs).
#include <admit/admit.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

#include "baselines.hpp"
#include "bench_support.hpp"

namespace {

using admit::GiB;
using admit::MiB;
using admit_bench::Counters;
using admit_bench::large_upload;

// --- try_acquire + release ----------------------------------------------------
//
// One static object per implementation, shared by every thread of a run. It is
// big enough that nothing is ever refused: at most 8 threads each hold one
// reservation of at most 2.36 GiB (the floor reserves the declared size
// itself; admit reserves at most 100 MiB under the default tiers).
constexpr std::uint64_t shared_budget = 1024 * GiB;
constexpr std::uint32_t shared_slots = 64;

admit::SlotPool<>& shared_pool() {
  static admit::SlotPool<> pool{{.memory_budget = shared_budget, .slots = shared_slots}};
  return pool;
}

template <class Baseline>
Baseline& shared_baseline();

template <>
admit_bench::AtomicBudget& shared_baseline() {
  static admit_bench::AtomicBudget floor{shared_budget};
  return floor;
}

template <>
admit_bench::MutexSemaphore& shared_baseline() {
  static admit_bench::MutexSemaphore semaphore{shared_budget, shared_slots};
  return semaphore;
}

template <>
admit_bench::SlotSemaphore& shared_baseline() {
  static admit_bench::SlotSemaphore semaphore{shared_slots};
  return semaphore;
}

void pair_admit(benchmark::State& state, std::uint64_t size) {
  admit::SlotPool<>& pool = shared_pool();
  Counters counters{state};
  for (auto _ : state) {
    admit::Admission admission = pool.try_acquire(size);
    if (!admission) ++counters.refused;
    benchmark::DoNotOptimize(admission);
    // ~Admission releases the reservation: the release half of the pair.
  }
}

// The same pool shape with one partition (partition.hpp): every request in a
// partitioned pool is decided under the pool's lock, this is what that costs.
admit::SlotPool<>& partitioned_pool() {
  static admit::SlotPool<> pool{{.memory_budget = shared_budget, .slots = shared_slots}};
  static const admit::Partition batch = pool.add_partition("batch", {.ceiling_percent = 100});
  static_cast<void>(batch);
  return pool;
}

void pair_admit_partition(benchmark::State& state, std::uint64_t size) {
  admit::SlotPool<>& pool = partitioned_pool();
  const admit::Partition batch = pool.partition("batch");
  Counters counters{state};
  for (auto _ : state) {
    admit::Admission admission = pool.try_acquire(size, batch);
    if (!admission) ++counters.refused;
    benchmark::DoNotOptimize(admission);
  }
}

template <class Baseline>
void pair_baseline(benchmark::State& state, std::uint64_t size) {
  Baseline& baseline = shared_baseline<Baseline>();
  Counters counters{state};
  for (auto _ : state) {
    const bool admitted = baseline.try_acquire(size);
    benchmark::DoNotOptimize(admitted);
    if (admitted) {
      baseline.release(size);
    } else {
      ++counters.refused;
    }
  }
}

// --- Refusals -------------------------------------------------------------------
//
// Each refusal case uses its own pool, prepared so that try_acquire(size) is
// refused for the named reason on every iteration.
void refuse_too_large(benchmark::State& state) {
  // 2.36 GiB reserves 100 MiB under the tiers: more than this whole budget.
  admit::SlotPool<> pool{{.memory_budget = 50 * MiB, .slots = 8}};
  Counters counters{state};
  for (auto _ : state) {
    admit::Admission admission = pool.try_acquire(large_upload);
    if (!admission) ++counters.refused;
    benchmark::DoNotOptimize(admission);
  }
}

void refuse_no_memory(benchmark::State& state) {
  // One 2.36 GiB upload holds the whole 100 MiB budget; 10 MiB needs 2 MiB more.
  admit::SlotPool<> pool{{.memory_budget = 100 * MiB, .slots = 8}};
  const admit::Admission held = pool.try_acquire(large_upload);
  if (!held) state.SkipWithError("could not fill the pool");
  Counters counters{state};
  for (auto _ : state) {
    admit::Admission admission = pool.try_acquire(10 * MiB);
    if (!admission) ++counters.refused;
    benchmark::DoNotOptimize(admission);
  }
}

void refuse_no_slot(benchmark::State& state) {
  admit::SlotPool<> pool{{.memory_budget = 200 * MiB, .slots = 1}};
  const admit::Admission held = pool.try_acquire(10 * MiB);
  if (!held) state.SkipWithError("could not fill the pool");
  Counters counters{state};
  for (auto _ : state) {
    admit::Admission admission = pool.try_acquire(10 * MiB);
    if (!admission) ++counters.refused;
    benchmark::DoNotOptimize(admission);
  }
}

// --- Policy evaluation ----------------------------------------------------------
//
// 4096 sizes from a lognormal around 50 MiB (sigma 2), fixed seed: every tier
// is hit, in an order the branch predictor cannot learn.
constexpr std::size_t size_count = 4096;

const std::array<std::uint64_t, size_count>& varied_sizes() {
  static const std::array<std::uint64_t, size_count> sizes = [] {
    std::array<std::uint64_t, size_count> s{};
    std::mt19937_64 random{42};
    std::lognormal_distribution<double> lognormal{std::log(50.0 * MiB), 2.0};
    for (std::uint64_t& size : s) size = static_cast<std::uint64_t>(lognormal(random));
    return s;
  }();
  return sizes;
}

/// The loop alone: load a size, keep the result. Subtract it from the others.
void policy_none(benchmark::State& state) {
  const auto& sizes = varied_sizes();
  std::size_t i = 0;
  Counters counters{state};
  for (auto _ : state) {
    benchmark::DoNotOptimize(sizes[i++ % size_count]);
  }
}

template <class Policy>
void policy_eval(benchmark::State& state, Policy policy) {
  const auto& sizes = varied_sizes();
  // Escaped: the policy's parameters are not compile-time constants for the
  // loop, as in a pool configured at run time.
  benchmark::DoNotOptimize(policy);
  std::size_t i = 0;
  Counters counters{state};
  for (auto _ : state) {
    benchmark::DoNotOptimize(policy.bytes_for(sizes[i++ % size_count]));
  }
}

// --- try_grow + shrink ------------------------------------------------------------

void grow_shrink_admit(benchmark::State& state, std::uint64_t extra) {
  admit::SlotPool<> pool{{.memory_budget = 200 * MiB, .slots = 8}};
  admit::SlotReservation held = pool.try_acquire(10 * MiB).value();
  Counters counters{state};
  for (auto _ : state) {
    const admit::GrowResult grown = held.try_grow(extra);
    if (!grown) ++counters.refused;
    benchmark::DoNotOptimize(grown);
    benchmark::DoNotOptimize(held.shrink(extra));
  }
}

// --- Registration -----------------------------------------------------------------

std::string size_name(std::uint64_t size) {
  if (size == large_upload) return "2.36GiB";
  return std::to_string(size / MiB) + "MiB";
}

}  // namespace

void admit_bench::register_fast_path() {
  const std::array<std::uint64_t, 3> sizes{10 * MiB, 500 * MiB, large_upload};
  struct Pair {
    const char* name;
    void (*run)(benchmark::State&, std::uint64_t);
    // The size changes the work only where there is a policy (admit); the
    // floor follows it so that each size has its ratio. The other baselines
    // run at 10 MiB only.
    bool by_size;
  };
  const std::array<Pair, 5> pairs{{
      {"admit", pair_admit, true},
      {"admit_partition", pair_admit_partition, false},
      {"atomic_floor", pair_baseline<admit_bench::AtomicBudget>, true},
      {"mutex_cv", pair_baseline<admit_bench::MutexSemaphore>, false},
      {"counting_semaphore", pair_baseline<admit_bench::SlotSemaphore>, false},
  }};
  for (const Pair& pair : pairs) {
    for (const std::uint64_t size : sizes) {
      if (!pair.by_size && size != 10 * MiB) continue;
      add("pair/" + std::string{pair.name} + "/" + size_name(size), pair.run, size);
    }
  }
  for (const int threads : {2, 4, 8}) {
    for (const Pair& pair : pairs) {
      add("pair/" + std::string{pair.name} + "/10MiB", pair.run, 10 * MiB)->Threads(threads);
    }
  }

  add("refuse/too_large", refuse_too_large);
  add("refuse/no_memory", refuse_no_memory);
  add("refuse/no_slot", refuse_no_slot);

  add("policy/none", policy_none);
  add("policy/tiered", policy_eval<admit::TieredPolicy>, admit::TieredPolicy{});
  add("policy/flat10", policy_eval<admit::FlatPolicy>, admit::FlatPolicy{10});
  add("policy/fixed8MiB", policy_eval<admit::FixedPolicy>, admit::FixedPolicy{8 * MiB});

  add("grow_shrink/admit/1MiB", grow_shrink_admit, MiB);
}

// benchmarks/bench_support.hpp - what every translation unit of admit_benchmarks
// shares: the reference sizes, the Counters that report allocs/op and refused/op,
// the registration helpers that add the "min" statistic and wall-clock timing,
// and one register_*() function per file, which admit_bench.cpp's main() calls
// in the order the cases are reported. It measures nothing itself; the baselines
// are in baselines.hpp.
#pragma once

#include <benchmark/benchmark.h>
#include <admit/admit.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../tests/counting_allocator.hpp"

// ADMIT_BENCH_COUNT_ALLOCATIONS is 0 only where the global operator new cannot
// be replaced (Clang's ThreadSanitizer runtime defines it in a static archive
// linked whole; benchmarks/CMakeLists.txt sets it there); then allocs/op is
// not reported.
#ifndef ADMIT_BENCH_COUNT_ALLOCATIONS
#define ADMIT_BENCH_COUNT_ALLOCATIONS 1
#endif

namespace admit_bench {

// Reference sizes, one per default tier: 10 MiB (20 %), 500 MiB (10 %) and
// the 2,530,644,380-byte upload (5 %, capped at 100 MiB).
inline constexpr std::uint64_t large_upload = 2'530'644'380;

/// Reports allocs/op and refused/op for the calling thread's part of a run.
class Counters {
 public:
  explicit Counters(benchmark::State& state) noexcept
      : state_{state}, allocations_at_start_{admit_test::thread_allocations()} {}
  Counters(const Counters&) = delete;
  Counters& operator=(const Counters&) = delete;
  ~Counters() {
    using benchmark::Counter;
    // kAvgIterations: divided by the iterations of all threads, after the
    // per-thread values are summed.
    if (ADMIT_BENCH_COUNT_ALLOCATIONS) {
      state_.counters["allocs/op"] =
          Counter(static_cast<double>(admit_test::thread_allocations() - allocations_at_start_),
                  Counter::kAvgIterations);
    }
    state_.counters["refused/op"] = Counter(static_cast<double>(refused), Counter::kAvgIterations);
  }

  std::uint64_t refused = 0;

 private:
  benchmark::State& state_;
  std::uint64_t allocations_at_start_;
};

/// Registers a case with a "min" statistic next to Google Benchmark's mean /
/// median / stddev / cv: on a shared machine noise only ever adds time, so the
/// fastest repetition is the best estimate of the cost itself, and the median
/// of what a busy machine gives.
template <class... Args>
benchmark::internal::Benchmark* add_with_min(const std::string& name, Args&&... args) {
  return benchmark::RegisterBenchmark(name.c_str(), std::forward<Args>(args)...)
      ->ComputeStatistics("min", [](const std::vector<double>& v) {
        return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
      });
}

/// The same, timed with the wall clock (see admit_bench.cpp's file comment).
template <class... Args>
benchmark::internal::Benchmark* add(const std::string& name, Args&&... args) {
  return add_with_min(name, std::forward<Args>(args)...)->UseRealTime();
}

/// pair/*, refuse/*, policy/*, grow_shrink/* (bench_fast_path.cpp).
void register_fast_path();
/// handoff/* (bench_handoff.cpp).
void register_handoff();

}  // namespace admit_bench

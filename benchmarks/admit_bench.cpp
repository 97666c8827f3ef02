// benchmarks/admit_bench.cpp - Google Benchmark microbenchmarks of admit's
// admission path, against the baselines of baselines.hpp, in one binary so
// that every ratio compares numbers measured in the same run. This file holds
// main() and the registration order, which is the order of the report; the
// cases are in
//   bench_fast_path.cpp    pair/*, refuse/*, policy/*, grow_shrink/*
//   bench_handoff.cpp      handoff/*
//   bench_allocations.cpp  the counting operator new behind allocs/op
//   bench_support.hpp      what they share (Counters, registration helpers)
//
// Cases (names as in the JSON; benchmarks/report.py turns them into a table):
//   pair/<impl>/<size>            try_acquire + release, one thread, for the
//                                 three sizes, one per default tier
//   pair/<impl>/10MiB/threads:N   the same on 2, 4 and 8 threads sharing one
//                                 pool; time per op = wall time / all ops of
//                                 all threads, i.e. the inverse of throughput
//   refuse/<reason>               try_acquire refused with too_large,
//                                 no_memory, no_slot
//   policy/<policy>               bytes_for over 4096 varied sizes
//   grow_shrink/admit             try_grow(1 MiB) + shrink(1 MiB) on a held
//                                 reservation
//   handoff/<impl>                release -> a blocked waiter running, one
//                                 handoff (see bench_handoff.cpp)
// <impl>: admit (SlotPool<TieredPolicy>), atomic_floor, mutex_cv,
// counting_semaphore (baselines.hpp).
//
// Every case reports two counters, averaged per iteration and summed over
// threads: allocs/op (calls to the global operator new, counted per thread by
// bench_allocations.cpp) and refused/op (so that an "admission" case that was
// in fact refusing would be visible: the pools are sized so that they never
// refuse, and the admission cases must show 0 for both).
//
// The cases are timed with real (wall-clock) time, the only measure that
// makes multi-threaded throughput comparable with single-threaded cost (the
// handoff cases with manual time). Each also reports a "min" statistic over
// its repetitions besides Google Benchmark's mean / median / stddev / cv.
// benchmarks/run runs them with --benchmark_enable_random_interleaving.
#include <benchmark/benchmark.h>

#include <string>
#include <thread>

#include "bench_support.hpp"

int main(int argc, char** argv) {
  // glibc locks a mutex without atomic instructions while the process has
  // never started a thread (__libc_single_threaded). A server is never in that
  // state, and the mutex baseline must not look cheaper than it is in one: so
  // start (and join) one thread before anything is measured.
  std::thread{[] {}}.join();
  // The order of registration is the order of the report (report.py sorts by
  // family index): the pairs first, handoff last.
  admit_bench::register_fast_path();
  admit_bench::register_handoff();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("admit_hardware_threads",
                              std::to_string(std::thread::hardware_concurrency()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

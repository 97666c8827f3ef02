// benchmarks/bench_allocations.cpp - allocation counting for admit_benchmarks.
// Measures nothing itself: it is the one translation unit of the program that
// replaces the global operator new/delete with the counting versions of
// tests/counting_allocator.hpp (shared with admit_allocation_tests), so that
// every case's Counters (bench_support.hpp) can report allocs/op, calls to
// operator new per iteration on the benchmark's own threads. Admission,
// refusal and grow/shrink must show 0, like every baseline of baselines.hpp
// (none of which allocates either). Where the operators cannot be replaced
// (Clang's ThreadSanitizer; ADMIT_BENCH_COUNT_ALLOCATIONS=0, set by
// benchmarks/CMakeLists.txt) this unit is empty and allocs/op is not reported.
#include "bench_support.hpp"

#if ADMIT_BENCH_COUNT_ALLOCATIONS
#define ADMIT_COUNTING_ALLOCATOR_DEFINE
#include "../tests/counting_allocator.hpp"
#endif

// benchmarks/callgrind_pair.cpp - N try_acquire + release pairs, for counting
// instructions with valgrind --tool=callgrind.
//
//   admit_callgrind_pair IMPL N [SIZE]
//
// IMPL is admit (SlotPool<TieredPolicy>), admit_tracked (the same with
// PoolConfig::track_reservations on), floor (the bare atomic counter of
// baselines.hpp), mutex_cv or counting_semaphore; SIZE the declared size in
// bytes (default 10 MiB). Runs N pairs on one thread and prints nothing but
// errors. benchmarks/run runs it under callgrind for two values of N and
// divides the difference of the instruction counts by the difference of N, so
// that start-up (the dynamic loader, iostreams, the pool's construction)
// cancels out and what remains is the cost of one pair.
//
// Built with -g (which does not change the code generated) so that
// callgrind_annotate can attribute the inlined instructions to the header
// lines they come from.
#include <admit/admit.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <thread>

#include "baselines.hpp"

namespace {

constexpr std::uint64_t budget = 1024 * admit::GiB;
constexpr std::uint32_t slots = 64;

// noinline: one function per implementation, so that callgrind_annotate
// shows each loop (and the header lines inlined into it) on its own.
[[gnu::noinline]] std::uint64_t run_admit(std::uint64_t n, std::uint64_t size, bool tracked) {
  admit::SlotPool<> pool{{.memory_budget = budget, .slots = slots, .track_reservations = tracked}};
  std::uint64_t refused = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    const admit::Admission admission = pool.try_acquire(size);
    if (!admission) ++refused;
  }
  return refused;
}

template <class Baseline>
[[gnu::noinline]] std::uint64_t run_baseline(Baseline& baseline, std::uint64_t n,
                                             std::uint64_t size) {
  std::uint64_t refused = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    if (baseline.try_acquire(size)) {
      baseline.release(size);
    } else {
      ++refused;
    }
  }
  return refused;
}

std::uint64_t parse(const char* text, const char* what) {
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0') {
    std::fprintf(stderr, "admit_callgrind_pair: %s must be a number, got '%s'\n", what, text);
    std::exit(2);
  }
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(
        stderr,
        "usage: admit_callgrind_pair admit|admit_tracked|floor|mutex_cv|counting_semaphore N "
        "[SIZE]\n");
    return 2;
  }
  const std::string_view impl = argv[1];
  const std::uint64_t n = parse(argv[2], "N");
  const std::uint64_t size = argc == 4 ? parse(argv[3], "SIZE") : 10 * admit::MiB;

  // As in admit_benchmarks: glibc skips the atomic instructions of a mutex
  // while the process has never started a thread; a server always has.
  std::thread{[] {}}.join();

  std::uint64_t refused = 0;
  if (impl == "admit") {
    refused = run_admit(n, size, false);
  } else if (impl == "admit_tracked") {
    refused = run_admit(n, size, true);
  } else if (impl == "floor") {
    admit_bench::AtomicBudget floor{budget};
    refused = run_baseline(floor, n, size);
  } else if (impl == "mutex_cv") {
    admit_bench::MutexSemaphore semaphore{budget, slots};
    refused = run_baseline(semaphore, n, size);
  } else if (impl == "counting_semaphore") {
    admit_bench::SlotSemaphore semaphore{slots};
    refused = run_baseline(semaphore, n, size);
  } else {
    std::fprintf(stderr, "admit_callgrind_pair: unknown IMPL '%s'\n", argv[1]);
    return 2;
  }
  if (refused != 0) {
    std::fprintf(stderr, "admit_callgrind_pair: %llu of %llu refused\n",
                 static_cast<unsigned long long>(refused), static_cast<unsigned long long>(n));
    return 1;
  }
  return 0;
}

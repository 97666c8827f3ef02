// Packaging test (pkg-config): built by the compiler alone with the flags of
// `pkg-config --cflags admit`; prints the version of the headers it found, which
// run_consumer.cmake compares with `pkg-config --modversion admit`.
#include <admit/admit.hpp>
#include <cstdio>

int main() {
  admit::SlotPool<> pool{admit::PoolConfig{.memory_budget = 200 * admit::MiB, .slots = 4}};
  admit::Admission a = pool.try_acquire(10 * admit::MiB);
  if (!a || a->bytes() != 2097152) return 1;
  std::printf("%d.%d.%d\n", ADMIT_VERSION_MAJOR, ADMIT_VERSION_MINOR, ADMIT_VERSION_PATCH);
  return 0;
}

// Packaging test (FetchContent): the core is usable with nothing but admit::admit.
#include <admit/admit.hpp>

int main() {
  admit::SlotPool<> pool{admit::PoolConfig{.memory_budget = 200 * admit::MiB, .slots = 4}};
  admit::Admission a = pool.try_acquire(10 * admit::MiB);
  if (!a) return 1;
  return a->bytes() == 2097152 ? 0 : 2;
}

// Packaging test (add_subdirectory): core and fmt support both work.
#include <admit/admit.hpp>
#include <admit/fmt.hpp>

#include <fmt/format.h>

int main() {
  admit::SlotPool<> pool{admit::PoolConfig{.memory_budget = 200 * admit::MiB, .slots = 4}};
  admit::Admission a = pool.try_acquire(10 * admit::MiB);
  if (!a) return 1;
  if (a->bytes() != 2097152) return 2;
  if (fmt::format("{}", admit::ByteSize{100 * admit::MiB}) != "100 MiB") return 3;
  return 0;
}

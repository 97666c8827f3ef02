// Packaging test (export_fmt_built_here): a library that links the core only.
#include <admit/admit.hpp>

[[nodiscard]] bool uploads_fit(std::uint64_t size) {
  admit::SlotPool<> pool{admit::PoolConfig{.memory_budget = 200 * admit::MiB, .slots = 4}};
  return static_cast<bool>(pool.try_acquire(size));
}

// Packaging test (installed package): core and fmt support both work, and the
// version macros agree with the CMake package version (EXPECTED_*).
#include <admit/admit.hpp>
#include <admit/fmt.hpp>

#include <fmt/format.h>

static_assert(ADMIT_VERSION_MAJOR == EXPECTED_MAJOR && ADMIT_VERSION_MINOR == EXPECTED_MINOR &&
                  ADMIT_VERSION_PATCH == EXPECTED_PATCH,
              "<admit/version.hpp> disagrees with admitConfigVersion.cmake");
static_assert(ADMIT_VERSION == EXPECTED_MAJOR * 10000 + EXPECTED_MINOR * 100 + EXPECTED_PATCH);

int main() {
  admit::SlotPool<> pool{admit::PoolConfig{.memory_budget = 200 * admit::MiB, .slots = 4}};
  admit::Admission a = pool.try_acquire(10 * admit::MiB);
  if (!a) return 1;
  if (a->bytes() != 2097152) return 2;
  if (fmt::format("{}", admit::ByteSize{100 * admit::MiB}) != "100 MiB") return 3;
  return 0;
}

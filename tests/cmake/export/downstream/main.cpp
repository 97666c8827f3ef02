// Packaging test (export): uses the installed library and the admit headers and
// fmt formatting it brings along.
#include <string>
#include <uploads/uploads.hpp>

int main() {
  admit::SlotPool<> pool{admit::PoolConfig{.memory_budget = 50 * admit::MiB, .slots = 4}};
  std::string refusal;
  admit::Admission small = uploads::admit_upload(pool, 10 * admit::MiB, refusal);
  if (!small || small->bytes() != 2097152) return 1;
  // The tiers reserve 100 MiB for it: more than the whole budget.
  admit::Admission huge = uploads::admit_upload(pool, 2'530'644'380, refusal);
  if (huge) return 2;
  return refusal.find("more than the whole budget of 50 MiB") != std::string::npos ? 0 : 3;
}

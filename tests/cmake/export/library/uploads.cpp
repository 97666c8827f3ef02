#include "uploads/uploads.hpp"

#include <fmt/format.h>
#include <admit/fmt.hpp>

namespace uploads {

admit::Admission admit_upload(admit::SlotPool<>& pool, std::uint64_t size, std::string& refusal) {
  admit::Admission admission = pool.try_acquire(size);
  if (!admission) refusal = fmt::format("{}", admission.error());
  return admission;
}

}  // namespace uploads

// Packaging test (export): a library whose interface uses admit's types.
#pragma once

#include <admit/admit.hpp>
#include <cstdint>
#include <string>

namespace uploads {

/// try_acquire, and on refusal the reason as admit/fmt.hpp words it in `refusal`.
[[nodiscard]] admit::Admission admit_upload(admit::SlotPool<>& pool, std::uint64_t size,
                                            std::string& refusal);

}  // namespace uploads

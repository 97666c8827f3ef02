// memory_part.cpp - see memory_part.hpp.
#include "memory_part.hpp"

#include <cstring>
#include <new>

namespace upload_server {

std::optional<PartRefusal> MemoryPart::allocate(admit::SlotReservation& reservation,
                                                std::uint64_t bytes,
                                                std::pmr::memory_resource* upstream) {
  release();
  std::pmr::memory_resource* from = upstream;
  // A fresh resource per part: a refusal it records is this allocation's.
  if (reservation) from = &resource_.emplace(reservation, upstream);
  const auto size = static_cast<std::size_t>(bytes);
  void* data = nullptr;
  try {
    if (size != 0) data = from->allocate(size);
  } catch (const std::bad_alloc&) {
    PartRefusal refusal{.rejection = resource_ ? resource_->last_refusal() : std::nullopt,
                        .bytes = bytes};
    resource_.reset();
    return refusal;
  }
  // Zeroed: every page is touched, so the part is resident from now on, not
  // only once a slow client has filled it.
  if (size != 0) std::memset(data, 0, size);
  from_ = from;
  data_ = static_cast<char*>(data);
  size_ = size;
  return std::nullopt;
}

}  // namespace upload_server

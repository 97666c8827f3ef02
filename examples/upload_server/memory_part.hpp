// memory_part.hpp - --buffer memory: an upload's bytes held in memory that its
// reservation pays for.
//
// With --buffer stream an upload passes through one small buffer (64 KiB over
// HTTP, 128 KiB over WebSocket) whatever it reserved, so its reservation is
// bookkeeping: a 2.36 GiB upload that reserved 100 MiB runs in a few MiB. With
// --buffer memory it passes through a part of size_for(reserved, declared)
// bytes instead, allocated through an admit::ReservationResource over its
// reservation: filled from the socket, written to the file (and hashed) once
// full, then filled again. The part is zeroed when allocated, so its pages
// are the process's from the start: the server's memory follows what
// admission granted, and admission is what keeps it under a memory ceiling.
//
// Size: the reservation's bytes, but at least min_size (a smaller part would
// cost a write per few bytes) and at most the declared size (more is never
// filled). A part larger than the reservation grows it by the difference,
// which the pool may refuse as it refuses an admission. The allocation itself
// may fail too (the process is out of address space or of memory). Either
// way allocate() reports it, nothing is charged or kept, and the upload is
// answered before its body (503 / close 1013).
//
// With --admission off an upload holds an empty reservation, for which a
// ReservationResource refuses everything: the part is then allocated from the
// heap uncharged, as large as the policy would have reserved, so that the
// server asks for the same memory with nobody to say no.
//
// Hashing stays on the hashing threads (hash_threads.hpp), handed a part at
// a time through their 1 MiB of buffers: the I/O thread waits while they
// catch up with a part larger than that, as it does in stream mode once
// their buffers are full, so the digest and its threads are those of stream
// mode. The cost is the cache: a part larger than it is read back from memory
// by the write and by the copy into the hashing buffers.
//
// Not in the part, and not charged: what every upload needs whatever its
// buffer (its hashing buffers, 1 MiB past the first 256 KiB; the parser's and
// Beast's few KiB). That is per slot, bounded by --slots, as in stream mode.
//
// Lifetime: the resource charges the SlotReservation object given to
// allocate(). Call release() (or destroy the part) before that reservation is
// released, moved from or destroyed; debug builds assert it. The part is the
// buffer of the reads into it: a read still pending must have ended first.
#pragma once

#include <admit/memory_resource.hpp>
#include <admit/rejection.hpp>
#include <admit/reservation.hpp>

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <optional>
#include <span>

namespace upload_server {

/// Why a part could not be allocated.
struct PartRefusal {
  /// The pool's refusal to grow the reservation to the part's size; nullopt
  /// when the allocation itself failed (the process is out of memory).
  std::optional<admit::Rejection> rejection;
  std::uint64_t bytes = 0;  ///< the part's size
};

class MemoryPart {
 public:
  /// The smallest part, unless the upload is smaller: the measured best
  /// chunk size of the stream mode (http_upload.cpp).
  static constexpr std::uint64_t min_size = 64 * 1024;

  /// The part for an upload of `declared` bytes that reserved `reserved`:
  /// min(declared, max(reserved, min_size)).
  [[nodiscard]] static constexpr std::uint64_t size_for(std::uint64_t reserved,
                                                        std::uint64_t declared) noexcept {
    const std::uint64_t wanted = reserved > min_size ? reserved : min_size;
    return wanted < declared ? wanted : declared;
  }

  MemoryPart() = default;
  MemoryPart(const MemoryPart&) = delete;
  MemoryPart& operator=(const MemoryPart&) = delete;
  ~MemoryPart() { release(); }

  /// Allocates a part of `bytes` bytes from `upstream` (which must outlive
  /// it), charged to `reservation` (which then must stay put: see the top of
  /// the file), or uncharged if `reservation` is empty. Releases the part held
  /// before. Returns why it failed, or nullopt.
  [[nodiscard]] std::optional<PartRefusal> allocate(
      admit::SlotReservation& reservation, std::uint64_t bytes,
      std::pmr::memory_resource* upstream = std::pmr::new_delete_resource());

  [[nodiscard]] bool allocated() const noexcept { return from_ != nullptr; }

  /// The part; empty when none is allocated.
  [[nodiscard]] std::span<char> bytes() noexcept { return {data_, size_}; }

  /// Whether the part is charged to a reservation (not with --admission off).
  [[nodiscard]] bool charged() const noexcept { return resource_.has_value(); }

  /// Frees the part and detaches from the reservation. Idempotent.
  void release() noexcept {
    if (from_ != nullptr && size_ != 0) from_->deallocate(data_, size_);  // first: it is charged
    from_ = nullptr;
    data_ = nullptr;
    size_ = 0;
    resource_.reset();
  }

 private:
  // The part is taken from the resource itself, not through a container: a
  // vector value-initialises byte by byte, which unoptimised builds take
  // 60 ns a byte for.
  std::optional<admit::ReservationResource> resource_;
  std::pmr::memory_resource* from_ = nullptr;  // resource_'s, or the upstream: set while allocated
  char* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace upload_server

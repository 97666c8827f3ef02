// admit/detail/packed_state.hpp - the layout of the pool's one atomic word.
//
//    63 | 62 ............ 43 | 42 .................... 0
//   attn|   slots in use     |       bytes in use
//
// Keeping bytes and slots in one word is what lets an admission take a slot
// and its bytes in a single compare-and-swap: there is no moment at which one
// is taken and the other is not, so no rollback and no transient overshoot.
// Bit 63, "attention", is set while the slow path has something to say:
// requests are waiting, the pool is closed, or someone waits for it to go
// idle. A release that sees it goes to the slow path; an admission that sees
// it checks whether it must refuse (closed) or queue behind waiters (FIFO).
// Only the slow path sets or clears it, under the pool's mutex.
#pragma once

#include <atomic>
#include <cstdint>

namespace admit::detail::packed {

inline constexpr unsigned bytes_bits = 43;
inline constexpr unsigned slots_bits = 20;

inline constexpr std::uint64_t max_bytes = (std::uint64_t{1} << bytes_bits) - 1;
inline constexpr std::uint32_t max_slots = (std::uint32_t{1} << slots_bits) - 1;

inline constexpr std::uint64_t bytes_mask = max_bytes;
/// Adding this to the word takes one slot.
inline constexpr std::uint64_t one_slot = std::uint64_t{1} << bytes_bits;
inline constexpr std::uint64_t attention_bit = std::uint64_t{1} << 63;

static_assert(bytes_bits + slots_bits + 1 == 64, "the fields must fill the word exactly");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "admit needs a lock-free 64-bit atomic for its admission fast path");

[[nodiscard]] constexpr std::uint64_t bytes(std::uint64_t word) noexcept {
  return word & bytes_mask;
}

[[nodiscard]] constexpr std::uint32_t slots(std::uint64_t word) noexcept {
  return static_cast<std::uint32_t>((word >> bytes_bits) & max_slots);
}

[[nodiscard]] constexpr bool has_attention(std::uint64_t word) noexcept {
  return (word & attention_bit) != 0;
}

/// The word's value for `slot_count` reservations holding `byte_count` bytes.
[[nodiscard]] constexpr std::uint64_t make(std::uint64_t byte_count,
                                           std::uint32_t slot_count) noexcept {
  return (std::uint64_t{slot_count} << bytes_bits) | byte_count;
}

}  // namespace admit::detail::packed

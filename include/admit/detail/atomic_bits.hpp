// admit/detail/atomic_bits.hpp - set or clear one bit of an atomic word and
// learn whether it was set: `lock bts` / `lock btr` on x86-64.
//
// std::atomic's fetch_or and fetch_and return the whole previous word, and a
// compiler that cannot see that only one bit of it is used compiles them as
// a CAS loop (clang 14 always does; GCC 12 emits `lock bts` only when the
// code is shaped just so). On x86-64 these are one locked instruction in
// inline assembly, as in folly's atomic_fetch_set. A locked instruction is a
// full barrier there, which is at least the order the caller asks for; the
// "memory" clobber keeps the compiler from moving accesses across it.
// ThreadSanitizer cannot see inside assembly, so its builds, and other
// targets, use the portable fetch_or / fetch_and with the caller's order.
#pragma once

#include <atomic>
#include <cstdint>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ADMIT_DETAIL_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define ADMIT_DETAIL_TSAN 1
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(ADMIT_DETAIL_TSAN)
#define ADMIT_DETAIL_BIT_ASM 1
#endif

namespace admit::detail {

/// Sets bit `bit` (< 64) of `word`; true if it was set already.
[[nodiscard]] inline bool atomic_set_bit(std::atomic<std::uint64_t>& word, std::uint32_t bit,
                                         std::memory_order order) noexcept {
#if defined(ADMIT_DETAIL_BIT_ASM)
  static_cast<void>(order);  // a locked instruction is sequentially consistent
  static_assert(sizeof(std::atomic<std::uint64_t>) == sizeof(std::uint64_t));
  bool was_set;
  asm volatile("lock btsq %2, %0"
               : "+m"(*reinterpret_cast<volatile std::uint64_t*>(&word)), "=@ccc"(was_set)
               : "r"(std::uint64_t{bit})
               : "memory");
  return was_set;
#else
  const std::uint64_t mask = std::uint64_t{1} << bit;
  return (word.fetch_or(mask, order) & mask) != 0;
#endif
}

/// Clears bit `bit` (< 64) of `word`; true if it was set.
[[nodiscard]] inline bool atomic_clear_bit(std::atomic<std::uint64_t>& word, std::uint32_t bit,
                                           std::memory_order order) noexcept {
#if defined(ADMIT_DETAIL_BIT_ASM)
  static_cast<void>(order);  // as above
  bool was_set;
  asm volatile("lock btrq %2, %0"
               : "+m"(*reinterpret_cast<volatile std::uint64_t*>(&word)), "=@ccc"(was_set)
               : "r"(std::uint64_t{bit})
               : "memory");
  return was_set;
#else
  const std::uint64_t mask = std::uint64_t{1} << bit;
  return (word.fetch_and(~mask, order) & mask) != 0;
#endif
}

}  // namespace admit::detail

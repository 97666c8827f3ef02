// tests/counting_allocator.hpp - a replacement global operator new/delete that
// counts allocations, per thread. Shared by tests/allocation_test.cpp (which
// checks that the admission path makes none) and admit_benchmarks (allocs/op,
// benchmarks/bench_allocations.cpp).
//
// Two parts:
//   - in every translation unit that includes this header:
//     admit_test::thread_allocations(), how many times the calling thread has
//     called any form of the global operator new so far;
//   - only in the one that defines ADMIT_COUNTING_ALLOCATOR_DEFINE before
//     including it: the replacement operators themselves, which count and then
//     call malloc / aligned_alloc / free.
// Exactly one translation unit per program defines ADMIT_COUNTING_ALLOCATOR_DEFINE:
// the operators are ordinary (non-inline, as replacements must be) definitions,
// so two such units do not link, and with none the count stays at 0 (which
// allocation_test.cpp's first test case catches).
//
// Per thread, so that a multi-threaded benchmark counts each thread's own
// allocations, and a test its own thread's, whatever Catch2 or another thread
// does meanwhile. The counter is constant-initialised (no TLS wrapper, no
// initialisation order), so operator new may touch it at any time.
//
// Not usable where the global operator new cannot be replaced: Clang's
// ThreadSanitizer runtime defines it in a static archive linked whole, so a
// program replacing it does not link (tests/CMakeLists.txt builds no
// admit_allocation_tests there; benchmarks/CMakeLists.txt builds admit_benchmarks
// without the replacement).
#ifndef ADMIT_TESTS_COUNTING_ALLOCATOR_HPP
#define ADMIT_TESTS_COUNTING_ALLOCATOR_HPP

#include <cstdint>

namespace admit_test {

namespace detail {
inline constinit thread_local std::uint64_t allocations_on_this_thread = 0;
}  // namespace detail

/// Calls to the global operator new made by the calling thread so far (0 for
/// ever if no translation unit of the program defines the replacement).
inline std::uint64_t thread_allocations() noexcept { return detail::allocations_on_this_thread; }

}  // namespace admit_test

#endif  // ADMIT_TESTS_COUNTING_ALLOCATOR_HPP

// Outside the include guard, so that a unit which included the header before
// defining the macro still gets the operators; guarded on its own against a
// second inclusion.
#if defined(ADMIT_COUNTING_ALLOCATOR_DEFINE) && !defined(ADMIT_TESTS_COUNTING_ALLOCATOR_DEFINED)
#define ADMIT_TESTS_COUNTING_ALLOCATOR_DEFINED

#include <cstddef>
#include <cstdlib>
#include <new>

// GCC sees the replaced operator new/delete inline and flags free() on memory
// from "operator new" (-Wmismatched-new-delete); here that pairing is the point.
// Not popped: the rest of the unit inlines them too. (Code included before this
// header is not covered: admit_allocation_tests also passes
// -Wno-mismatched-new-delete, for Catch2's.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace admit_test::detail {

inline void* counted_alloc(std::size_t size, std::size_t alignment) {
  ++allocations_on_this_thread;
  if (size == 0) size = 1;
  void* p = alignment <= alignof(std::max_align_t)
                ? std::malloc(size)
                : std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
  if (p == nullptr) throw std::bad_alloc{};
  return p;
}

inline void* counted_alloc_nothrow(std::size_t size, std::size_t alignment) noexcept {
  try {
    return counted_alloc(size, alignment);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

}  // namespace admit_test::detail

void* operator new(std::size_t size) { return admit_test::detail::counted_alloc(size, 0); }
void* operator new[](std::size_t size) { return admit_test::detail::counted_alloc(size, 0); }
void* operator new(std::size_t size, std::align_val_t al) {
  return admit_test::detail::counted_alloc(size, static_cast<std::size_t>(al));
}
void* operator new[](std::size_t size, std::align_val_t al) {
  return admit_test::detail::counted_alloc(size, static_cast<std::size_t>(al));
}
// The nothrow forms too (libstdc++'s stable_sort uses them): every allocation
// must come from the same malloc/free pair, or ASan reports a mismatch.
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return admit_test::detail::counted_alloc_nothrow(size, 0);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return admit_test::detail::counted_alloc_nothrow(size, 0);
}
void* operator new(std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return admit_test::detail::counted_alloc_nothrow(size, static_cast<std::size_t>(al));
}
void* operator new[](std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return admit_test::detail::counted_alloc_nothrow(size, static_cast<std::size_t>(al));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

#endif  // ADMIT_COUNTING_ALLOCATOR_DEFINE

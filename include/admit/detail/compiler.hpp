// admit/detail/compiler.hpp - what admit asks of the compiler beyond the standard.
#pragma once

// ADMIT_COLD marks a function that runs only on a path the admission fast
// path rarely or never takes (an opt-in feature, a report): kept out of line
// and away from the hot code, so that the fast path's inlining and layout stay
// what they are without it. An optimisation hint only: without it, the same code.
#if defined(__GNUC__) || defined(__clang__)
#define ADMIT_COLD [[gnu::cold, gnu::noinline]]
#elif defined(_MSC_VER)
#define ADMIT_COLD __declspec(noinline)
#else
#define ADMIT_COLD
#endif

// ADMIT_ALWAYS_INLINE is for the few admission-path entry points whose
// inlining into the caller is part of their cost: without it clang 14 stops
// inlining SlotPool::try_acquire once it contains one more (never taken) call,
// and a pair costs 70 instructions more (benchmarks/callgrind_pair.cpp).
#if defined(__GNUC__) || defined(__clang__)
#define ADMIT_ALWAYS_INLINE [[gnu::always_inline]] inline
#elif defined(_MSC_VER)
#define ADMIT_ALWAYS_INLINE __forceinline
#else
#define ADMIT_ALWAYS_INLINE inline
#endif

// fuzz_check.hpp - how a fuzz target says a property broke.
//
// libFuzzer treats an abort as a crash and saves the input that caused it;
// the message says which property broke, so the saved input can be turned
// into a regression test without re-deriving what it was for.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace admit_fuzz {

[[noreturn]] inline void property_broken(const char* what, const char* file, int line) noexcept {
  std::fprintf(stderr, "%s:%d: fuzz property broken: %s\n", file, line, what);
  std::abort();
}

}  // namespace admit_fuzz

/// Aborts with `what` unless `condition` holds; kept in release builds too.
#define ADMIT_FUZZ_CHECK(condition, what)                                      \
  do {                                                                         \
    if (!(condition)) ::admit_fuzz::property_broken(what, __FILE__, __LINE__); \
  } while (false)

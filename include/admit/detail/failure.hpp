// admit/detail/failure.hpp - how admit reports a mistake it cannot answer with a value.
//
// Two mistakes stop admit: an invalid configuration (a PoolConfig, a tier
// table, a percentage) and asking a refused Admission for its reservation.
// Neither happens on the admission path, which never fails this way. With
// exceptions enabled they throw (std::invalid_argument, BadAdmissionAccess).
// Built without exceptions (-fno-exceptions, as many servers are), the same
// message goes to stderr and the program aborts, as fmt and Abseil do: there
// is no object to go on with. Such a program checks a configuration first
// with admit::validation_error (config.hpp, policy.hpp).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

// __cpp_exceptions is the standard feature macro; __EXCEPTIONS (GCC, Clang)
// and _CPPUNWIND (MSVC) are what older front ends define instead.
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define ADMIT_HAS_EXCEPTIONS 1
#else
#define ADMIT_HAS_EXCEPTIONS 0
#endif

namespace admit::detail {

/// Writes "admit: <message>" style text to stderr and aborts. For builds
/// without exceptions; stderr is unbuffered, so nothing is lost.
[[noreturn]] inline void abort_with(const char* message) noexcept {
  std::fputs(message, stderr);
  std::fputc('\n', stderr);
  std::abort();
}

/// Throws std::invalid_argument{message}, or without exceptions aborts with it.
/// Not constexpr on purpose: reaching it while a policy is built in a constant
/// expression makes the mistake a compile error that names this function.
[[noreturn]] inline void fail_invalid_argument(const std::string& message) {
#if ADMIT_HAS_EXCEPTIONS
  throw std::invalid_argument(message);
#else
  abort_with(message.c_str());
#endif
}

}  // namespace admit::detail

// tests/support.hpp - small helpers shared by admit's tests.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace admit_test {

/// The what() of the std::invalid_argument that `f` throws, or a marker that
/// makes the caller's substring checks fail when it throws nothing.
template <class F>
std::string invalid_argument_message(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (...) {
    return "<threw something other than std::invalid_argument>";
  }
  return "<did not throw>";
}

/// The unsigned integer in environment variable `name`, or `fallback` when it
/// is unset or empty (stress tests scale by environment, not by recompiling).
inline std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::strtoull(value, nullptr, 10) : fallback;
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace admit_test

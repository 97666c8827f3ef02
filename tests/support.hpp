// tests/support.hpp - small helpers shared by admit's tests.
#pragma once

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

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace admit_test

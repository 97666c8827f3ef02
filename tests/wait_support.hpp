// tests/wait_support.hpp - helpers for tests that involve other threads.
#pragma once

#include <chrono>
#include <thread>

namespace admit_test {

/// Polls `condition` until it holds or `limit` passes; true if it held. Used
/// to wait for another thread to reach a state (e.g. "is queued"), never to
/// measure time.
template <class Condition>
bool eventually(Condition&& condition, std::chrono::milliseconds limit = std::chrono::seconds{10}) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::microseconds{200});
  }
  return true;
}

}  // namespace admit_test

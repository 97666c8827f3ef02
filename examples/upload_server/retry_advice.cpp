#include "retry_advice.hpp"

namespace upload_server {

RetryAfter RetryAdvice::after(const admit::Rejection& rejection) {
  const std::optional<std::chrono::milliseconds> delay = estimator_.retry_after(rejection);
  if (!delay) return std::nullopt;
  return admit::jittered(*delay, rng_);
}

std::chrono::milliseconds RetryAdvice::transient(admit::Reason reason, std::uint64_t bytes) {
  // Only the reason and the bytes needed matter to the estimator; the rest
  // it takes from its own sample of the pool.
  const admit::Rejection rejection{.reason = reason,
                                   .declared_size = bytes,
                                   .needed_bytes = bytes,
                                   .available_bytes = 0,
                                   .memory_budget = 0,
                                   .slots_in_use = 0,
                                   .slots = 0};
  return after(rejection).value_or(estimator_.config().max);
}

std::chrono::milliseconds RetryAdvice::after_out_of_memory(std::uint64_t bytes) {
  // Not as the pool's no_memory: the pool had room, the process did not, and
  // what it lacks comes back when an upload ends and frees its part. So: as
  // long as one upload takes to end (and 3 s before any has), not the 60 s
  // that no_memory says before the estimator has seen a rate.
  return transient(admit::Reason::no_slot, bytes);
}

std::chrono::milliseconds RetryAdvice::after_pressure() {
  return transient(admit::Reason::pressure, 0);
}

std::chrono::milliseconds RetryAdvice::after_shutdown() {
  return transient(admit::Reason::closed, 0);
}

}  // namespace upload_server

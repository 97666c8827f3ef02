// upload_server/retry_advice.hpp - when a refused client should come back.
//
// One admit::RetryEstimator over the server's pool (include/admit/retry.hpp:
// the rate at which uploads end, smoothed, and what the waiters are owed),
// sampled from a timer of the io_context every sample_every so that the rate
// is fresh when a refusal comes, and one random generator per server to
// jitter each answer (+-20 %): clients refused together do not all come back
// together. Every refusal's delay comes from here: the Retry-After of a 503,
// the "retry_after_ms" of its body and of a close reason (refusal.hpp).
//
// The estimator's defaults are the server's: advice between 1 s and 60 s; 3 s
// for a full server before any upload has ended (no rate yet), 60 s for want
// of memory then; 5 s under memory pressure; 10 s for a server shutting down.
#pragma once

#include <admit/policy.hpp>
#include <admit/pool.hpp>
#include <admit/rejection.hpp>
#include <admit/retry.hpp>

#include <chrono>
#include <cstdint>
#include <random>

#include "refusal.hpp"

namespace upload_server {

class RetryAdvice {
 public:
  /// How often the server's timer calls observe(): often enough that a
  /// refusal's rate is at most this old, rarely enough to cost nothing.
  static constexpr std::chrono::milliseconds sample_every{200};

  /// Samples `pool`, which must outlive the advice; `seed` fixes the jitter (tests).
  template <admit::MemoryPolicy Policy>
  explicit RetryAdvice(const admit::SlotPool<Policy>& pool, admit::RetryConfig config = {},
                       std::uint64_t seed = std::random_device{}())
      : estimator_{pool, config}, rng_{seed} {}

  RetryAdvice(const RetryAdvice&) = delete;
  RetryAdvice& operator=(const RetryAdvice&) = delete;

  /// The jittered delay for `rejection`; nullopt for too_large (never).
  [[nodiscard]] RetryAfter after(const admit::Rejection& rejection);

  /// For a part of `bytes` the process could not allocate (memory_part.hpp):
  /// as long as one upload takes to end, since its part is what comes back.
  [[nodiscard]] std::chrono::milliseconds after_out_of_memory(std::uint64_t bytes);

  /// Under memory pressure (/healthz's 503).
  [[nodiscard]] std::chrono::milliseconds after_pressure();

  /// For an upload cut off by the shutdown: as a refusal with `closed`.
  [[nodiscard]] std::chrono::milliseconds after_shutdown();

  /// A sample of the pool now (the timer's).
  void observe() { estimator_.observe(); }

  /// Uploads ended per second, smoothed (/metrics).
  [[nodiscard]] double release_rate() const { return estimator_.slot_rate(); }

 private:
  [[nodiscard]] std::chrono::milliseconds transient(admit::Reason reason, std::uint64_t bytes);

  admit::RetryEstimator<> estimator_;
  std::mt19937_64 rng_;
};

}  // namespace upload_server

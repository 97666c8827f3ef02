// admit/retry.hpp - when a refused client should come back.
//
// A constant Retry-After is wrong both ways: too short and the client hammers
// a full server, too long and it idles while room is free. RetryEstimator
// computes the delay from what the pool is doing: how fast it gives slots
// back, and how much is owed to the requests already waiting.
//
//     admit::RetryEstimator<> estimator{pool};
//     if (!admission) {
//       if (auto delay = estimator.retry_after(admission.error())) {
//         reply_503(admit::jittered(*delay, rng));  // nullopt: never retry (too_large)
//       }
//     }
//
// The model
//   Samples of pool.stats() give the slots given back since construction
//   (admitted - slots_in_use); their rate, slots per second, is the plain
//   average since the first sample for one time constant
//   (RetryConfig::smoothing), then an exponentially weighted moving average
//   with that time constant. Bytes come back with their slots, so the rate of
//   bytes is the rate of slots times the mean bytes a reservation holds now.
//   For a refused request:
//     no_slot, queue_full   the request needs 1 + waiters slots to come back
//                           (the waiters go first): that many / slot rate;
//     no_memory             it needs needed + waiting_bytes - available bytes
//                           to come back: that / byte rate, and no sooner
//                           than a slot when all are held;
//     timeout, cancelled    as no_slot when its bytes were free, else as
//                           no_memory;
//     pressure              RetryConfig::pressure_hint (the machine, not the
//                           pool, decides when it ends);
//     closed                RetryConfig::closed_hint (a restart);
//     too_large             nullopt: the same request can never succeed.
//   Before any slot has come back there is no rate: no_slot and its kin
//   answer RetryConfig::no_rate_hint, no_memory answers max. Every answer is
//   within [min, max] and never 0. It is deterministic: the same samples give
//   the same answer; jittered() spreads it for a crowd of clients.
//
// Sampling
//   retry_after() samples stats() when the last sample is older than
//   RetryConfig::sample_every; observe() (for example from a timer) takes one
//   too, which keeps the rate fresh between refusals. Nothing is added to the
//   admission path: stats() is a few relaxed loads. Thread-safe: one mutex,
//   held for a sample and an estimate.
//
// Clock: any type with the standard clock members (now(), time_point,
// duration), so tests drive it with a clock of their own.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include "detail/failure.hpp"
#include "policy.hpp"
#include "pool.hpp"
#include "rejection.hpp"
#include "stats.hpp"

namespace admit {

struct RetryConfig {
  std::chrono::milliseconds min = std::chrono::seconds{1};   ///< the shortest advice
  std::chrono::milliseconds max = std::chrono::seconds{60};  ///< the longest advice
  /// How long a change in the release rate takes to weigh about 63 %.
  std::chrono::milliseconds smoothing = std::chrono::seconds{5};
  /// retry_after() samples stats() at most this often (observe() always does).
  std::chrono::milliseconds sample_every = std::chrono::milliseconds{5};
  /// no_slot, queue_full and their kin before any slot has come back.
  std::chrono::milliseconds no_rate_hint = std::chrono::seconds{3};
  std::chrono::milliseconds pressure_hint = std::chrono::seconds{5};  ///< Reason::pressure
  std::chrono::milliseconds closed_hint = std::chrono::seconds{10};   ///< Reason::closed
};

/// Why a RetryEstimator would refuse `config`, naming the field; nullopt when valid.
[[nodiscard]] inline std::optional<std::string> validation_error(const RetryConfig& config) {
  using std::chrono::milliseconds;
  const auto field = [](const char* name, const char* rule, milliseconds got) {
    return std::string{"admit::RetryConfig::"} + name + " must be " + rule + ", got " +
           std::to_string(got.count()) + "ms";
  };
  if (config.min <= milliseconds::zero()) return field("min", "positive", config.min);
  if (config.max < config.min) return field("max", "at least min", config.max);
  if (config.smoothing <= milliseconds::zero()) {
    return field("smoothing", "positive", config.smoothing);
  }
  if (config.sample_every < milliseconds::zero()) {
    return field("sample_every", "zero or more", config.sample_every);
  }
  return std::nullopt;
}

/// `delay` moved by a uniformly random fraction in [-spread, +spread] (0.2:
/// +-20 %), at least 1 ms, so that clients refused together do not all come
/// back together. `spread` is clamped to [0, 1].
template <class UniformRandomBitGenerator>
[[nodiscard]] std::chrono::milliseconds jittered(std::chrono::milliseconds delay,
                                                 UniformRandomBitGenerator& rng,
                                                 double spread = 0.2) {
  spread = std::clamp(spread, 0.0, 1.0);
  std::uniform_real_distribution<double> factor{1.0 - spread, 1.0 + spread};
  const double ms = static_cast<double>(delay.count()) * factor(rng);
  return std::chrono::milliseconds{std::max<std::int64_t>(1, std::llround(ms))};
}

template <class Clock = std::chrono::steady_clock>
class RetryEstimator {
 public:
  /// Samples `pool` (which must outlive the estimator). Throws
  /// std::invalid_argument naming the field (without exceptions: aborts)
  /// unless validation_error(config) is nullopt.
  template <MemoryPolicy Policy>
  explicit RetryEstimator(const SlotPool<Policy>& pool, RetryConfig config = {})
      : pool_{&pool}, stats_of_{&stats_of<Policy>}, config_{validated(config)} {}

  RetryEstimator(const RetryEstimator&) = delete;
  RetryEstimator& operator=(const RetryEstimator&) = delete;

  /// Takes a sample now.
  void observe() {
    const std::scoped_lock lock{mutex_};
    sample(Clock::now());
  }

  /// When the request refused with `rejection` is worth trying again;
  /// nullopt when it never is (too_large). See the file comment.
  [[nodiscard]] std::optional<std::chrono::milliseconds> retry_after(const Rejection& rejection) {
    const std::scoped_lock lock{mutex_};
    const typename Clock::time_point now = Clock::now();
    if (!last_ || now - last_->at >= config_.sample_every) sample(now);
    return estimate(rejection);
  }

  /// Slots given back per second, smoothed; 0 before any came back.
  [[nodiscard]] double slot_rate() const {
    const std::scoped_lock lock{mutex_};
    return slot_rate_;
  }

  [[nodiscard]] const RetryConfig& config() const noexcept { return config_; }

 private:
  using seconds = std::chrono::duration<double>;

  struct Sample {
    typename Clock::time_point at;
    std::uint64_t released;  // slots given back since the pool was built
    Stats stats;
  };

  template <MemoryPolicy Policy>
  static Stats stats_of(const void* pool) {
    return static_cast<const SlotPool<Policy>*>(pool)->stats();
  }

  static const RetryConfig& validated(const RetryConfig& config) {
    if (auto error = validation_error(config)) detail::fail_invalid_argument(*error);
    return config;
  }

  void sample(typename Clock::time_point now) {
    Stats stats = stats_of_(pool_);
    // Each field is its own relaxed load: slots_in_use may be newer than
    // admitted, never more than it for long; clamp rather than wrap.
    const std::uint64_t released =
        stats.admitted > stats.slots_in_use ? stats.admitted - stats.slots_in_use : 0;
    if (last_) {
      const double dt = std::chrono::duration_cast<seconds>(now - last_->at).count();
      if (dt <= 0) {
        last_->stats = stats;  // the same instant: keep the rate, refresh the figures
        return;
      }
      const std::uint64_t came_back = released > last_->released ? released - last_->released : 0;
      seen_release_ = seen_release_ || came_back != 0;
      const double tau = std::chrono::duration_cast<seconds>(config_.smoothing).count();
      const double since_first = std::chrono::duration_cast<seconds>(now - first_->at).count();
      if (since_first <= tau) {
        // Until one time constant has passed, the plain average since the
        // first sample: an average started from one short interval would be
        // one or two releases over a few ms, many times the real rate, and
        // take tens of seconds to fade.
        const std::uint64_t total = released > first_->released ? released - first_->released : 0;
        slot_rate_ = static_cast<double>(total) / since_first;
      } else {
        const double instant = static_cast<double>(came_back) / dt;
        slot_rate_ += (1.0 - std::exp(-dt / tau)) * (instant - slot_rate_);
      }
    } else {
      first_ = Sample{now, released, stats};
    }
    last_ = Sample{now, released, stats};
  }

  [[nodiscard]] std::optional<std::chrono::milliseconds> estimate(const Rejection& r) const {
    const Stats& s = last_->stats;
    switch (r.reason) {
      case Reason::too_large:
        return std::nullopt;
      case Reason::closed:
        return bounded(config_.closed_hint);
      case Reason::pressure:
        return bounded(config_.pressure_hint);
      case Reason::no_slot:
      case Reason::queue_full:
        return for_slot(s);
      case Reason::timeout:
      case Reason::cancelled:
        return r.needed_bytes <= r.available_bytes ? for_slot(s) : for_bytes(r, s);
      case Reason::no_memory:
        return for_bytes(r, s);
    }
    return bounded(config_.max);
  }

  /// 1 + waiters slots must come back.
  [[nodiscard]] std::chrono::milliseconds for_slot(const Stats& s) const {
    if (!seen_release_ || slot_rate_ <= 0) return bounded(config_.no_rate_hint);
    return bounded_seconds(static_cast<double>(1 + s.waiters) / slot_rate_);
  }

  /// needed + what the waiters are owed - what is free must come back.
  [[nodiscard]] std::chrono::milliseconds for_bytes(const Rejection& r, const Stats& s) const {
    if (!seen_release_ || slot_rate_ <= 0) return config_.max;
    const double owed = static_cast<double>(r.needed_bytes) + static_cast<double>(s.waiting_bytes);
    const double free_now = static_cast<double>(
        s.bytes_in_use < s.memory_budget ? s.memory_budget - s.bytes_in_use : 0);
    const double shortfall = std::max(0.0, owed - free_now);
    // Bytes come back with their slots: the mean a reservation holds now.
    const double mean_held = s.slots_in_use != 0 ? static_cast<double>(s.bytes_in_use) /
                                                       static_cast<double>(s.slots_in_use)
                                                 : static_cast<double>(r.needed_bytes);
    double wait = 0;
    if (shortfall > 0) {
      wait = mean_held > 0 ? shortfall / (slot_rate_ * mean_held) : 0;
    }
    if (s.slots_in_use >= s.slots) {
      wait = std::max(wait, static_cast<double>(1 + s.waiters) / slot_rate_);
    }
    return bounded_seconds(wait);
  }

  [[nodiscard]] std::chrono::milliseconds bounded(std::chrono::milliseconds d) const {
    return std::clamp(d, config_.min, config_.max);
  }

  [[nodiscard]] std::chrono::milliseconds bounded_seconds(double s) const {
    // Compared in double first: a rate near 0 gives a wait too large for any duration.
    const double max_s = std::chrono::duration_cast<seconds>(config_.max).count();
    if (!(s < max_s)) return config_.max;
    const auto ms = std::chrono::milliseconds{static_cast<std::int64_t>(std::ceil(s * 1000.0))};
    return bounded(ms);
  }

  const void* pool_;
  Stats (*stats_of_)(const void*);
  const RetryConfig config_;
  mutable std::mutex mutex_;
  std::optional<Sample> first_;  // guarded by mutex_
  std::optional<Sample> last_;   // guarded by mutex_
  double slot_rate_ = 0;         // guarded by mutex_
  bool seen_release_ = false;    // guarded by mutex_
};

}  // namespace admit

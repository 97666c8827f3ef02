// benchmarks/upload_sim/lanes_audit.hpp - simulated time for Fairness::lanes,
// and a check that the replay kept the lanes guarantee (config.hpp).
// Part of admit_upload_sim; see upload_sim.cpp for what the simulator does.
//
// The audit mirrors the pool's queue from the outside: who is queued (an
// async_acquire that did not answer at once), who is the head (the earliest
// of those still waiting: they queue in arrival order), and every admission,
// in the order the handlers run, which is the order the pool answered. From
// that it checks, per head:
//   - nobody passed it once its window had closed (max_head_wait gone by, or
//     the passers' max_pass_percent share of its bytes taken), and the
//     passers never took more than that share;
//   - it was admitted no later than the moment the reservations held when
//     its window closed had all been given back (their latest end): the
//     guarantee, with the budget fixed and no pressure, which the simulation
//     never changes.
// The first is the rule; the second is the promise that follows from it,
// which users rely on, checked on its own rather than taken as implied.
#pragma once

#include "common.hpp"
#include "format.hpp"

namespace admit_sim {

// --- Simulated time ------------------------------------------------------------

/// The simulation's current time, in ns since the trace's origin. A global
/// because PoolConfig::lanes_clock is a plain function pointer: it cannot
/// carry a pointer to the Simulation. The simulator is single-threaded and
/// runs one Simulation at a time, and the loop sets this before every call
/// into the pool, so one variable is exact.
inline std::int64_t simulated_now_ns = 0;

inline std::chrono::steady_clock::time_point simulated_clock() noexcept {
  return std::chrono::steady_clock::time_point{
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::nanoseconds{simulated_now_ns})};
}

// --- The audit -----------------------------------------------------------------

struct LanesSummary {
  std::uint64_t heads = 0;              // uploads that were the head at some point
  std::uint64_t after_window = 0;       // of those, admitted after their window closed
  std::uint64_t passers = 0;            // admissions that went past a waiting head
  std::int64_t worst_head_wait_ns = 0;  // became head .. admitted
  std::int64_t least_slack_ns = -1;     // bound - admitted, over after_window; -1: none
  // Violations by kind, each with its first instance: a broken pool usually
  // breaks several rules, and which ones says where it went wrong.
  enum Kind : std::size_t { closed_pass, over_share, late_head, model, kinds };
  std::array<std::uint64_t, kinds> violations{};
  std::array<std::string, kinds> first{};
  [[nodiscard]] bool held() const noexcept {
    return std::all_of(violations.begin(), violations.end(), [](auto n) { return n == 0; });
  }
};

/// An exact instant for a violation message (format_duration rounds to 0.1 h).
inline std::string format_instant(std::int64_t ns) {
  return printf_string("%.3f s", static_cast<double>(ns) / 1e9);
}

class LanesAudit {
 public:
  LanesAudit(std::int64_t max_head_wait_ns, std::uint32_t max_pass_percent, std::size_t uploads)
      : max_head_wait_ns_{max_head_wait_ns},
        max_pass_percent_{max_pass_percent},
        state_(uploads, State::never),
        needed_(uploads, 0) {
    // Called from the pool's handlers, which should not allocate.
    admissions_.reserve(uploads);
  }

  /// Upload `id`, needing `needed` bytes, was queued at `now`.
  void queued(std::uint32_t id, std::uint64_t needed, std::int64_t now) {
    if (enqueued_ != 0 && id < enqueued_) {
      violation(LanesSummary::model,
                "upload #" + std::to_string(id) + " queued out of arrival order");
    }
    enqueued_ = id + 1;
    state_[id] = State::waiting;
    needed_[id] = needed;
    if (!head_) start_head(id, now);
  }

  /// Upload `id` was admitted at `now` with `bytes` and will give them back
  /// at `end`; queued or not.
  void admitted(std::uint32_t id, std::uint64_t bytes, std::int64_t now, std::int64_t end) {
    if (head_ && head_->id == id) {
      head_admitted(now);
    } else if (head_) {
      passed(id, bytes, now);
    }
    if (state_[id] == State::waiting) leave(id, now);
    const std::int64_t latest =
        admissions_.empty() ? end : std::max(end, admissions_.back().latest_end);
    admissions_.push_back({now, latest});
  }

  /// A waiting upload was answered without room (it gave up).
  void refused(std::uint32_t id, std::int64_t now) {
    if (state_[id] == State::waiting) leave(id, now);
  }

  /// What the pool says its head needs, after an event, against the mirror.
  void compare_head(std::optional<std::uint64_t> pool_head_needs, std::int64_t now) {
    const std::optional<std::uint64_t> ours =
        head_ ? std::optional{needed_[head_->id]} : std::nullopt;
    if (ours != pool_head_needs && !lost_track_) {
      lost_track_ = true;
      violation(
          LanesSummary::model,
          "at " + format_instant(now) +
              " the pool's head is not the one the audit follows (the audit's model is wrong)");
    }
  }

  [[nodiscard]] const LanesSummary& summary() const noexcept { return summary_; }

 private:
  enum class State : std::uint8_t { never, waiting, gone };
  struct Head {
    std::uint32_t id;
    std::int64_t since;   // became the head
    std::uint64_t share;  // bytes its passers may take in all
    std::uint64_t passed = 0;
    std::int64_t share_closed = std::numeric_limits<std::int64_t>::max();  // share taken at
  };
  struct Admission {
    std::int64_t time;
    std::int64_t latest_end;  // of every admission up to this one
  };

  void start_head(std::uint32_t id, std::int64_t now) {
    ++summary_.heads;
    // The pool's arithmetic (may_pass_locked), so the share is the same byte.
    Head h{id, now, needed_[id] * max_pass_percent_ / 100};
    if (h.share == 0) h.share_closed = now;  // nobody may pass
    head_ = h;
  }

  /// When the head's window closed (or will close, if nobody takes the share).
  [[nodiscard]] std::int64_t window_close() const noexcept {
    return std::min(head_->since + max_head_wait_ns_, head_->share_closed);
  }

  void passed(std::uint32_t id, std::uint64_t bytes, std::int64_t now) {
    ++summary_.passers;
    Head& h = *head_;
    // Built only for a violation: handlers should not allocate.
    const auto who = [&] {
      return "upload #" + std::to_string(id) + " (" + format_bytes(static_cast<double>(bytes)) +
             ") passed head #" + std::to_string(h.id) + " at " + format_instant(now);
    };
    if (now - h.since >= max_head_wait_ns_) {
      violation(LanesSummary::closed_pass,
                who() + ", " + format_duration(now - h.since) +
                    " after it became the head: its window had closed after --max-head-wait");
    } else if (h.passed >= h.share || bytes > h.share - h.passed) {
      violation(LanesSummary::over_share, who() + ": its passers would hold " +
                                              format_bytes(static_cast<double>(h.passed + bytes)) +
                                              ", more than the --max-pass-percent share " +
                                              format_bytes(static_cast<double>(h.share)));
    }
    h.passed += bytes;
    if (h.passed >= h.share && h.share_closed > now) h.share_closed = now;
  }

  void head_admitted(std::int64_t now) {
    const Head& h = *head_;
    summary_.worst_head_wait_ns = std::max(summary_.worst_head_wait_ns, now - h.since);
    const std::int64_t close = window_close();
    if (now <= close) return;
    ++summary_.after_window;
    // The reservations held at `close` were all admitted by then (nobody is
    // admitted behind a closed window but the head), so their latest end
    // is the latest end of everything admitted up to `close`. Those already
    // given back end before `close`, hence the max with it.
    const auto after =
        std::upper_bound(admissions_.begin(), admissions_.end(), close,
                         [](std::int64_t t, const Admission& a) { return t < a.time; });
    const std::int64_t bound =
        after == admissions_.begin() ? close : std::max(close, std::prev(after)->latest_end);
    if (now > bound) {
      violation(LanesSummary::late_head,
                "head #" + std::to_string(h.id) + " (needs " +
                    format_bytes(static_cast<double>(needed_[h.id])) + ") became the head at " +
                    format_instant(h.since) + ", its window closed at " + format_instant(close) +
                    ", the reservations held then were all given back by " + format_instant(bound) +
                    ", but it was admitted only at " + format_instant(now));
      return;
    }
    const std::int64_t slack = bound - now;
    if (summary_.least_slack_ns < 0 || slack < summary_.least_slack_ns) {
      summary_.least_slack_ns = slack;
    }
  }

  /// `id` is no longer queued; if it was the head, the next waiter is.
  void leave(std::uint32_t id, std::int64_t now) {
    state_[id] = State::gone;
    if (!head_ || head_->id != id) return;
    head_.reset();
    // Amortised: the cursor only moves forward over the uploads queued so far.
    for (cursor_ = std::max(cursor_, id + 1); cursor_ < enqueued_; ++cursor_) {
      if (state_[cursor_] == State::waiting) {
        start_head(cursor_, now);
        return;
      }
    }
  }

  void violation(LanesSummary::Kind kind, std::string what) {
    if (summary_.violations[kind]++ == 0) summary_.first[kind] = std::move(what);
  }

  const std::int64_t max_head_wait_ns_;
  const std::uint64_t max_pass_percent_;
  std::vector<State> state_;
  std::vector<std::uint64_t> needed_;
  std::vector<Admission> admissions_;  // in order of time
  std::optional<Head> head_;
  std::uint32_t enqueued_ = 0;  // one past the last upload queued
  std::uint32_t cursor_ = 0;    // no upload before it is waiting
  bool lost_track_ = false;
  LanesSummary summary_;
};

}  // namespace admit_sim

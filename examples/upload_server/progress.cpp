#include "progress.hpp"

#include <fmt/format.h>
#include <admit/fmt.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <utility>

namespace upload_server {

namespace {

// "30 s" or "250 ms": for people reading a close reason or a log line.
std::string human(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? fmt::format("{} s", d.count() / 1000)
                               : fmt::format("{} ms", d.count());
}

}  // namespace

struct ProgressWatch::State {
  State(const boost::asio::any_io_executor& executor, Limits watch_limits,
        std::function<void(std::string)> late_callback)
      : timer{executor}, limits{watch_limits}, on_late{std::move(late_callback)} {}

  boost::asio::steady_timer timer;
  Limits limits;
  std::function<void(std::string)> on_late;  // emptied by stop()
  Clock::time_point started = Clock::now();
  Clock::time_point last_data = started;
  Clock::time_point interval_start = started;
  std::uint64_t bytes = 0;                 // since the watch started
  std::uint64_t interval_start_bytes = 0;  // `bytes` when the interval began
  bool late = false;

  [[nodiscard]] Clock::time_point data_due() const { return last_data + limits.body_timeout; }
  [[nodiscard]] Clock::time_point interval_end() const {
    return interval_start + limits.body_timeout;
  }

  /// The first moment at which the upload could be late.
  [[nodiscard]] Clock::time_point next_check() const {
    return limits.min_rate == 0 ? data_due() : std::min(data_due(), interval_end());
  }

  /// Why the upload is late at `now`, or "" if it is not.
  std::string lateness(Clock::time_point now) {
    if (now >= data_due()) {
      return "no data for " + human(limits.body_timeout);
    }
    if (limits.min_rate != 0 && now >= interval_end()) {
      const std::uint64_t got = bytes - interval_start_bytes;
      const auto ms = static_cast<std::uint64_t>(limits.body_timeout.count());
      // In floating point: got * 1000 or min_rate * ms may not fit 64 bits.
      if (static_cast<double>(got) * 1000.0 <
          static_cast<double>(limits.min_rate) * static_cast<double>(ms)) {
        return fmt::format("{} in {}, below the minimum of {}/s", admit::ByteSize{got},
                           human(limits.body_timeout), admit::ByteSize{limits.min_rate});
      }
      interval_start = now;  // fast enough: the next interval starts
      interval_start_bytes = bytes;
    }
    return {};
  }
};

void ProgressWatch::arm(const std::shared_ptr<State>& state) {
  state->timer.expires_at(state->next_check());
  state->timer.async_wait([state](const boost::system::error_code& ec) {
    if (ec || !state->on_late) return;  // cancelled: stopped or destroyed
    std::string why = state->lateness(Clock::now());
    if (why.empty()) {
      arm(state);  // data came meanwhile: wait for the next moment it could be late
      return;
    }
    state->late = true;
    auto on_late = std::exchange(state->on_late, nullptr);
    on_late(std::move(why));
  });
}

ProgressWatch::ProgressWatch(const boost::asio::any_io_executor& executor, Limits limits,
                             std::function<void(std::string reason)> on_late)
    : state_{std::make_shared<State>(executor, limits, std::move(on_late))} {
  arm(state_);
}

ProgressWatch::~ProgressWatch() { stop(); }

void ProgressWatch::data(std::uint64_t bytes) noexcept {
  state_->bytes += bytes;
  if (bytes != 0) state_->last_data = Clock::now();
}

void ProgressWatch::stop() noexcept {
  state_->on_late = nullptr;
  state_->timer.cancel();
}

bool ProgressWatch::late() const noexcept { return state_->late; }

std::uint64_t ProgressWatch::bytes() const noexcept { return state_->bytes; }

ProgressWatch::Clock::time_point ProgressWatch::started() const noexcept { return state_->started; }

}  // namespace upload_server

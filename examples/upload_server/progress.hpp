// upload_server/progress.hpp - the data deadline of a running upload.
//
// An admitted upload holds a slot and part of the memory budget, so a client
// that stops sending (idle, answering pings, or dripping a byte now and then)
// must not keep them. Like nginx's client_body_timeout, which measures the gap
// between two reads and not the time to fill a buffer, an upload is cut off
// when no data arrived for `body_timeout`; like Apache's MinRate, with a
// `min_rate` it is also cut off when it averages less than that many bytes
// per second over an interval of `body_timeout` (the intervals follow each
// other from the start of the watch).
//
// Cheap on the data path: data() only adds to a counter and reads the clock.
// One timer per upload is armed for the first moment the upload could be
// late and, when it fires early because data came meanwhile, armed again for
// the next such moment: at most one timer operation per interval, never one
// per read (each is a system call).
//
// When the upload is late, the watch calls `on_late(reason)` once, on the
// connection's executor, with a sentence for the client and the log ("no data
// for 30 s"); the session then cancels its read and answers (HTTP 408,
// WebSocket close 1008). The callback never runs after stop() or the
// watch's destruction.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace upload_server {

class ProgressWatch {
 public:
  using Clock = std::chrono::steady_clock;

  struct Limits {
    std::chrono::milliseconds body_timeout;  ///< > 0
    std::uint64_t min_rate = 0;              ///< bytes per second; 0 = no minimum
  };

  /// Starts watching now: the first data is due within body_timeout.
  ProgressWatch(const boost::asio::any_io_executor& executor, Limits limits,
                std::function<void(std::string reason)> on_late);
  ~ProgressWatch();
  ProgressWatch(const ProgressWatch&) = delete;
  ProgressWatch& operator=(const ProgressWatch&) = delete;

  /// `bytes` of upload data arrived (protocol chatter, such as pings, is not data).
  void data(std::uint64_t bytes) noexcept;

  /// Ends the watch (the upload is complete, or ends another way); idempotent.
  void stop() noexcept;

  /// Whether the watch found the upload late (and called on_late).
  [[nodiscard]] bool late() const noexcept;

  /// The data told by data() so far, and when the watch started: what the
  /// server knows of an upload's progress (GET /debug/uploads).
  [[nodiscard]] std::uint64_t bytes() const noexcept;
  [[nodiscard]] Clock::time_point started() const noexcept;

 private:
  struct State;
  /// Arms the timer for the next moment the upload could be late.
  static void arm(const std::shared_ptr<State>& state);

  std::shared_ptr<State> state_;  // shared with the timer's pending wait
};

}  // namespace upload_server

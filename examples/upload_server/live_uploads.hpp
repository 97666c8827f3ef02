// live_uploads.hpp - the uploads running now, as GET /debug/uploads shows them.
//
// The pool knows what each reservation holds, not what the upload behind it
// has done. This table is the server's own view of every admitted upload,
// from its admission to its end: its name, what it declared and reserved, and
// what it has received and how fast, read from the ProgressWatch
// (progress.hpp) that already counts every read's bytes for the data
// deadline, so the figures cost the data path nothing more.
//
// An upload's entry is a Registration that the upload holds: it leaves the
// table however the upload ends. One thread (the server's), no locks.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>

#include "progress.hpp"

namespace upload_server {

class LiveUploads {
 public:
  using Clock = std::chrono::steady_clock;

  /// What the upload says of itself; what it received is read from its watch.
  struct Entry {
    std::string_view protocol;  ///< "http" or "ws": a string that outlives the entry
    std::uint64_t number = 0;   ///< as in the log: http#NUMBER
    std::string name;           ///< the file's name, as far as it is known yet
    std::uint64_t declared_size = 0;
    std::uint64_t reserved_bytes = 0;
    std::uint64_t buffer_bytes = 0;  ///< --buffer memory: the part; 0 when streaming
    Clock::time_point admitted = Clock::now();
  };

 private:
  struct Item {
    Entry entry;
    const ProgressWatch* watch = nullptr;
    // Once unwatched: the figures it had.
    std::uint64_t received = 0;
    Clock::time_point body_started{};
    Clock::time_point body_ended{};
  };

 public:
  /// An upload's place in the table, for as long as it lives.
  class Registration {
   public:
    Registration(LiveUploads& owner, std::list<Item>::iterator at) : owner_{owner}, at_{at} {}
    ~Registration() { owner_.items_.erase(at_); }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

    [[nodiscard]] Entry& entry() noexcept { return at_->entry; }

    /// Reads the received bytes and the rate from `watch` until unwatch();
    /// `watch` must outlive that.
    void watch(const ProgressWatch& watch) noexcept { at_->watch = &watch; }
    /// Keeps the figures read last: the body phase is over.
    void unwatch() noexcept;

   private:
    LiveUploads& owner_;
    std::list<Item>::iterator at_;
  };

  LiveUploads() = default;
  LiveUploads(const LiveUploads&) = delete;
  LiveUploads& operator=(const LiveUploads&) = delete;

  [[nodiscard]] Registration add(Entry entry) {
    return Registration{*this, items_.insert(items_.end(), Item{std::move(entry)})};
  }

  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }

  /// {"uploads": [{"id": "ws#17", "protocol": "ws", "name", "declared_size",
  /// "reserved_bytes", "buffer_bytes", "received_bytes", "age_seconds",
  /// "rate_bytes_per_second"}, ...]}, oldest first. The rate is the average
  /// since the body began (0 before it has).
  [[nodiscard]] std::string json(Clock::time_point now = Clock::now()) const;

 private:
  std::list<Item> items_;
};

}  // namespace upload_server

// live_uploads.cpp - see live_uploads.hpp.
#include "live_uploads.hpp"

#include <nlohmann/json.hpp>

#include <cmath>

namespace upload_server {

namespace {

double seconds(LiveUploads::Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// To the millisecond: what a person reads, and what a JSON number shows short.
double rounded_seconds(LiveUploads::Clock::duration d) {
  return std::round(seconds(d) * 1000.0) / 1000.0;
}

}  // namespace

void LiveUploads::Registration::unwatch() noexcept {
  Item& item = *at_;
  if (item.watch == nullptr) return;
  item.received = item.watch->bytes();
  item.body_started = item.watch->started();
  item.body_ended = Clock::now();
  item.watch = nullptr;
}

std::string LiveUploads::json(Clock::time_point now) const {
  nlohmann::json uploads = nlohmann::json::array();
  for (const Item& item : items_) {
    const Entry& entry = item.entry;
    const bool watched = item.watch != nullptr;
    const std::uint64_t received = watched ? item.watch->bytes() : item.received;
    const Clock::duration body =
        watched ? now - item.watch->started() : item.body_ended - item.body_started;
    // Under a millisecond of body is too short to say a rate.
    const auto rate = body >= std::chrono::milliseconds{1}
                          ? std::llround(static_cast<double>(received) / seconds(body))
                          : 0LL;
    uploads.push_back({
        {"id", std::string{entry.protocol} + "#" + std::to_string(entry.number)},
        {"protocol", entry.protocol},
        {"name", entry.name},
        {"declared_size", entry.declared_size},
        {"reserved_bytes", entry.reserved_bytes},
        {"buffer_bytes", entry.buffer_bytes},
        {"received_bytes", received},
        {"age_seconds", rounded_seconds(now - entry.admitted)},
        {"rate_bytes_per_second", rate},
    });
  }
  return nlohmann::json{{"uploads", std::move(uploads)}}.dump() + "\n";
}

}  // namespace upload_server

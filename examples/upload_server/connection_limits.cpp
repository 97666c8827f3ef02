#include "connection_limits.hpp"

#include <algorithm>
#include <cerrno>
#include <utility>

namespace upload_server {

// --- Descriptors ------------------------------------------------------------------

namespace {
constexpr std::uint64_t process_descriptors = 16;
constexpr std::uint64_t descriptors_per_slot = 2;
constexpr std::uint64_t default_closing_allowance = ConnectionLimits{}.closing_allowance;
constexpr std::uint64_t fewest_connections = 16;
}  // namespace

std::uint64_t descriptor_spare(std::uint32_t slots) noexcept {
  return process_descriptors + descriptors_per_slot * slots;
}

std::uint64_t descriptor_reserve(std::uint32_t slots) noexcept {
  return descriptor_spare(slots) + default_closing_allowance;
}

std::optional<std::uint32_t> default_max_connections(std::uint64_t nofile,
                                                     std::uint32_t slots) noexcept {
  const std::uint64_t reserve = descriptor_reserve(slots);
  if (nofile < reserve + fewest_connections) return std::nullopt;
  return static_cast<std::uint32_t>(
      std::min<std::uint64_t>(nofile - reserve, max_default_connections));
}

// --- Connection -------------------------------------------------------------------

Connection::Connection(Connection&& other) noexcept
    : registry_{std::exchange(other.registry_, nullptr)}, entry_{other.entry_} {}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    if (registry_ != nullptr) registry_->release(entry_);
    registry_ = std::exchange(other.registry_, nullptr);
    entry_ = other.entry_;
  }
  return *this;
}

Connection::~Connection() {
  if (registry_ != nullptr) registry_->release(entry_);
}

Connection::Busy Connection::busy(ConnectionPhase phase) noexcept {
  if (phase != ConnectionPhase::uploading) phase = ConnectionPhase::in_request;
  if (registry_ != nullptr) registry_->busy(entry_, phase);
  return Busy{registry_, entry_, phase};
}

ConnectionPhase Connection::phase() const noexcept {
  return registry_ != nullptr ? entry_->phase : ConnectionPhase::waiting;
}

std::uint64_t Connection::number() const noexcept {
  return registry_ != nullptr ? entry_->number : 0;
}

Connection::Busy::Busy(Busy&& other) noexcept
    : registry_{std::exchange(other.registry_, nullptr)},
      entry_{other.entry_},
      phase_{other.phase_} {}

Connection::Busy::~Busy() {
  if (registry_ != nullptr) registry_->idle(entry_, phase_);
}

// --- ConnectionRegistry -----------------------------------------------------------

ConnectionRegistry::ConnectionRegistry(ConnectionLimits limits, CloseFunction close)
    : limits_{limits}, close_{std::move(close)} {
  limits_.max_connections = std::max<std::uint32_t>(limits_.max_connections, 1);
}

ConnectionRegistry::List& ConnectionRegistry::list_of(ConnectionPhase phase) noexcept {
  switch (phase) {
    case ConnectionPhase::waiting:
      return waiting_;
    case ConnectionPhase::in_request:
      return in_request_;
    case ConnectionPhase::uploading:
      return uploading_;
    case ConnectionPhase::closing:
      break;
  }
  return closing_;
}

void ConnectionRegistry::move_to(Entry entry, ConnectionPhase phase) noexcept {
  if (entry->phase == phase) return;
  // To the back: the waiting list stays ordered by the time each started waiting.
  list_of(phase).splice(list_of(phase).end(), list_of(entry->phase), entry);
  entry->phase = phase;
}

ConnectionRegistry::Opened ConnectionRegistry::open(int handle, std::string_view peer,
                                                    bool descriptors_short, Clock::time_point now) {
  Opened opened;
  std::string key{peer};
  if (limits_.max_per_ip != 0) {
    const auto count = per_peer_.find(key);
    if (count != per_peer_.end() && count->second >= limits_.max_per_ip) {
      ++refused_per_ip_;
      opened.refusal = ConnectionRefusal::per_ip;
      return opened;
    }
  }

  const auto live = [this] { return in_request_.size() + uploading_.size() + waiting_.size(); };
  if ((live() >= limits_.max_connections || descriptors_short) && !waiting_.empty() &&
      closing_.size() < limits_.closing_allowance) {
    shed_oldest();
    opened.shed = 1;
  }
  // With at most max_connections live and closing_allowance closing, the
  // descriptors connections hold stay bounded however fast they arrive.
  if (live() >= limits_.max_connections) {
    ++refused_max_;
    opened.refusal = ConnectionRefusal::max_connections;
    return opened;
  }
  // The shed connection's descriptor comes back soon; without one, this
  // connection's must come back now.
  if (descriptors_short && opened.shed == 0) {
    ++refused_descriptors_;
    opened.refusal = ConnectionRefusal::descriptors;
    return opened;
  }

  if (const auto same = by_handle_.find(handle); same != by_handle_.end()) {
    same->second->handle = -1;  // its socket is closed: the number is this one's now
    by_handle_.erase(same);
  }
  waiting_.push_back(detail::ConnectionEntry{.number = next_number_++,
                                             .handle = handle,
                                             .peer = std::move(key),
                                             .phase = ConnectionPhase::waiting,
                                             .busy = 0,
                                             .uploading = 0,
                                             .waiting_since = now});
  const Entry entry = std::prev(waiting_.end());
  if (handle >= 0) by_handle_.emplace(handle, entry);
  ++per_peer_[entry->peer];
  ++accepted_;
  opened.connection = Connection{this, entry};
  return opened;
}

void ConnectionRegistry::shed_oldest() {
  const Entry oldest = waiting_.begin();
  move_to(oldest, ConnectionPhase::closing);
  drop_peer(oldest->peer);
  ++shed_;
  // Last: the close function may do anything, but the registry is consistent.
  if (oldest->handle >= 0 && close_) close_(oldest->handle);
}

std::uint32_t ConnectionRegistry::shed_waiting(std::uint32_t at_most) {
  std::uint32_t count = 0;
  while (count < at_most && !waiting_.empty()) {
    shed_oldest();
    ++count;
  }
  return count;
}

void ConnectionRegistry::busy(Entry entry, ConnectionPhase phase) noexcept {
  ++entry->busy;
  if (phase == ConnectionPhase::uploading) ++entry->uploading;
  if (entry->phase == ConnectionPhase::closing) return;  // shed: stays closing
  move_to(entry, entry->uploading != 0 ? ConnectionPhase::uploading : ConnectionPhase::in_request);
}

void ConnectionRegistry::idle(Entry entry, ConnectionPhase phase) noexcept {
  --entry->busy;
  if (phase == ConnectionPhase::uploading) --entry->uploading;
  if (entry->released) {
    if (entry->busy == 0) released_.erase(entry);  // the last token of a closed connection
    return;
  }
  if (entry->phase == ConnectionPhase::closing) return;
  if (entry->busy == 0) {
    entry->waiting_since = Clock::now();
    move_to(entry, ConnectionPhase::waiting);
  } else if (entry->uploading == 0) {
    move_to(entry, ConnectionPhase::in_request);
  }
}

void ConnectionRegistry::release(Entry entry) noexcept {
  if (entry->phase != ConnectionPhase::closing) drop_peer(entry->peer);
  if (entry->handle >= 0) by_handle_.erase(entry->handle);
  if (entry->busy == 0) {
    list_of(entry->phase).erase(entry);
    return;
  }
  // A Busy token outlives its Connection (destroyed in the other order): the
  // connection is gone and counted nowhere, the entry waits for the token.
  released_.splice(released_.end(), list_of(entry->phase), entry);
  entry->released = true;
  entry->handle = -1;
}

void ConnectionRegistry::drop_peer(const std::string& peer) noexcept {
  const auto count = per_peer_.find(peer);
  if (count == per_peer_.end()) return;
  if (--count->second == 0) per_peer_.erase(count);
}

ConnectionStats ConnectionRegistry::stats() const noexcept {
  ConnectionStats s;
  s.max_connections = limits_.max_connections;
  s.max_per_ip = limits_.max_per_ip;
  s.waiting = waiting_.size();
  s.in_request = in_request_.size();
  s.uploading = uploading_.size();
  s.closing = closing_.size();
  s.open = s.waiting + s.in_request + s.uploading + s.closing;
  s.accepted_total = accepted_;
  s.refused_max_connections_total = refused_max_;
  s.refused_per_ip_total = refused_per_ip_;
  s.refused_descriptors_total = refused_descriptors_;
  s.shed_total = shed_;
  s.accept_failures_total = accept_failures_;
  return s;
}

ConnectionRegistry::Clock::duration ConnectionRegistry::longest_wait(
    Clock::time_point now) const noexcept {
  if (waiting_.empty()) return Clock::duration::zero();
  return std::max(now - waiting_.front().waiting_since, Clock::duration::zero());
}

// --- The answer at accept -----------------------------------------------------------

std::string refusal_response(ConnectionRefusal refusal, const ConnectionLimits& limits) {
  const bool per_ip = refusal == ConnectionRefusal::per_ip;
  const std::uint32_t limit = per_ip ? limits.max_per_ip : limits.max_connections;
  // Fixed words and integers only: no JSON escaping needed.
  std::string body = R"({"reason":")";
  body += to_string(refusal);
  body += R"(","message":")";
  switch (refusal) {
    case ConnectionRefusal::per_ip:
      body += "this address already has " + std::to_string(limit) +
              " connections open (--max-connections-per-ip), retry later";
      break;
    case ConnectionRefusal::descriptors:
      body +=
          "the server is short of file descriptors (ulimit -n) and every open connection "
          "is busy, retry later";
      break;
    case ConnectionRefusal::none:
    case ConnectionRefusal::max_connections:
      body += "the server has its " + std::to_string(limit) +
              " connections open, all busy (--max-connections), retry later";
      break;
  }
  body += R"(","limit":)" + std::to_string(limit) + "}\n";

  std::string response =
      "HTTP/1.1 503 Service Unavailable\r\n"
      "Server: admit-upload-server\r\n"
      "Content-Type: application/json\r\n"
      "Retry-After: 1\r\n"
      "Connection: close\r\n"
      "Content-Length: ";
  response += std::to_string(body.size());
  response += "\r\n\r\n";
  response += body;
  return response;
}

// --- accept() failures ------------------------------------------------------------

AcceptBackoff::Failure AcceptBackoff::failed(Clock::time_point now, bool made_room) noexcept {
  const bool first = failures_ == 0;
  if (first) began_ = now;
  last_failure_ = now;
  ++failures_;
  if (made_room) {
    pause_ = room_made_pause;
  } else {
    pause_ = std::clamp(pause_ * 2, first_pause, longest_pause);
  }
  return {pause_, first};
}

std::optional<AcceptBackoff::Episode> AcceptBackoff::succeeded(Clock::time_point now) noexcept {
  if (failures_ == 0 || now - last_failure_ < quiet) return std::nullopt;
  const Episode episode{failures_, last_failure_ - began_};
  failures_ = 0;
  pause_ = std::chrono::milliseconds{0};
  return episode;
}

bool out_of_resources(int error_number) noexcept {
  return error_number == EMFILE || error_number == ENFILE || error_number == ENOBUFS ||
         error_number == ENOMEM;
}

bool connection_error(int error_number) noexcept {
  // accept(2), "Error handling": Linux passes pending network errors of the new
  // socket to accept; treat them like EAGAIN. ECONNABORTED: reset before accept.
  switch (error_number) {
    case ECONNABORTED:
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
    case EINTR:
    case EAGAIN:
      return true;
    default:
      return false;
  }
}

}  // namespace upload_server

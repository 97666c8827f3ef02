// hash_threads.cpp - see hash_threads.hpp.
#include "hash_threads.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

namespace upload_server {

namespace detail {

// One upload's hashing. A thread hashes buffers [first, first + filled) and
// the writer fills the one after them, modulo buffer_count, handing it over
// when full (or at the digest); `mutex` guards the indices and flags, never
// the hashing or copying itself, which touch buffers the other side does not.
struct HashStream {
  static constexpr std::size_t count = StreamingSha256::buffer_count;
  static constexpr std::size_t size = StreamingSha256::buffer_size;

  Sha256 sha;
  // The writer's only: bytes still to hash inline, and the buffer it fills.
  std::size_t inline_left = StreamingSha256::inline_bytes;
  std::unique_ptr<char[]> buffers;  // count * size, or none yet
  std::size_t fill_index = 0;       // the buffer being filled, when `filling` > 0
  std::size_t filling = 0;          // bytes in it

  std::mutex mutex;
  std::condition_variable changed;  // a buffer was hashed, or the stream left the queue
  std::array<std::size_t, count> sizes{};
  std::size_t first = 0;
  std::size_t filled = 0;
  bool queued = false;                     // in the threads' queue or being hashed
  bool abandoned = false;                  // its StreamingSha256 is gone: drop, do not hash
  std::shared_ptr<HashStream> next_ready;  // guarded by HashThreads::mutex_

  [[nodiscard]] std::string_view buffer(std::size_t index) const noexcept {
    return {buffers.get() + index * size, sizes[index]};
  }

  // Hashes the first filled buffer (a thread's turn); returns whether another
  // is waiting, in which case the stream stays queued.
  bool hash_one() {
    std::size_t index = 0;
    bool drop = false;
    {
      std::lock_guard lock{mutex};
      index = first;
      drop = abandoned;
    }
    if (!drop) sha.update(buffer(index));
    bool more = false;
    {
      std::lock_guard lock{mutex};
      first = (first + 1) % count;
      --filled;
      more = filled > 0;
      queued = more;
    }
    changed.notify_all();
    return more;
  }
};

}  // namespace detail

// --- HashThreads -------------------------------------------------------------

HashThreads::HashThreads(unsigned count) {
  threads_.reserve(count);
  try {
    for (unsigned i = 0; i < count; ++i) threads_.emplace_back([this] { work(); });
  } catch (...) {
    stop();  // the threads already started
    throw;
  }
}

HashThreads::~HashThreads() { stop(); }

void HashThreads::stop() noexcept {
  {
    std::lock_guard lock{mutex_};
    stopping_ = true;
  }
  ready_changed_.notify_all();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

unsigned HashThreads::default_count() noexcept {
  const unsigned cores = std::thread::hardware_concurrency();
  return cores <= 1 ? 0 : std::min(cores - 1, 4U);
}

void HashThreads::schedule(std::shared_ptr<detail::HashStream> stream) noexcept {
  {
    std::lock_guard lock{mutex_};
    detail::HashStream* const last = stream.get();
    if (ready_last_ != nullptr) {
      ready_last_->next_ready = std::move(stream);
    } else {
      ready_first_ = std::move(stream);
    }
    ready_last_ = last;
  }
  ready_changed_.notify_one();
}

void HashThreads::work() {
  for (;;) {
    std::shared_ptr<detail::HashStream> stream;
    {
      std::unique_lock lock{mutex_};
      // What is queued is hashed even when stopping: a digest may wait on it.
      ready_changed_.wait(lock, [this] { return ready_first_ != nullptr || stopping_; });
      if (ready_first_ == nullptr) return;
      stream = std::move(ready_first_);
      ready_first_ = std::move(stream->next_ready);
      if (ready_first_ == nullptr) ready_last_ = nullptr;
    }
    // One buffer a turn, then to the back of the queue: one upload that keeps
    // its buffers full does not keep the others waiting.
    if (stream->hash_one()) schedule(std::move(stream));
  }
}

// --- StreamingSha256 ---------------------------------------------------------

StreamingSha256::StreamingSha256(HashThreads* threads)
    : threads_{threads != nullptr && threads->size() > 0 ? threads : nullptr},
      stream_{std::make_shared<detail::HashStream>()} {}

StreamingSha256::StreamingSha256(StreamingSha256&& other) noexcept
    : threads_{other.threads_}, stream_{std::move(other.stream_)} {}

StreamingSha256& StreamingSha256::operator=(StreamingSha256&& other) noexcept {
  std::swap(threads_, other.threads_);
  std::swap(stream_, other.stream_);  // ours is abandoned when `other` goes
  return *this;
}

StreamingSha256::~StreamingSha256() {
  if (stream_ == nullptr) return;
  std::lock_guard lock{stream_->mutex};
  stream_->abandoned = true;
}

void StreamingSha256::update(std::string_view data) {
  detail::HashStream& stream = *stream_;
  if (threads_ == nullptr) {
    stream.sha.update(data);
    return;
  }
  if (data.size() > stream.inline_left && stream.buffers == nullptr) {
    stream.buffers.reset(new char[detail::HashStream::count * detail::HashStream::size]);
  }
  // Inline bytes all come before the first buffer is handed over, so no
  // thread hashes while the writer does.
  const std::size_t now = std::min(data.size(), stream.inline_left);
  if (now > 0) {
    stream.sha.update(data.substr(0, now));
    stream.inline_left -= now;
    data.remove_prefix(now);
  }
  while (!data.empty()) {
    if (stream.filling == 0) {  // take the next buffer, once it is hashed
      std::unique_lock lock{stream.mutex};
      stream.changed.wait(lock, [&] { return stream.filled < detail::HashStream::count; });
      stream.fill_index = (stream.first + stream.filled) % detail::HashStream::count;
    }
    // Outside the lock: no thread reads this buffer until `filled` counts it.
    const std::size_t size = std::min(data.size(), detail::HashStream::size - stream.filling);
    std::memcpy(
        stream.buffers.get() + stream.fill_index * detail::HashStream::size + stream.filling,
        data.data(), size);
    stream.filling += size;
    data.remove_prefix(size);
    if (stream.filling == detail::HashStream::size) hand_over();
  }
}

void StreamingSha256::hand_over() {
  detail::HashStream& stream = *stream_;
  bool schedule = false;
  {
    std::lock_guard lock{stream.mutex};
    stream.sizes[stream.fill_index] = std::exchange(stream.filling, 0);
    ++stream.filled;
    schedule = !std::exchange(stream.queued, true);
  }
  if (schedule) threads_->schedule(stream_);
}

std::string StreamingSha256::hex_digest() {
  detail::HashStream& stream = *stream_;
  if (stream.filling > 0) hand_over();
  {
    std::unique_lock lock{stream.mutex};
    stream.changed.wait(lock, [&] { return !stream.queued; });
  }
  return stream.sha.hex_digest();
}

}  // namespace upload_server

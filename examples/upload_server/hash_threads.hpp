// hash_threads.hpp - SHA-256 of an upload computed beside its I/O, not on it.
//
// SHA-256 is most of what the server's thread does with an upload's bytes
// (with SHA-NI about 0.7 ns a byte, against 0.5 for receiving and writing
// them), and it is one sequential pass that no reader waits for until the
// upload ends. So a large upload's bytes are copied (cheaply: they were just
// received and are still in the cache) into a few buffers that a hashing
// thread works through in order, while the I/O thread receives what comes
// next. Each upload's digest is exactly the inline one: its buffers are hashed
// in the order written, by one thread at a time.
//
// Small uploads gain nothing from this and are hashed inline; so is every
// upload when there are no hashing threads (one core).
#pragma once

#include "sha256.hpp"

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace upload_server {

namespace detail {
struct HashStream;
}

/// Threads shared by every upload's hashing. The destructor finishes what is
/// queued, then joins; it must outlive every StreamingSha256 made on it.
class HashThreads {
 public:
  /// Starts `count` threads (0: none; every stream on it hashes inline).
  /// Throws std::system_error if a thread cannot be started.
  explicit HashThreads(unsigned count);
  HashThreads(const HashThreads&) = delete;
  HashThreads& operator=(const HashThreads&) = delete;
  ~HashThreads();

  [[nodiscard]] unsigned size() const noexcept { return static_cast<unsigned>(threads_.size()); }

  /// The default: one thread per core beyond the first, at most 4 (a thread
  /// hashes 1.5 GB/s; more than the network delivers).
  [[nodiscard]] static unsigned default_count() noexcept;

 private:
  friend class StreamingSha256;
  // Queues `stream`, which has a buffer to hash and is in no queue. Allocates
  // nothing (the queue is a list through the streams), so it cannot fail.
  void schedule(std::shared_ptr<detail::HashStream> stream) noexcept;
  void work();
  void stop() noexcept;  // joins every thread once what is queued is hashed

  std::mutex mutex_;
  std::condition_variable ready_changed_;
  // Streams with a buffer to hash, first to last, linked by their next_ready.
  std::shared_ptr<detail::HashStream> ready_first_;
  detail::HashStream* ready_last_ = nullptr;
  bool stopping_ = false;
  std::vector<std::thread> threads_;  // last: they use the members above
};

/// An incremental SHA-256 whose updates, past the first `inline_bytes`, are
/// hashed on `threads`. Move-only; one writer thread (the upload's), which
/// update() blocks only while all its buffers wait to be hashed.
class StreamingSha256 {
 public:
  /// Bytes hashed inline before the rest goes to the threads: an upload this
  /// small is over before a thread would have helped.
  static constexpr std::size_t inline_bytes = 256 * 1024;
  /// The buffers of one upload, allocated when first needed: 4 x 256 KiB. A
  /// thread is woken once a buffer; with 64 KiB the hand-overs cost a fifth
  /// of what the thread saves.
  static constexpr std::size_t buffer_count = 4;
  static constexpr std::size_t buffer_size = 256 * 1024;

  /// On `threads`, or inline with nullptr. Throws what Sha256() throws.
  explicit StreamingSha256(HashThreads* threads);
  StreamingSha256(StreamingSha256&& other) noexcept;
  StreamingSha256& operator=(StreamingSha256&& other) noexcept;
  StreamingSha256(const StreamingSha256&) = delete;
  StreamingSha256& operator=(const StreamingSha256&) = delete;
  /// What is still queued is dropped, not hashed.
  ~StreamingSha256();

  /// Hashes `data` after everything before it; past the inline bytes, copies
  /// it into a buffer that goes to a thread once full. Throws std::bad_alloc if the buffers cannot
  /// be allocated (then nothing of `data` was taken).
  void update(std::string_view data);

  /// Waits for every update to be hashed, then returns the digest as 64
  /// lowercase hex digits. Call it once, last.
  [[nodiscard]] std::string hex_digest();

 private:
  void hand_over();  // the buffer being filled, to the threads

  HashThreads* threads_;
  std::shared_ptr<detail::HashStream> stream_;  // shared with the thread hashing it
};

}  // namespace upload_server

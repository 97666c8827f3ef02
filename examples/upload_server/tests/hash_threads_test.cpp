// Tests for hash_threads.hpp: a digest computed on hashing threads is the one
// computed inline, whatever the sizes of the writes, the number of threads and
// of uploads sharing them; an upload abandoned midway costs nothing and breaks
// nothing. Run under TSan in CI, which checks the hand-over of every buffer.
#include "hash_threads.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "catch.hpp"

using upload_server::HashThreads;
using upload_server::Sha256;
using upload_server::StreamingSha256;

namespace {

// Bytes that differ at every position, so that a buffer hashed twice, out of
// order or not at all changes the digest.
std::string pattern(std::size_t size, std::uint32_t seed) {
  std::string data(size, '\0');
  std::uint32_t x = seed * 2654435761U + 1;
  for (char& c : data) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return data;
}

std::string inline_digest(std::string_view data) {
  Sha256 sha;
  sha.update(data);
  return sha.hex_digest();
}

// Feeds `data` in writes of `write_size` bytes (the last may be shorter).
std::string streamed_digest(HashThreads* threads, std::string_view data, std::size_t write_size) {
  StreamingSha256 sha{threads};
  for (std::size_t at = 0; at < data.size(); at += write_size) {
    sha.update(data.substr(at, write_size));
  }
  return sha.hex_digest();
}

}  // namespace

TEST_CASE("a digest computed on hashing threads is the inline one", "[hash_threads]") {
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<StreamingSha256>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<StreamingSha256>);
  const unsigned thread_count = GENERATE(0U, 1U, 3U);
  HashThreads threads{thread_count};
  CHECK(threads.size() == thread_count);
  constexpr std::size_t inline_part = StreamingSha256::inline_bytes;
  constexpr std::size_t buffer = StreamingSha256::buffer_size;
  // Sizes around each edge: nothing, inline only, the first byte past it,
  // exactly full buffers, and many more bytes than the buffers hold.
  const std::size_t size =
      GENERATE_COPY(std::size_t{0}, std::size_t{1}, inline_part - 1, inline_part, inline_part + 1,
                    inline_part + StreamingSha256::buffer_count * buffer,
                    inline_part + 20 * buffer + 17, std::size_t{6} << 20);
  // Writes smaller than a buffer, of one, and larger (split across buffers),
  // none of them aligned to the inline part's end.
  const std::size_t write_size = GENERATE(std::size_t{1000}, StreamingSha256::buffer_size,
                                          3 * StreamingSha256::buffer_size + 5);
  INFO(thread_count << " threads, " << size << " bytes in writes of " << write_size);
  const std::string data = pattern(size, static_cast<std::uint32_t>(size + write_size));
  CHECK(streamed_digest(&threads, data, write_size) == inline_digest(data));
}

TEST_CASE("no threads, or a null HashThreads, hash inline", "[hash_threads]") {
  const std::string data = pattern(StreamingSha256::inline_bytes * 3, 7);
  HashThreads none{0};
  CHECK(none.size() == 0);
  CHECK(streamed_digest(&none, data, 10'000) == inline_digest(data));
  CHECK(streamed_digest(nullptr, data, 10'000) == inline_digest(data));
  CHECK(HashThreads::default_count() <= 4);
}

TEST_CASE("uploads sharing the threads each get their own digest", "[hash_threads]") {
  // As on the server: one writer thread interleaves the writes of several
  // uploads, which two threads hash at once, each upload by one at a time.
  HashThreads threads{2};
  constexpr std::size_t uploads = 6;
  std::vector<std::string> data;
  std::vector<StreamingSha256> shas;
  for (std::size_t i = 0; i < uploads; ++i) {
    data.push_back(pattern(StreamingSha256::inline_bytes + (i + 1) * 300'000, 100 + i));
    shas.emplace_back(&threads);  // a reallocation moves the ones before: still theirs
  }
  constexpr std::size_t write_size = 50'000;
  for (std::size_t at = 0;; at += write_size) {
    bool any = false;
    for (std::size_t i = 0; i < uploads; ++i) {
      if (at >= data[i].size()) continue;
      shas[i].update(std::string_view{data[i]}.substr(at, write_size));
      any = true;
    }
    if (!any) break;
  }
  for (std::size_t i = 0; i < uploads; ++i) {
    INFO("upload " << i);
    CHECK(shas[i].hex_digest() == inline_digest(data[i]));
  }
}

TEST_CASE("a moved StreamingSha256 goes on where it was", "[hash_threads]") {
  HashThreads threads{1};
  const std::string data = pattern(StreamingSha256::inline_bytes + 1'000'000, 3);
  const std::string_view view{data};
  StreamingSha256 first{&threads};
  first.update(view.substr(0, 700'000));
  StreamingSha256 second{std::move(first)};
  second.update(view.substr(700'000, 200'000));
  StreamingSha256 third{nullptr};
  third.update("replaced");
  third = std::move(second);
  third.update(view.substr(900'000));
  CHECK(third.hex_digest() == inline_digest(data));
}

TEST_CASE("an upload abandoned midway leaves the threads working for the others",
          "[hash_threads]") {
  // Destroyed with its buffers full and queued (the thread drops them), and
  // before the threads themselves: nothing leaks or touches freed memory (ASan).
  auto threads = std::make_unique<HashThreads>(1);
  const std::string data = pattern(StreamingSha256::inline_bytes + 2'000'000, 11);
  for (int round = 0; round < 20; ++round) {
    auto abandoned = std::make_unique<StreamingSha256>(threads.get());
    abandoned->update(data);
    abandoned.reset();
    CHECK(streamed_digest(threads.get(), data, 70'000) == inline_digest(data));
  }
  auto left_queued = std::make_unique<StreamingSha256>(threads.get());
  left_queued->update(data);
  left_queued.reset();
  threads.reset();  // joins once what was queued is dropped
}

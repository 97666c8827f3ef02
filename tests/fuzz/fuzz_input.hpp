// fuzz_input.hpp - reads a fuzzer's bytes as the choices of a test.
//
// Every read succeeds: past the end of the input it yields zeros, so a short
// input is a valid (small) test and libFuzzer can grow it a byte at a time.
// Portable C++ on purpose, unlike clang's FuzzedDataProvider: the same target
// also builds with g++ as a replay test (replay_main.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace admit_fuzz {

class FuzzInput {
 public:
  FuzzInput(const std::uint8_t* data, std::size_t size) noexcept : data_{data}, size_{size} {}

  [[nodiscard]] bool empty() const noexcept { return pos_ >= size_; }

  [[nodiscard]] std::uint8_t byte() noexcept { return pos_ < size_ ? data_[pos_++] : 0; }

  /// Little-endian, from the next `bytes` bytes (at most 8).
  [[nodiscard]] std::uint64_t bits(unsigned bytes) noexcept {
    std::uint64_t value = 0;
    for (unsigned i = 0; i < bytes && i < 8; ++i) value |= std::uint64_t{byte()} << (8 * i);
    return value;
  }

  /// A value in [low, high], from as few bytes as the range needs.
  [[nodiscard]] std::uint64_t in_range(std::uint64_t low, std::uint64_t high) noexcept {
    if (high <= low) return low;
    const std::uint64_t span = high - low;
    unsigned bytes = 1;
    while (bytes < 8 && (span >> (8 * bytes)) != 0) ++bytes;
    const std::uint64_t raw = bits(bytes);
    return span == UINT64_MAX ? raw : low + raw % (span + 1);
  }

  [[nodiscard]] bool flag() noexcept { return (byte() & 1U) != 0; }

  /// Up to `max_size` bytes, its length read first.
  [[nodiscard]] std::string text(std::size_t max_size) {
    const std::size_t n = static_cast<std::size_t>(in_range(0, max_size));
    std::string s;
    for (std::size_t i = 0; i < n && !empty(); ++i) s.push_back(static_cast<char>(byte()));
    return s;
  }

  /// What is left, consumed.
  [[nodiscard]] std::string_view rest() noexcept {
    const std::size_t from = pos_ < size_ ? pos_ : size_;
    pos_ = size_;
    return {reinterpret_cast<const char*>(data_) + from, size_ - from};
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

}  // namespace admit_fuzz

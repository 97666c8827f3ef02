// admit/detail/slot_bitmap.hpp - lock-free allocator of slot indices.
//
// Hands out indices in [0, slots) so that no index is held twice: a handler may
// use SlotReservation::slot() to index per-slot storage (a buffer, a log
// column) without further synchronisation. One bit per slot, 64 per word, each
// word on its own cache line together with a count of the claims made in it.
//
// The bitmap does not decide admission: the pool's packed word does. A caller
// first takes a slot there, and only then claims an index here; a releaser
// clears its bit here before it gives the slot back there. So at every moment
// set bits <= slots admitted, and a caller holding an admitted slot always has
// a clear bit to find. claim() may have to scan again when other threads move
// bits under it, but every failed fetch_or means another thread succeeded:
// the loop is lock-free, not wait-free. The scan starts at a hint (the word
// after the last one that filled up, pulled back when a full word frees a
// bit), so low indices are preferred and a pool of many slots does not rescan
// its full words on every claim.
#pragma once

#include <atomic>
#include <bit>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace admit::detail {

/// Our alignment for data that threads write concurrently. Not
/// std::hardware_destructive_interference_size: GCC warns that its value may
/// change between compiler versions (ABI), and clang 14 with libstdc++ lacks it.
inline constexpr std::size_t cache_line_size = 64;

class SlotBitmap {
 public:
  explicit SlotBitmap(std::uint32_t slots)
      : word_count_{(slots + 63) / 64}, words_{std::make_unique<Word[]>(word_count_)} {
    // Bits past the last slot are set for good, so claim() never returns them.
    if (const std::uint32_t used = slots % 64; used != 0) {
      words_[word_count_ - 1].bits.store(~std::uint64_t{0} << used, std::memory_order_relaxed);
    }
  }

  SlotBitmap(const SlotBitmap&) = delete;
  SlotBitmap& operator=(const SlotBitmap&) = delete;

  /// Precondition: the caller holds an admitted slot in the pool's packed word
  /// (see the file comment); otherwise this may spin until a slot is released.
  [[nodiscard]] std::uint32_t claim() noexcept {
    // relaxed: a hint at where to start; any word may be tried, the scan wraps.
    const std::uint32_t start = word_count_ == 1 ? 0 : hint_.load(std::memory_order_relaxed);
    for (;;) {
      for (std::uint32_t i = 0; i < word_count_; ++i) {
        const std::uint32_t w = start + i < word_count_ ? start + i : start + i - word_count_;
        Word& word = words_[w];
        // relaxed: only a hint at which bit to try; the fetch_or below decides.
        std::uint64_t bits = word.bits.load(std::memory_order_relaxed);
        while (bits != ~std::uint64_t{0}) {
          const std::uint64_t mask = std::uint64_t{1} << std::countr_one(bits);
          // acquire: pairs with the fetch_and(release) in release(), so the
          // previous holder's writes to per-slot data happen before ours.
          const std::uint64_t before = word.bits.fetch_or(mask, std::memory_order_acquire);
          if ((before & mask) == 0) {
            // relaxed: a statistic, summed by claims(); the line is already ours.
            word.claims.fetch_add(1, std::memory_order_relaxed);
            if ((before | mask) == ~std::uint64_t{0} && word_count_ > 1) {
              // This word is full: the next claim starts past it, so a large
              // pool does not rescan its full low words on every admission.
              // relaxed: a hint, written only when a word fills up.
              hint_.store(w + 1 < word_count_ ? w + 1 : 0, std::memory_order_relaxed);
            }
            return w * 64 + static_cast<std::uint32_t>(std::countr_zero(mask));
          }
          bits = before | mask;
        }
      }
    }
  }

  void release(std::uint32_t slot) noexcept {
    const std::uint64_t mask = std::uint64_t{1} << (slot % 64);
    // release: pairs with the fetch_or(acquire) in claim(), see there.
    const std::uint32_t w = slot / 64;
    [[maybe_unused]] const std::uint64_t before =
        words_[w].bits.fetch_and(~mask, std::memory_order_release);
    assert((before & mask) != 0 && "admit: slot released twice");
    // relaxed: a hint. Pulling it back to a freed word keeps low indices
    // preferred; it is only written when this word was full (the hint had
    // moved past it), so a busy pool rarely writes it.
    if (before == ~std::uint64_t{0} && word_count_ > 1 &&
        w < hint_.load(std::memory_order_relaxed)) {
      hint_.store(w, std::memory_order_relaxed);
    }
  }

  /// Claims made since construction (a snapshot: relaxed loads).
  [[nodiscard]] std::uint64_t claims() const noexcept {
    std::uint64_t total = 0;
    for (std::uint32_t w = 0; w < word_count_; ++w) {
      total += words_[w].claims.load(std::memory_order_relaxed);
    }
    return total;
  }

  /// Whether `slot` is held now (a snapshot; for tests and assertions).
  [[nodiscard]] bool is_held(std::uint32_t slot) const noexcept {
    const std::uint64_t mask = std::uint64_t{1} << (slot % 64);
    return (words_[slot / 64].bits.load(std::memory_order_relaxed) & mask) != 0;
  }

 private:
  struct alignas(cache_line_size) Word {
    std::atomic<std::uint64_t> bits{0};
    std::atomic<std::uint64_t> claims{0};
  };

  std::uint32_t word_count_;
  std::unique_ptr<Word[]> words_;
  // Where claim() starts scanning: a word that was not full when last seen.
  alignas(cache_line_size) std::atomic<std::uint32_t> hint_{0};
};

}  // namespace admit::detail

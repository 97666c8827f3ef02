// admit/detail/slot_bitmap.hpp - lock-free allocator of slot indices, and the
// arbiter of whether a reservation still holds its slot.
//
// Hands out indices in [0, slots) so that no index is held twice: a handler may
// use SlotReservation::slot() to index per-slot storage (a buffer, a log
// column) without further synchronisation. One bit per slot, 16 per word; each
// word on its own cache line together with a count of the claims made in it
// and its 16 slots' generations (below), so that a claim or a release touches
// one line of the bitmap.
//
// The bitmap does not decide admission: the pool's packed word does. A caller
// first takes a slot there, and only then claims an index here; a releaser
// clears its bit here before it gives the slot back there. So at every moment
// set bits <= slots admitted, and a caller holding an admitted slot always has
// a clear bit to find. claim() may have to scan again when other threads move
// bits under it, but every failed bit set means another thread succeeded:
// the loop is lock-free, not wait-free. The scan starts at a hint (the word
// after the last one that filled up, pulled back when a full word frees a
// bit), so low indices are preferred and a pool of many slots does not rescan
// its full words on every claim.
//
// Generations: a claim is given back at most once
//   A SlotReservation can be destroyed twice: GCC 12 makes two bitwise copies
//   of one in `co_return c ? co_await x : y;` and destroys both, and a memcpy
//   does the same. Giving its slot and bytes back twice would underflow the
//   pool's packed word, which then refuses everything for ever. So each slot
//   has a 16-bit generation, and a claim is the pair (slot, the slot's
//   generation at claim time); the reservation keeps both. Invariant: a
//   slot's generation changes only when a claim of it is given back, and then
//   to the next value (mod 2^16). release(claim):
//     1. checks claim.slot < slots (a corrupt copy touches nothing);
//     2. checks the slot's generation is still claim.generation, else the
//        claim was given back already (a stale copy, whether or not another
//        reservation holds the slot since): nothing is touched;
//     3. stores generation + 1, so that later releases of the claim fail 2;
//     4. clears the bit (an atomic bit clear), whose result is the final arbiter:
//        only the release that saw the bit set gives the slot back. Two
//        copies released at the same time may both pass 2 and 3 (storing the
//        same value); exactly one of them wins here.
//   Cost: no atomic read-modify-write and no cache line beyond the word's
//   own: a relaxed load at claim, a relaxed load and store at release, all
//   ordered by the bitmap's acquire/release pair (see claim() and release()).
//   (Generations in an array of their own cost a contended line: two threads
//   on slots 0 and 1 wrote the same line on every release.)
//   Guarantee: a release of a claim that is ordered after another release
//   of the same claim (the same thread, or any synchronisation between the
//   two) is refused, whatever the slot did meanwhile, unless the slot was
//   claimed again a multiple of 65,536 times since and is held now (then the
//   generations match and the newcomer's slot is freed). Two releases of one
//   claim that are not ordered give the slot back exactly once, unless the
//   loser passes step 2 before the winner's step 3 reaches it and a third
//   thread claims the slot between the winner's bit clear and the loser's:
//   then the loser frees the newcomer's slot (the race that a check without
//   a read-modify-write cannot close).
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "atomic_bits.hpp"
#include "compiler.hpp"

namespace admit::detail {

/// Our alignment for data that threads write concurrently. Not
/// std::hardware_destructive_interference_size: GCC warns that its value may
/// change between compiler versions (ABI), and clang 14 with libstdc++ lacks it.
inline constexpr std::size_t cache_line_size = 64;

/// A claimed slot: its index and its generation at claim time, and the
/// partition it was admitted in (0: none), which the bitmap ignores.
struct SlotClaim {
  std::uint32_t slot = 0;
  std::uint16_t generation = 0;
  std::uint16_t partition = 0;
};

class SlotBitmap {
 public:
  /// What release() did. Anything but `released` touched neither the bit nor
  /// the pool's accounting: the claim was not this bitmap's to take back.
  enum class Release : std::uint8_t {
    released,      ///< the slot is free again
    out_of_range,  ///< claim.slot >= slots: a corrupt reservation
    stale,         ///< the claim was given back before (generation moved on)
    not_held,      ///< another copy of the claim won the race to give it back
  };

  explicit SlotBitmap(std::uint32_t slots)
      : slots_{slots},
        word_count_{(slots + per_word - 1) / per_word},
        words_{std::make_unique<Word[]>(word_count_)} {
    // Bits past a word's 16 slots, and past the last slot, are set for good,
    // so claim() never returns them.
    for (std::uint32_t w = 0; w < word_count_; ++w) {
      const std::uint32_t used = w + 1 < word_count_ ? per_word : slots - w * per_word;
      words_[w].bits.store(~std::uint64_t{0} << used, std::memory_order_relaxed);
    }
  }

  SlotBitmap(const SlotBitmap&) = delete;
  SlotBitmap& operator=(const SlotBitmap&) = delete;

  /// Precondition: the caller holds an admitted slot in the pool's packed word
  /// (see the file comment); otherwise this may spin until a slot is released.
  [[nodiscard]] SlotClaim claim() noexcept {
    // The usual case, straight through: the hinted word has a free bit and
    // nobody takes it first. The hint is 0 in a one-word pool (never moved).
    // relaxed: a hint at where to start; the scan below may try any word.
    const std::uint32_t w = hint_.load(std::memory_order_relaxed);
    Word& word = words_[w];
    // relaxed: only a hint at which bit to try; the bit set below decides.
    const std::uint64_t bits = word.bits.load(std::memory_order_relaxed);
    if (bits != ~std::uint64_t{0}) [[likely]] {
      const auto bit = static_cast<std::uint32_t>(std::countr_one(bits));
      // acquire: as in claim_scan().
      if (!atomic_set_bit(word.bits, bit, std::memory_order_acquire)) [[likely]]
        return claimed(word, w, bit, bits);
    }
    return claim_scan(w);
  }

  /// Gives `claim`'s slot back if, and only if, it is still held under that
  /// claim (the file comment's steps 1 to 4). Never touches another slot.
  [[nodiscard]] Release release(SlotClaim claim) noexcept {
    if (claim.slot >= slots_) [[unlikely]]
      return Release::out_of_range;
    Word& word = words_[claim.slot / per_word];
    const std::uint32_t bit = claim.slot % per_word;
    std::atomic<std::uint16_t>& generation = word.generations[bit];
    // relaxed: written only by releases of this slot; one ordered before
    // ours happens-before this load (through whatever ordered it, or
    // through the bitmap's release/acquire pair to our claim), so we see
    // its store and refuse. Unordered ones are decided by the bit clear.
    if (generation.load(std::memory_order_relaxed) != claim.generation) [[unlikely]] {
      return Release::stale;
    }
    // relaxed: published to the slot's next claimer by the bit clear (release)
    // below, and to later releases of this claim as the load above says.
    generation.store(static_cast<std::uint16_t>(claim.generation + 1), std::memory_order_relaxed);
    // release: pairs with the bit's setting (acquire) in claim(), see there.
    if (!atomic_clear_bit(word.bits, bit, std::memory_order_release)) [[unlikely]]
      return Release::not_held;
    // relaxed: a hint. Pulling it back to a freed word below it keeps low
    // indices preferred; it moves past a word only when that word fills up,
    // so a busy pool rarely writes it, and reading it shares a quiet line.
    if (const std::uint32_t w = claim.slot / per_word;
        word_count_ > 1 && w < hint_.load(std::memory_order_relaxed)) [[unlikely]] {
      hint_.store(w, std::memory_order_relaxed);
    }
    return Release::released;
  }

  /// Whether `claim` is still current: its slot was not given back since
  /// (release()'s steps 1 and 2, touching nothing).
  [[nodiscard]] bool is_current(SlotClaim claim) const noexcept {
    if (claim.slot >= slots_) return false;
    // relaxed: as the check in release(): a release of this claim ordered
    // before the call happens-before this load, so its store is seen.
    return words_[claim.slot / per_word].generations[claim.slot % per_word].load(
               std::memory_order_relaxed) == claim.generation;
  }

  /// The generation a claim of `slot` would get now (a snapshot; for
  /// reports and tests). Precondition: slot < slots.
  [[nodiscard]] std::uint16_t generation(std::uint32_t slot) const noexcept {
    return words_[slot / per_word].generations[slot % per_word].load(std::memory_order_relaxed);
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
    const std::uint64_t mask = std::uint64_t{1} << (slot % per_word);
    return (words_[slot / per_word].bits.load(std::memory_order_relaxed) & mask) != 0;
  }

  [[nodiscard]] std::uint32_t slots() const noexcept { return slots_; }

 private:
  // 16 slots a word: their generations then fit on the word's line.
  static constexpr std::uint32_t per_word = 16;

  struct alignas(cache_line_size) Word {
    std::atomic<std::uint64_t> bits{0};
    std::atomic<std::uint64_t> claims{0};
    // All 0 at first: std::atomic value-initialises.
    std::array<std::atomic<std::uint16_t>, per_word> generations{};
  };
  static_assert(sizeof(Word) == cache_line_size,
                "a word, its count and its generations share a line");
  static_assert(std::atomic<std::uint16_t>::is_always_lock_free,
                "the generations must be lock-free: release() runs on the admission path");

  /// claim() when the hinted word was full or its bit was taken first: every
  /// word from `start` on, wrapping, until a bit is ours.
  ADMIT_COLD SlotClaim claim_scan(std::uint32_t start) noexcept {
    for (;;) {
      for (std::uint32_t i = 0; i < word_count_; ++i) {
        const std::uint32_t w = start + i < word_count_ ? start + i : start + i - word_count_;
        Word& word = words_[w];
        // relaxed: only a hint at which bit to try; the bit set below decides.
        std::uint64_t bits = word.bits.load(std::memory_order_relaxed);
        while (bits != ~std::uint64_t{0}) {
          const auto bit = static_cast<std::uint32_t>(std::countr_one(bits));
          // acquire: pairs with the bit's clearing (release) in release(), so
          // the previous holder's writes to per-slot data (and its store of
          // the slot's generation) happen before ours.
          if (!atomic_set_bit(word.bits, bit, std::memory_order_acquire)) {
            return claimed(word, w, bit, bits);
          }
          // relaxed: another thread took the bit; look again at what is free.
          bits = word.bits.load(std::memory_order_relaxed);
        }
      }
    }
  }

  /// Bit `bit` of word `w` is ours now; `bits` is how the word looked just
  /// before (a relaxed view).
  SlotClaim claimed(Word& word, std::uint32_t w, std::uint32_t bit, std::uint64_t bits) noexcept {
    // relaxed: a statistic, summed by claims(); the line is already ours.
    word.claims.fetch_add(1, std::memory_order_relaxed);
    // This claim may have filled the word: the next one starts past it, so a
    // large pool does not rescan its full low words on every admission.
    // relaxed: a hint, written only when a word fills up; a stale view of
    // the bits only makes the next claim start its scan elsewhere.
    if (word_count_ > 1 && (bits | std::uint64_t{1} << bit) == ~std::uint64_t{0}) {
      hint_.store(w + 1 < word_count_ ? w + 1 : 0, std::memory_order_relaxed);
    }
    // relaxed: the bit set (acquire) read the last holder's bit clear
    // (release) (or a later RMW of this word, all in its release sequence),
    // which that holder sequenced after storing the generation: this load
    // sees that store, the current value. The line is ours already.
    return {w * per_word + bit, word.generations[bit].load(std::memory_order_relaxed)};
  }

  std::uint32_t slots_;
  std::uint32_t word_count_;
  std::unique_ptr<Word[]> words_;
  // Where claim() starts scanning: a word that was not full when last seen.
  alignas(cache_line_size) std::atomic<std::uint32_t> hint_{0};
};

}  // namespace admit::detail

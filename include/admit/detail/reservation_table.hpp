// admit/detail/reservation_table.hpp - the records behind SlotPool::reservations().
//
// One record per slot index, so a reservation's record is found by its slot
// and moves with it for free; a cache line per record, so uploads on
// different slots never write the same line.
//
// Which records are live
//   A record names the claim (slot, generation) it was written for. It is
//   live while the slot bitmap still holds that claim: a release moves the
//   slot's generation on, which retires the record without writing it, so
//   releasing costs nothing here. (Between a claim and the handing out of its
//   reservation the record still names the previous claim, retired: the new
//   reservation appears once it is handed out.)
// Writers and readers
//   A record is written by whoever holds its slot (admission, try_grow,
//   shrink, set_label), one at a time: ownership of a reservation passes
//   between threads only with synchronisation, and the slot bitmap's
//   release / acquire orders the last holder's final write before the next
//   holder's first. reservations() reads from any thread at any time, so each
//   record is a sequence lock: a writer makes `version` odd, writes, makes it
//   even; a reader that saw the same even version before and after its reads
//   has a consistent copy.
// Why the orders are enough (no fences: ThreadSanitizer does not model them)
//   Writer: version += 1 (relaxed RMW); every field stored with release, so
//   the odd version is ordered before each; version += 1 (release RMW).
//   Reader: version loaded with acquire, every field loaded with acquire, so
//   the second version load cannot be ordered before them. A field value
//   from an unfinished write synchronises with its release store, which came
//   after the odd version: the second load sees that version or later, and
//   the copy is thrown away. The versions are RMWs, not stores, so that two
//   writers racing on one record (only a stale copy of a reservation racing
//   with its holder, a bug the pool counts) can garble the record but never
//   leave the version odd for good.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

#include "../reservation_record.hpp"
#include "compiler.hpp"
#include "slot_bitmap.hpp"

namespace admit::detail {

class ReservationTable {
 public:
  explicit ReservationTable(std::uint32_t slots)
      : records_{std::make_unique<Record[]>(slots)}, slots_{slots} {}

  /// A reservation was handed out for `claim`. (Out of line, as every writer
  /// here: the admission path pays for tracking only when it is on.)
  ADMIT_COLD void admitted(SlotClaim claim, std::uint64_t declared_size,
                           std::uint64_t bytes) noexcept {
    Record& r = records_[claim.slot];
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    begin(r);
    r.declared_size.store(declared_size, std::memory_order_release);
    r.bytes.store(bytes, std::memory_order_release);
    r.admitted_at.store(now, std::memory_order_release);
    r.state.store(written_bit | (std::uint32_t{claim.generation} << generation_shift),
                  std::memory_order_release);  // no label yet
    end(r);
  }

  ADMIT_COLD void set_bytes(std::uint32_t slot, std::uint64_t bytes) noexcept {
    Record& r = records_[slot];
    begin(r);
    r.bytes.store(bytes, std::memory_order_release);
    end(r);
  }

  ADMIT_COLD void set_label(std::uint32_t slot, std::string_view label) noexcept {
    Record& r = records_[slot];
    const std::size_t size = cut_at_character(label, ReservationRecord::max_label_size);
    std::array<std::uint64_t, words> packed{};
    if (size != 0) std::memcpy(packed.data(), label.data(), size);  // data() may be null
    begin(r);
    for (std::size_t i = 0; i < words; ++i) r.label[i].store(packed[i], std::memory_order_release);
    // relaxed: only this record's writer changes it, and this is that writer.
    const std::uint32_t claim_bits = r.state.load(std::memory_order_relaxed) & ~label_size_mask;
    r.state.store(claim_bits | static_cast<std::uint32_t>(size), std::memory_order_release);
    end(r);
  }

  /// Every live record, in slot order, `bitmap` saying which claims are
  /// held. Allocates; never blocks a writer.
  [[nodiscard]] std::vector<ReservationRecord> snapshot(const SlotBitmap& bitmap) const {
    std::vector<ReservationRecord> out;
    for (std::uint32_t slot = 0; slot < slots_; ++slot) {
      const Copy c = read(records_[slot]);
      const SlotClaim claim{slot, static_cast<std::uint16_t>(c.state >> generation_shift)};
      if ((c.state & written_bit) != 0 && bitmap.is_held(slot) && bitmap.is_current(claim)) {
        ReservationRecord record;
        record.slot = slot;
        record.declared_size = c.declared_size;
        record.bytes = c.bytes;
        record.admitted_at = std::chrono::steady_clock::time_point{
            std::chrono::steady_clock::duration{c.admitted_at}};
        // Clamped: only a garbled record (see the file comment) could say more.
        const std::size_t label_size =
            std::min<std::size_t>(c.state & label_size_mask, ReservationRecord::max_label_size);
        record.label.assign(reinterpret_cast<const char*>(c.label.data()), label_size);
        out.push_back(std::move(record));
      }
    }
    return out;
  }

  /// The longest prefix of `text` of at most `limit` bytes that does not end
  /// inside a UTF-8 character.
  static std::size_t cut_at_character(std::string_view text, std::size_t limit) noexcept {
    if (text.size() <= limit) return text.size();
    std::size_t size = limit;
    // A continuation byte (10xxxxxx) at the cut belongs to a character that
    // started before it: leave the whole character out.
    while (size > 0 && (static_cast<unsigned char>(text[size]) & 0xC0U) == 0x80U) --size;
    return size;
  }

 private:
  static constexpr std::size_t words = ReservationRecord::max_label_size / 8;

  // state: written_bit | the claim's generation << generation_shift | the label's size.
  static constexpr std::uint32_t written_bit = 0x8000'0000U;
  static constexpr unsigned generation_shift = 8;
  static constexpr std::uint32_t label_size_mask = 0xFFU;
  static_assert(ReservationRecord::max_label_size <= label_size_mask);

  struct alignas(64) Record {
    std::atomic<std::uint32_t> version{0};  // odd while a write is under way
    std::atomic<std::uint32_t> state{0};    // see written_bit
    std::atomic<std::uint64_t> declared_size{0};
    std::atomic<std::uint64_t> bytes{0};
    std::atomic<std::chrono::steady_clock::rep> admitted_at{0};
    std::array<std::atomic<std::uint64_t>, words> label{};
  };
  static_assert(sizeof(Record) == 64, "one cache line per record");

  struct Copy {
    std::uint32_t state;
    std::uint64_t declared_size;
    std::uint64_t bytes;
    std::chrono::steady_clock::rep admitted_at;
    std::array<std::uint64_t, words> label;
  };

  static void begin(Record& r) noexcept {
    // relaxed: the release stores that follow order this before themselves.
    r.version.fetch_add(1, std::memory_order_relaxed);
  }

  static void end(Record& r) noexcept {
    // release: a reader that sees this version sees every field written before it.
    r.version.fetch_add(1, std::memory_order_release);
  }

  static Copy read(const Record& r) noexcept {
    for (;;) {
      // acquire: pairs with end(); see the file comment.
      const std::uint32_t before = r.version.load(std::memory_order_acquire);
      if ((before & 1U) == 0) {
        Copy c{};
        c.state = r.state.load(std::memory_order_acquire);
        c.declared_size = r.declared_size.load(std::memory_order_acquire);
        c.bytes = r.bytes.load(std::memory_order_acquire);
        c.admitted_at = r.admitted_at.load(std::memory_order_acquire);
        for (std::size_t i = 0; i < words; ++i) {
          c.label[i] = r.label[i].load(std::memory_order_acquire);
        }
        // relaxed: ordered after the acquire loads above.
        if (r.version.load(std::memory_order_relaxed) == before) return c;
      }
      // A write takes nanoseconds; let a preempted writer finish it.
      std::this_thread::yield();
    }
  }

  std::unique_ptr<Record[]> records_;
  std::uint32_t slots_;
};

}  // namespace admit::detail

// admit/fmt.hpp - fmt formatters for admit's refusals and figures (needs fmt >= 9).
//
// The only admit header that includes fmt: link the admit::fmt target. It
// provides
//
//   admit::ByteSize{n}  a byte count to print for humans, in binary units.
//       Below 1 KiB, the exact count: "0 B", "512 B", "1023 B".
//       From 1 KiB, the largest of KiB, MiB, GiB, TiB, PiB, EiB that is <= n,
//       rounded to nearest (halves up) to three significant digits, trailing
//       zeros trimmed: "1 KiB", "1.5 GiB", "2.36 GiB", "37 MiB", "241 MiB".
//       The whole part is never rounded away: 1000 to 1023 units keep four
//       digits ("1023 KiB"). A value that rounds up to 1024 units is printed
//       in the next unit: 1 MiB - 1 byte is "1 MiB", never "1024 KiB".
//       The largest value, UINT64_MAX (16 EiB - 1 byte), is "16 EiB".
//       This is for people: a log that needs the exact figure prints the integer.
//   Reason     its to_string name ("too_large"); takes string specs ("{:>10}").
//   Rejection  one sentence with the figures (X = declared size, Y = needed
//              bytes, F = available bytes, B = the budget, S = the slot count):
//     too_large   "upload of X needs Y, more than the whole budget of B"
//                 (a refused try_grow whose extra Y alone fits in B:
//                  "upload of X needs Y more, which with what it holds exceeds
//                   the whole budget of B")
//     no_memory   "upload of X needs Y, F free of B, retry later"
//     no_slot     "upload of X needs a slot, all S slots in use, retry later"
//                 ("..., the only slot is in use, ..." when S is 1)
//     queue_full  "upload of X needs Y: too many uploads already waiting, retry later"
//     timeout     "upload of X needs Y: waited until the deadline, retry later"
//                 ("needs a slot: ..." when Y was free: the wait was for a slot)
//     cancelled   "upload of X needs Y: the request was cancelled"
//     closed      "upload of X needs Y: the server is shutting down"
//     pressure    "upload of X needs Y: the server is short of memory, retry later"
//                 (in all five, "needs a slot" when Y is 0)
//                 (try_grow on an empty reservation, which reports closed with
//                  no pool figures: "upload of X needs Y: the reservation holds
//                  nothing (released or moved from)")
//   Stats      one line:
//     "bytes 52.4 MiB of 200 MiB in use (peak 120 MiB), slots 3 of 8 (peak 5),
//      waiters 0, admitted 120, rejected 4 (too_large 1, no_slot 2, no_memory 1)"
//     naming only the reasons with a nonzero count ("rejected 0" when none),
//     then ", double releases N" only when N (Stats::double_releases) is not
//     0: a bug in the program or its compiler, which a log should show, and
//     ", bypassed N" only when N (Stats::bypassed) is not 0.
//   Rejection by a partition (limit == Limit::partition), with its figures:
//     too_large   "upload of X needs Y, more than its partition's ceiling of B"
//     no_slot     "upload of X needs a slot, its partition holds its S slots, retry later"
//     no_memory   "upload of X needs Y, its partition may take F more of its
//                  ceiling of B, retry later"
//   PartitionStats  one line:
//     "batch: bytes 20 MiB in use (guarantee 10 MiB, ceiling 30 MiB), slots 2
//      (guarantee 1, ceiling 3), waiters 1, admitted 7, rejected 2 (no_memory 2)"
//
//
//   std::string admit::describe(pool)  a diagnosis for an operator asking "why
//       is my upload refused?", naming first what limits admission now:
//     "memory: 195 MiB of 200 MiB held by 3 uploads (largest: #2 "ws#17 big.zip"
//      100 MiB for 41 s); slots 3/8; 5 waiting, head needs 100 MiB"
//     The first word is the bottleneck: closed (the pool is closed), pressure
//     (set_pressure is on), slots (all held), memory (a waiter waits for bytes
//     while slots are free, or less than a tenth of the budget is free), or
//     none. "largest" needs PoolConfig::track_reservations; without it the
//     text says that the per-upload records are off.
//
// ByteSize, Rejection and Stats have one fixed shape, so they accept only "{}":
// any other spec throws fmt::format_error, as fmt does for a spec its own types
// do not know (through FMT_THROW, so a build without exceptions gets fmt's own
// answer; and a compile error where fmt checks format strings at compile time).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>  // fmt::formatter, fmt::format_to, fmt::format_error

#include "partition.hpp"
#include "pool.hpp"
#include "rejection.hpp"
#include "reservation_record.hpp"
#include "stats.hpp"

#if FMT_VERSION < 90000
#error "admit/fmt.hpp needs fmt 9 or newer"
#endif

namespace admit {

/// A byte count that prints as "241 MiB" (see the file comment for the rules).
struct ByteSize {
  std::uint64_t bytes = 0;

  friend constexpr bool operator==(const ByteSize&, const ByteSize&) = default;
};

namespace detail {

/// The text of a ByteSize. The longest is 8 characters ("1023 KiB").
struct ByteSizeText {
  std::array<char, 16> chars{};
  std::size_t size = 0;

  [[nodiscard]] constexpr std::string_view view() const noexcept { return {chars.data(), size}; }

  constexpr void append(std::string_view text) noexcept {
    for (const char c : text) chars[size++] = c;
  }

  /// Appends `value` in decimal with at least `min_digits` digits.
  constexpr void append_decimal(std::uint64_t value, unsigned min_digits = 1) noexcept {
    std::array<char, 20> digits{};
    unsigned count = 0;
    do {
      digits[count++] = static_cast<char>('0' + value % 10);
      value /= 10;
    } while (value != 0 || count < min_digits);
    while (count != 0) chars[size++] = digits[--count];
  }
};

/// Formats `bytes` by the ByteSize rules, in integers only so that every
/// std::uint64_t, including the largest, rounds exactly.
[[nodiscard]] constexpr ByteSizeText format_byte_size(std::uint64_t bytes) noexcept {
  constexpr std::array<std::string_view, 7> units{" B",   " KiB", " MiB", " GiB",
                                                  " TiB", " PiB", " EiB"};
  ByteSizeText text;
  if (bytes < 1024) {
    text.append_decimal(bytes);
    text.append(units[0]);
    return text;
  }
  // The largest unit <= bytes: 1024^unit, unit in 1..6 (2^64 is 16 EiB).
  // countl_zero, not bit_width: it returns int in every standard library, so
  // the one cast is needed everywhere (bit_width's type differs).
  std::size_t unit = static_cast<std::size_t>(63 - std::countl_zero(bytes)) / 10;
  const unsigned shift = static_cast<unsigned>(10 * unit);
  const std::uint64_t mask = (std::uint64_t{1} << shift) - 1;
  const std::uint64_t whole = bytes >> shift;
  unsigned decimals = whole < 10 ? 2 : whole < 100 ? 1 : 0;

  // scaled = bytes / 1024^unit * 10^decimals, by long division one digit at a
  // time: the remainder stays below 2^60, so remainder * 10 never overflows.
  std::uint64_t scaled = whole;
  std::uint64_t remainder = bytes & mask;
  for (unsigned i = 0; i < decimals; ++i) {
    remainder *= 10;
    scaled = scaled * 10 + (remainder >> shift);
    remainder &= mask;
  }
  if (remainder >= (mask >> 1) + 1) ++scaled;  // round half up

  // Rounding may carry: 9.995 -> "10.00" (trimmed below), and with no
  // decimals 1023.5 -> 1024, which reads better as 1 of the next unit. The
  // next unit always exists there: in EiB the whole part is at most 15.
  if (decimals == 0 && scaled == 1024) {
    scaled = 1;
    ++unit;
  }

  std::uint64_t ten_to_decimals = 1;
  for (unsigned i = 0; i < decimals; ++i) ten_to_decimals *= 10;
  std::uint64_t fraction = scaled % ten_to_decimals;
  text.append_decimal(scaled / ten_to_decimals);
  while (decimals != 0 && fraction % 10 == 0) {
    fraction /= 10;
    --decimals;
  }
  if (decimals != 0) {
    text.append(".");
    text.append_decimal(fraction, decimals);
  }
  text.append(units[unit]);
  return text;
}

/// parse() for the formatters with one fixed shape. Ignoring a spec would
/// silently drop the width or type the caller asked for, so it is refused, as
/// fmt refuses a spec its own types do not know.
struct EmptySpecFormatter {
  template <class ParseContext>
  constexpr auto parse(ParseContext& ctx) -> decltype(ctx.begin()) {
    auto it = ctx.begin();
    if (it != ctx.end() && *it != '}') {
      FMT_THROW(fmt::format_error("admit: this type takes no format spec, use {}"));
    }
    return it;
  }
};

}  // namespace detail
}  // namespace admit

template <>
struct fmt::formatter<admit::ByteSize> : admit::detail::EmptySpecFormatter {
  template <class FormatContext>
  auto format(const admit::ByteSize& size, FormatContext& ctx) const -> decltype(ctx.out()) {
    const admit::detail::ByteSizeText text = admit::detail::format_byte_size(size.bytes);
    return std::copy_n(text.chars.data(), text.size, ctx.out());
  }
};

// Derives from the string_view formatter so that width, fill and alignment
// work, for tables of reasons.
template <>
struct fmt::formatter<admit::Reason> : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(admit::Reason reason, FormatContext& ctx) const -> decltype(ctx.out()) {
    return fmt::formatter<std::string_view>::format(admit::to_string(reason), ctx);
  }
};

template <>
struct fmt::formatter<admit::Rejection> : admit::detail::EmptySpecFormatter {
  // "upload of X needs Y", or "needs a slot" when the bytes were not what it
  // lacked: an upload too small to reserve anything, or a wait that ran out
  // while its bytes were free (so "needs 0 B" or "needs 2 MiB" would mislead).
  template <class Out>
  static Out need(const admit::Rejection& r, Out out) {
    using admit::ByteSize;
    const bool bytes_were_free = r.needed_bytes == 0 || (r.reason == admit::Reason::timeout &&
                                                         r.needed_bytes <= r.available_bytes);
    if (bytes_were_free) {
      return fmt::format_to(out, "upload of {} needs a slot", ByteSize{r.declared_size});
    }
    return fmt::format_to(out, "upload of {} needs {}", ByteSize{r.declared_size},
                          ByteSize{r.needed_bytes});
  }

  template <class FormatContext>
  auto format(const admit::Rejection& r, FormatContext& ctx) const -> decltype(ctx.out()) {
    using admit::ByteSize;
    using admit::Reason;
    const ByteSize declared{r.declared_size};
    const ByteSize needed{r.needed_bytes};
    const ByteSize budget{r.memory_budget};
    if (r.limit == admit::Limit::partition) {
      // The figures are the partition's: say so, or "free of B" would be read
      // as the whole pool's.
      switch (r.reason) {
        case Reason::too_large:
          return fmt::format_to(ctx.out(),
                                "upload of {} needs {}, more than its partition's ceiling of {}",
                                declared, needed, budget);
        case Reason::no_slot:
          return fmt::format_to(ctx.out(),
                                "upload of {} needs a slot, its partition holds its {} slots, "
                                "retry later",
                                declared, r.slots);
        default:
          return fmt::format_to(ctx.out(),
                                "upload of {} needs {}, its partition may take {} more of its "
                                "ceiling of {}, retry later",
                                declared, needed, ByteSize{r.available_bytes}, budget);
      }
    }
    switch (r.reason) {
      case Reason::too_large:
        // An admission is too large only when it alone exceeds the budget; a
        // grow also when added to what the reservation holds, which the
        // Rejection does not carry, so that case gets its own wording.
        if (r.needed_bytes > r.memory_budget) {
          return fmt::format_to(ctx.out(),
                                "upload of {} needs {}, more than the whole budget of {}", declared,
                                needed, budget);
        }
        return fmt::format_to(ctx.out(),
                              "upload of {} needs {} more, which with what it holds exceeds the "
                              "whole budget of {}",
                              declared, needed, budget);
      case Reason::no_memory:
        return fmt::format_to(ctx.out(), "upload of {} needs {}, {} free of {}, retry later",
                              declared, needed, ByteSize{r.available_bytes}, budget);
      case Reason::no_slot:
        if (r.slots == 1) {
          return fmt::format_to(ctx.out(),
                                "upload of {} needs a slot, the only slot is in use, retry later",
                                declared);
        }
        return fmt::format_to(ctx.out(),
                              "upload of {} needs a slot, all {} slots in use, retry later",
                              declared, r.slots);
      case Reason::queue_full:
        return fmt::format_to(need(r, ctx.out()),
                              ": too many uploads already waiting, retry later");
      case Reason::timeout:
        return fmt::format_to(need(r, ctx.out()), ": waited until the deadline, retry later");
      case Reason::cancelled:
        return fmt::format_to(need(r, ctx.out()), ": the request was cancelled");
      case Reason::closed:
        // A pool always has at least one slot: no slots means the refusal came
        // from an empty reservation's try_grow, not from a closing pool.
        if (r.slots == 0) {
          return fmt::format_to(need(r, ctx.out()),
                                ": the reservation holds nothing (released or moved from)");
        }
        return fmt::format_to(need(r, ctx.out()), ": the server is shutting down");
      case Reason::pressure:
        return fmt::format_to(need(r, ctx.out()), ": the server is short of memory, retry later");
    }
    return fmt::format_to(ctx.out(), "upload of {} needs {}: refused ({})", declared, needed,
                          admit::to_string(r.reason));
  }
};

namespace admit::detail {
/// " (too_large 1, no_slot 2)": the nonzero counts, in enum order; nothing
/// when every count is 0.
template <class Out>
Out format_reason_counts(Out out, const RejectionCounts& counts) {
  std::string_view separator = " (";
  for (std::size_t i = 0; i < reason_count; ++i) {
    const auto reason = static_cast<Reason>(i);
    if (const std::uint64_t count = counts[reason]; count != 0) {
      out = fmt::format_to(out, "{}{} {}", separator, to_string(reason), count);
      separator = ", ";
    }
  }
  if (counts.total() != 0) *out++ = ')';
  return out;
}
}  // namespace admit::detail

template <>
struct fmt::formatter<admit::Stats> : admit::detail::EmptySpecFormatter {
  template <class FormatContext>
  auto format(const admit::Stats& s, FormatContext& ctx) const -> decltype(ctx.out()) {
    using admit::ByteSize;
    auto out = fmt::format_to(ctx.out(),
                              "bytes {} of {} in use (peak {}), slots {} of {} (peak {}), "
                              "waiters {}, admitted {}, rejected {}",
                              ByteSize{s.bytes_in_use}, ByteSize{s.memory_budget},
                              ByteSize{s.peak_bytes_in_use}, s.slots_in_use, s.slots,
                              s.peak_slots_in_use, s.waiters, s.admitted, s.rejected.total());
    out = admit::detail::format_reason_counts(out, s.rejected);
    if (s.double_releases != 0)
      out = fmt::format_to(out, ", double releases {}", s.double_releases);
    if (s.bypassed != 0) out = fmt::format_to(out, ", bypassed {}", s.bypassed);
    return out;
  }
};

template <>
struct fmt::formatter<admit::PartitionStats> : admit::detail::EmptySpecFormatter {
  template <class FormatContext>
  auto format(const admit::PartitionStats& p, FormatContext& ctx) const -> decltype(ctx.out()) {
    using admit::ByteSize;
    auto out = fmt::format_to(ctx.out(),
                              "{}: bytes {} in use (guarantee {}, ceiling {}), slots {} "
                              "(guarantee {}, ceiling {}), waiters {}, admitted {}, rejected {}",
                              p.name, ByteSize{p.bytes_in_use}, ByteSize{p.guarantee_bytes},
                              ByteSize{p.ceiling_bytes}, p.slots_in_use, p.guarantee_slots,
                              p.ceiling_slots, p.waiters, p.admitted, p.rejected.total());
    out = admit::detail::format_reason_counts(out, p.rejected);
    return out;
  }
};

namespace admit {

/// What describe() reads from a pool, taken apart so that tests can give
/// any picture and any time.
struct PoolPicture {
  Stats stats;
  std::vector<ReservationRecord> records;   ///< SlotPool::reservations()
  std::optional<std::uint64_t> head_needs;  ///< SlotPool::head_waiter_needs()
  bool closed = false;
  bool under_pressure = false;
};

/// The diagnosis of `picture` at `now` (see the file comment for its shape).
[[nodiscard]] inline std::string describe(const PoolPicture& picture,
                                          std::chrono::steady_clock::time_point now) {
  const Stats& s = picture.stats;
  const std::uint64_t free_bytes =
      s.bytes_in_use < s.memory_budget ? s.memory_budget - s.bytes_in_use : 0;
  const bool slots_full = s.slots_in_use >= s.slots;
  const char* bottleneck = picture.closed                                        ? "closed"
                           : picture.under_pressure                              ? "pressure"
                           : slots_full                                          ? "slots"
                           : s.waiters != 0 || free_bytes < s.memory_budget / 10 ? "memory"
                                                                                 : "none";
  std::string text = fmt::format("{}: ", bottleneck);
  auto out = std::back_inserter(text);
  const auto memory = [&] {
    out = fmt::format_to(out, "{} of {} held by {} upload{}", ByteSize{s.bytes_in_use},
                         ByteSize{s.memory_budget}, s.slots_in_use, s.slots_in_use == 1 ? "" : "s");
    if (s.slots_in_use == 0) return;
    if (picture.records.empty()) {
      out = fmt::format_to(out, " (no per-upload records: track_reservations is off)");
      return;
    }
    const ReservationRecord& largest = *std::max_element(
        picture.records.begin(), picture.records.end(),
        [](const ReservationRecord& a, const ReservationRecord& b) { return a.bytes < b.bytes; });
    const auto held_for = std::chrono::duration_cast<std::chrono::seconds>(
        now > largest.admitted_at ? now - largest.admitted_at
                                  : std::chrono::steady_clock::duration{});
    out = fmt::format_to(out, " (largest: #{} ", largest.slot);
    if (!largest.label.empty()) out = fmt::format_to(out, "\"{}\" ", largest.label);
    out = fmt::format_to(out, "{} for {} s)", ByteSize{largest.bytes}, held_for.count());
  };
  const auto slots = [&] { out = fmt::format_to(out, "slots {}/{}", s.slots_in_use, s.slots); };
  if (slots_full) {
    out = fmt::format_to(out, "{}/{} held; memory ", s.slots_in_use, s.slots);
    memory();
  } else {
    memory();
    out = fmt::format_to(out, "; ");
    slots();
  }
  out = fmt::format_to(out, "; {} waiting", s.waiters);
  if (picture.head_needs) {
    out = fmt::format_to(out, ", head needs {}", ByteSize{*picture.head_needs});
  }
  return text;
}

/// Why `pool` admits what it admits now, in one line (see the file comment).
/// Allocates; safe from any thread while uploads run.
template <MemoryPolicy Policy>
[[nodiscard]] std::string describe(const SlotPool<Policy>& pool) {
  PoolPicture picture;
  picture.stats = pool.stats();
  picture.records = pool.reservations();
  picture.head_needs = pool.head_waiter_needs();
  picture.closed = pool.closed();
  picture.under_pressure = pool.under_pressure();
  return describe(picture, std::chrono::steady_clock::now());
}

}  // namespace admit

// admit/policy.hpp - how many bytes of memory an upload of a declared size
// should reserve.
//
// A MemoryPolicy is any type with `std::uint64_t bytes_for(std::uint64_t) const
// noexcept`. The stock policies are literal types, so their answers can be
// checked at compile time, and they use integer arithmetic only: every result is
// floor(size * percent / 100), exact and free of overflow for every
// std::uint64_t input, including the maximum.
//
//   TieredPolicy  a table of size tiers, each with a percentage and an optional
//                 cap. Default-constructed it is admit's default:
//                   size <  100 MiB        20 %
//                   size <  1 GiB          10 %
//                   size >= 1 GiB           5 %, at most 100 MiB
//                 Note that this table is deliberately NOT monotonic: a 99 MiB
//                 upload reserves 19.8 MiB, a 100 MiB upload only 10 MiB, and
//                 1 GiB - 1 byte reserves 102.4 MiB, 1 GiB only 51.2 MiB.
//                 Write your own table if you need monotonic figures.
//   FlatPolicy    one percentage for every size. FlatPolicy{10} is the
//                 behaviour admit replaced, kept as the documented rollback.
//   FixedPolicy   a constant per upload: the right model for a server that
//                 streams each upload to disk through a fixed-size buffer.
//
// Invalid parameters throw std::invalid_argument naming the field (built
// without exceptions: the same message on stderr, then abort; a table read at
// run time can be checked first with TieredPolicy::validation_error). In a
// constant expression the same mistake is a compile error.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <span>
#include <string>

#include "detail/failure.hpp"
#include "units.hpp"

namespace admit {

/// The bytes an upload of `declared_size` bytes must reserve before it starts.
/// `bytes_for` must not throw: it runs on the admission path.
template <class P>
concept MemoryPolicy = requires(const P& policy, std::uint64_t declared_size) {
  { policy.bytes_for(declared_size) }
  noexcept->std::same_as<std::uint64_t>;
};

namespace detail {

/// floor(size * percent / 100) without the 128-bit intermediate:
/// size = 100q + r, so size * p / 100 = q * p + r * p / 100, and q * p <= size.
constexpr std::uint64_t percent_of(std::uint64_t size, std::uint32_t percent) noexcept {
  return size / 100 * percent + size % 100 * percent / 100;
}

/// What is wrong with a tier table, found in a constant expression; the
/// message is built only when it is needed (tier_table_error).
struct TierTableProblem {
  enum class Kind : std::uint8_t { count, percent, cap, order, last_below };
  Kind kind;
  std::size_t index;       ///< the tier at fault; for Kind::count, the count
  std::uint64_t value;     ///< its percent or its below
  std::uint64_t previous;  ///< Kind::order: the previous tier's below
};

inline std::string describe_limit(std::uint64_t below) {
  return below == std::numeric_limits<std::uint64_t>::max() ? std::string{"Tier::unbounded"}
                                                            : std::to_string(below);
}

inline std::string tier_field(std::size_t index, const char* member) {
  return "TieredPolicy: tiers[" + std::to_string(index) + "]." + member;
}

inline std::string tier_table_error(const TierTableProblem& p, std::size_t max_tiers) {
  using Kind = TierTableProblem::Kind;
  switch (p.kind) {
    case Kind::count:
      return "TieredPolicy: the table must hold 1 to " + std::to_string(max_tiers) +
             " tiers, got " + std::to_string(p.index);
    case Kind::percent:
      return tier_field(p.index, "percent") + " must be in 0..100, got " + std::to_string(p.value);
    case Kind::cap:
      return tier_field(p.index, "cap") + " must be > 0 (to reserve nothing, set percent = 0)";
    case Kind::order:
      return tier_field(p.index, "below") + " must be greater than tiers[" +
             std::to_string(p.index - 1) + "].below (" + describe_limit(p.previous) + "), got " +
             describe_limit(p.value);
    case Kind::last_below:
      return tier_field(p.index, "below") +
             " must be Tier::unbounded (the last tier covers every larger size), got " +
             describe_limit(p.value);
  }
  return "TieredPolicy: invalid table";
}

inline std::string flat_percent_error(std::uint32_t percent) {
  return "FlatPolicy: percent must be in 0..100, got " + std::to_string(percent);
}

}  // namespace detail

/// One row of a TieredPolicy: uploads smaller than `below` (and not covered by
/// an earlier row) reserve `percent` % of their size, at most `cap` bytes.
struct Tier {
  /// `below` of the last tier: it covers every larger size.
  static constexpr std::uint64_t unbounded = std::numeric_limits<std::uint64_t>::max();
  /// `cap` that limits nothing.
  static constexpr std::uint64_t no_cap = std::numeric_limits<std::uint64_t>::max();

  std::uint64_t below;         ///< exclusive upper bound of the declared size
  std::uint32_t percent;       ///< 0..100
  std::uint64_t cap = no_cap;  ///< at most this many bytes; > 0

  friend constexpr bool operator==(const Tier&, const Tier&) = default;
};

/// Percentages by size tier; see the file comment for the default table.
///
/// Tiers can be fixed at compile time:
///     constexpr admit::TieredPolicy p{{64 * MiB, 25}, {Tier::unbounded, 10, 256 * MiB}};
/// or read at run time through the std::span constructor. The table is stored
/// inline (at most max_tiers rows), so a policy never allocates.
class TieredPolicy {
 public:
  static constexpr std::size_t max_tiers = 8;

  /// admit's default: 20 % below 100 MiB, 10 % below 1 GiB, then 5 % capped
  /// at 100 MiB.
  constexpr TieredPolicy() noexcept
      : tiers_{Tier{100 * MiB, 20}, Tier{GiB, 10}, Tier{Tier::unbounded, 5, 100 * MiB}},
        count_{3} {}

  /// Throws std::invalid_argument unless: 1 to max_tiers tiers; `below`
  /// strictly ascending; the last `below` is Tier::unbounded; every percent in
  /// 0..100; every cap > 0. (Without exceptions: prints the message and
  /// aborts; check a table read at run time with validation_error first.)
  constexpr TieredPolicy(std::initializer_list<Tier> tiers)
      : TieredPolicy(std::span<const Tier>(tiers.begin(), tiers.size())) {}

  constexpr explicit TieredPolicy(std::span<const Tier> tiers) : count_{tiers.size()} {
    if (const auto problem = find_problem(tiers)) {
      detail::fail_invalid_argument(detail::tier_table_error(*problem, max_tiers));
    }
    for (std::size_t i = 0; i < tiers.size(); ++i) tiers_[i] = tiers[i];
  }

  /// Why the constructor would refuse `tiers`, in the words of its exception
  /// ("TieredPolicy: tiers[1].percent must be in 0..100, got 120"), or nullopt
  /// when the table is valid.
  [[nodiscard]] static std::optional<std::string> validation_error(std::span<const Tier> tiers) {
    if (const auto problem = find_problem(tiers)) {
      return detail::tier_table_error(*problem, max_tiers);
    }
    return std::nullopt;
  }

  [[nodiscard]] constexpr std::uint64_t bytes_for(std::uint64_t declared_size) const noexcept {
    // The constructor guarantees the last tier is unbounded, so the loop always
    // returns; the final return only keeps compilers from warning.
    for (std::size_t i = 0; i < count_; ++i) {
      if (declared_size < tiers_[i].below || i + 1 == count_) {
        return std::min(detail::percent_of(declared_size, tiers_[i].percent), tiers_[i].cap);
      }
    }
    return 0;
  }

  [[nodiscard]] constexpr std::span<const Tier> tiers() const noexcept {
    return {tiers_.data(), count_};
  }

  friend constexpr bool operator==(const TieredPolicy& a, const TieredPolicy& b) noexcept {
    // A loop, not std::ranges::equal: libc++ 14 has no ranges algorithms.
    if (a.count_ != b.count_) return false;
    for (std::size_t i = 0; i < a.count_; ++i) {
      if (a.tiers_[i] != b.tiers_[i]) return false;
    }
    return true;
  }

 private:
  using Problem = detail::TierTableProblem;

  static constexpr std::optional<Problem> find_problem(std::span<const Tier> tiers) noexcept {
    if (tiers.empty() || tiers.size() > max_tiers) {
      return Problem{Problem::Kind::count, tiers.size(), 0, 0};
    }
    for (std::size_t i = 0; i < tiers.size(); ++i) {
      const Tier& t = tiers[i];
      if (t.percent > 100) return Problem{Problem::Kind::percent, i, t.percent, 0};
      if (t.cap == 0) return Problem{Problem::Kind::cap, i, 0, 0};
      if (i > 0 && t.below <= tiers[i - 1].below) {
        return Problem{Problem::Kind::order, i, t.below, tiers[i - 1].below};
      }
    }
    if (tiers.back().below != Tier::unbounded) {
      return Problem{Problem::Kind::last_below, tiers.size() - 1, tiers.back().below, 0};
    }
    return std::nullopt;
  }

  std::array<Tier, max_tiers> tiers_{};
  std::size_t count_;
};

/// The same percentage of every size. FlatPolicy{10} is what admit replaced.
class FlatPolicy {
 public:
  /// Throws std::invalid_argument unless percent is in 0..100 (without
  /// exceptions: prints the message and aborts).
  constexpr explicit FlatPolicy(std::uint32_t percent) : percent_{percent} {
    if (percent > 100) detail::fail_invalid_argument(detail::flat_percent_error(percent));
  }

  /// Why the constructor would refuse `percent`, or nullopt when it is valid.
  [[nodiscard]] static std::optional<std::string> validation_error(std::uint32_t percent) {
    if (percent > 100) return detail::flat_percent_error(percent);
    return std::nullopt;
  }

  [[nodiscard]] constexpr std::uint64_t bytes_for(std::uint64_t declared_size) const noexcept {
    return detail::percent_of(declared_size, percent_);
  }

  [[nodiscard]] constexpr std::uint32_t percent() const noexcept { return percent_; }

  friend constexpr bool operator==(const FlatPolicy&, const FlatPolicy&) = default;

 private:
  std::uint32_t percent_;
};

/// The same number of bytes for every upload, whatever its size.
class FixedPolicy {
 public:
  constexpr explicit FixedPolicy(std::uint64_t bytes) noexcept : bytes_{bytes} {}

  [[nodiscard]] constexpr std::uint64_t bytes_for(std::uint64_t /*declared_size*/) const noexcept {
    return bytes_;
  }

  [[nodiscard]] constexpr std::uint64_t bytes() const noexcept { return bytes_; }

  friend constexpr bool operator==(const FixedPolicy&, const FixedPolicy&) = default;

 private:
  std::uint64_t bytes_;
};

/// The policy a SlotPool uses unless told otherwise.
using DefaultPolicy = TieredPolicy;

static_assert(MemoryPolicy<TieredPolicy>);
static_assert(MemoryPolicy<FlatPolicy>);
static_assert(MemoryPolicy<FixedPolicy>);

}  // namespace admit

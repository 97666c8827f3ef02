// quantities.cpp - exact parsing of "1.5GiB"-style sizes and "250ms"-style durations.
#include "quantities.hpp"

#include <admit/units.hpp>

#include <array>
#include <charconv>
#include <cstddef>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>

namespace upload_server {
namespace {

struct Unit {
  std::string_view suffix;
  std::uint64_t scale;
};

// A bare number is bytes; for durations only "0" may omit the unit (a bare "5"
// could mean seconds or milliseconds, so it is refused).
constexpr std::array<Unit, 11> size_units{{{"", 1},
                                           {"B", 1},
                                           {"KiB", admit::KiB},
                                           {"MiB", admit::MiB},
                                           {"GiB", admit::GiB},
                                           {"TiB", admit::TiB},
                                           {"kB", 1'000},
                                           {"KB", 1'000},
                                           {"MB", 1'000'000},
                                           {"GB", 1'000'000'000},
                                           {"TB", 1'000'000'000'000}}};
constexpr std::array<Unit, 4> duration_units{
    {{"ms", 1}, {"s", 1'000}, {"m", 60'000}, {"h", 3'600'000}}};

constexpr std::uint64_t max_u64 = std::numeric_limits<std::uint64_t>::max();

std::optional<std::uint64_t> checked_multiply(std::uint64_t a, std::uint64_t b) {
  if (b != 0 && a > max_u64 / b) return std::nullopt;
  return a * b;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::optional<std::uint64_t> parse_digits(std::string_view digits) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

// "<digits>[.<digits>]<unit>" times the unit's scale, if that is a whole number
// that fits. The fraction is exact however long it is (one byte is 2^-40 TiB,
// which takes 40 decimals): it is multiplied by the scale digit by digit from
// its last, as on paper; the product is whole exactly when every digit that
// lands after the point is 0, and what carries past the point is its whole
// part. A carry stays below the scale, so nothing overflows.
std::optional<std::uint64_t> parse_scaled(std::string_view text, std::span<const Unit> units) {
  std::size_t number_end = 0;
  while (number_end < text.size() && (is_digit(text[number_end]) || text[number_end] == '.')) {
    ++number_end;
  }
  const std::string_view number = text.substr(0, number_end);
  const std::string_view suffix = text.substr(number_end);
  const Unit* unit = nullptr;
  for (const Unit& u : units) {
    if (u.suffix == suffix) unit = &u;
  }
  if (unit == nullptr) return std::nullopt;

  const std::size_t dot = number.find('.');
  const std::optional<std::uint64_t> whole = parse_digits(number.substr(0, dot));
  if (!whole) return std::nullopt;  // also catches "", ".5" and "1..2"
  const std::optional<std::uint64_t> whole_scaled = checked_multiply(*whole, unit->scale);
  if (!whole_scaled) return std::nullopt;
  if (dot == std::string_view::npos) return whole_scaled;

  const std::string_view fraction = number.substr(dot + 1);
  if (fraction.empty() || fraction.find('.') != std::string_view::npos) return std::nullopt;
  std::uint64_t carry = 0;
  for (auto digit = fraction.rbegin(); digit != fraction.rend(); ++digit) {
    const std::uint64_t product = static_cast<std::uint64_t>(*digit - '0') * unit->scale + carry;
    if (product % 10 != 0) return std::nullopt;  // not a whole number
    carry = product / 10;
  }
  if (carry > max_u64 - *whole_scaled) return std::nullopt;
  return *whole_scaled + carry;
}

}  // namespace

std::uint64_t parse_size(std::string_view text) {
  if (const std::optional<std::uint64_t> bytes = parse_scaled(text, size_units)) return *bytes;
  throw std::invalid_argument("expected a size such as 200MiB, got '" + std::string{text} + "'");
}

std::chrono::milliseconds parse_duration(std::string_view text) {
  if (text == "0") return std::chrono::milliseconds{0};
  const std::optional<std::uint64_t> ms = parse_scaled(text, duration_units);
  if (!ms || *ms > static_cast<std::uint64_t>(std::chrono::milliseconds::max().count())) {
    throw std::invalid_argument("expected a duration such as 250ms or 1.5s, got '" +
                                std::string{text} + "'");
  }
  return std::chrono::milliseconds{static_cast<std::chrono::milliseconds::rep>(*ms)};
}

}  // namespace upload_server

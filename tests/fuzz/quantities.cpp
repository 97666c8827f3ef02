// quantities.cpp - fuzzes parse_size and parse_duration (quantities.hpp), the
// syntax of every size and duration flag of the upload server. They promise
// exactness: a value is accepted only when it is a whole number of bytes (or
// milliseconds) that fits its type, never rounded or wrapped; an operator
// who types "16EiB" or "0.3KiB" must be told, not given some other budget.
//
// Properties, for any text:
//   - each parser either returns or throws std::invalid_argument quoting the
//     text, as documented; anything else thrown escapes and is a crash;
//   - the result is that of a slow reference that reads the grammar the
//     header documents (digits, an optional fraction, a unit from its list)
//     and does the arithmetic on decimal strings, without any bound on the
//     digits: accepted exactly when the exact value is whole and fits (2^64 - 1
//     bytes, 2^63 - 1 ms), and then equal to it.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "quantities.hpp"

namespace {

struct Unit {
  std::string_view suffix;
  std::uint64_t scale;
};

// The units as quantities.hpp lists them, spelled out here rather than taken
// from the implementation: a unit it forgot or scaled wrongly shows.
constexpr Unit size_units[] = {
    {"", 1},
    {"B", 1},
    {"KiB", 1024},
    {"MiB", 1048576},
    {"GiB", 1073741824},
    {"TiB", 1099511627776},
    {"kB", 1000},
    {"KB", 1000},
    {"MB", 1000000},
    {"GB", 1000000000},
    {"TB", 1000000000000},
};
constexpr Unit duration_units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// `digits` (decimal) times `factor`, in decimal. A digit times the factor
// plus the carry stays below 10 * factor, so any factor below 2^59 is exact.
std::string times(std::string_view digits, std::uint64_t factor) {
  std::string product(digits.size(), '0');
  std::uint64_t carry = 0;
  for (std::size_t i = digits.size(); i-- > 0;) {
    const std::uint64_t t = static_cast<std::uint64_t>(digits[i] - '0') * factor + carry;
    product[i] = static_cast<char>('0' + t % 10);
    carry = t / 10;
  }
  for (; carry != 0; carry /= 10)
    product.insert(product.begin(), static_cast<char>('0' + carry % 10));
  return product;
}

// The whole number `text` denotes if it is one no larger than `max` (given
// in decimal), else nullopt.
std::optional<std::uint64_t> reference(std::string_view text, const auto& units,
                                       std::string_view max) {
  std::size_t i = 0;
  while (i < text.size() && is_digit(text[i])) ++i;
  if (i == 0) return std::nullopt;
  std::string digits{text.substr(0, i)};
  std::size_t decimals = 0;
  if (i < text.size() && text[i] == '.') {
    const std::size_t fraction = ++i;
    while (i < text.size() && is_digit(text[i])) ++i;
    decimals = i - fraction;
    if (decimals == 0) return std::nullopt;
    digits += text.substr(fraction, decimals);
  }
  const Unit* unit = nullptr;
  for (const Unit& u : units) {
    if (u.suffix == text.substr(i)) unit = &u;
  }
  if (unit == nullptr) return std::nullopt;

  // value = digits * scale / 10^decimals: whole when the product's last
  // `decimals` digits are zeros (the product has at least as many digits as
  // `digits`, so it has them all).
  std::string product = times(digits, unit->scale);
  const std::size_t integer_digits = product.size() - decimals;
  if (product.find_first_not_of('0', integer_digits) != std::string::npos) return std::nullopt;
  product.resize(integer_digits);
  product.erase(0, product.find_first_not_of('0'));
  if (product.size() > max.size() || (product.size() == max.size() && product.compare(max) > 0)) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  for (const char c : product) value = value * 10 + static_cast<std::uint64_t>(c - '0');
  return value;
}

// What `parse` returns, or nullopt for the std::invalid_argument it documents,
// which must quote `text`.
template <class Parse>
std::optional<std::uint64_t> parsed(std::string_view text, Parse parse) {
  try {
    return parse(text);
  } catch (const std::invalid_argument& refusal) {
    // what() is a C string: a NUL (never in a command-line argument) ends it.
    const std::size_t nul = text.find('\0');
    const std::string quoted =
        "'" + std::string{text.substr(0, nul)} + (nul == std::string_view::npos ? "'" : "");
    ADMIT_FUZZ_CHECK(std::string_view{refusal.what()}.find(quoted) != std::string_view::npos,
                     "a refusal does not quote the text");
    return std::nullopt;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text{reinterpret_cast<const char*>(data), size};

  const std::optional<std::uint64_t> bytes =
      parsed(text, [](std::string_view t) { return upload_server::parse_size(t); });
  ADMIT_FUZZ_CHECK(bytes == reference(text, size_units, "18446744073709551615"),
                   "parse_size differs from the exact reference");

  // A negative count (a wrap into the sign bit) shows as a value above 2^63 - 1.
  const std::optional<std::uint64_t> ms = parsed(text, [](std::string_view t) {
    return static_cast<std::uint64_t>(upload_server::parse_duration(t).count());
  });
  // "0" alone needs no unit (quantities.hpp); nothing else does without one.
  const std::optional<std::uint64_t> expected_ms =
      text == "0" ? std::optional<std::uint64_t>{0}
                  : reference(text, duration_units, "9223372036854775807");
  ADMIT_FUZZ_CHECK(ms == expected_ms, "parse_duration differs from the exact reference");
  return 0;
}
